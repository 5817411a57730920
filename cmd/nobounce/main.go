// Command nobounce is a milter for Postfix and Sendmail that refuses
// viruses inside the SMTP transaction, so that nothing is accepted and then
// bounced to a forged sender.
//
//	nobounce serve [-config FILE] [-listen SOCKET] [-clamd ADDR]... [-spamd ADDR]... [-rspamd URL]... [-verify DOMAIN=ADDR]...
//	nobounce scan [-config FILE] [-clamd ADDR]... [-spamd ADDR]... [-rspamd URL]... FILE.eml
//	nobounce check [--json] [--data] --domain DOMAIN HOST[:PORT]
//	nobounce config check FILE
//	nobounce version
package main

import (
	"fmt"
	"io"
	"os"
)

// Exit statuses. scan's are documented in the README: a script can tell
// what an MTA would have answered.
const (
	exitOK       = 0 // served and stopped cleanly; scan: accepted
	exitReject   = 1 // scan: the MTA would answer 5xx
	exitTempFail = 2 // scan: the MTA would answer 4xx
	exitError    = 3 // bad usage, bad config, unreadable input, failed server
)

const usage = `nobounce: refuse viruses inside the SMTP transaction (a milter for Postfix and Sendmail)

usage:
  nobounce serve [-config FILE] [-listen SOCKET] [-clamd ADDR]... [-spamd ADDR]...
                 [-rspamd URL]... [-verify DOMAIN=ADDR]...
  nobounce scan [-config FILE] [-clamd ADDR]... [-spamd ADDR]... [-rspamd URL]... FILE.eml
  nobounce check [--json] [--data] --domain DOMAIN HOST[:PORT]
  nobounce config check FILE
  nobounce version

Sockets and addresses are written as MTAs write milter sockets:
unix:/path, local:/path, inet:host:port, inet:port@host.
"nobounce COMMAND -h" lists a command's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError
	}
	switch args[0] {
	case "serve":
		return serveCmd(args[1:], stderr)
	case "scan":
		return scanCmd(args[1:], stdout, stderr)
	case "check":
		return checkCmd(args[1:], stdout, stderr)
	case "config":
		if len(args) == 3 && args[1] == "check" {
			return configCheckCmd(args[2], stdout, stderr)
		}
		fmt.Fprint(stderr, "usage: nobounce config check FILE\n")
		return exitError
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "nobounce", versionString())
		return exitOK
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "nobounce: unknown command %q\n\n%s", args[0], usage)
	return exitError
}
