package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nobounce/nobounce/smtpcheck"
)

// Exit statuses of check, by class (README). C2 and C1 reuse the numbers of
// scan's "4xx" and "5xx" only by position: better classes exit lower.
const (
	exitCheckC3      = 0 // unknown users refused at RCPT TO: no backscatter
	exitCheckC1      = 1 // unknown users accepted: bounces later, or catch-all
	exitCheckC2      = 2 // unknown users refused only after DATA
	exitCheckUnknown = 4 // the check could not tell (server down, greylisting, ...)
)

const checkUsage = "usage: nobounce check [--json] [--data] [--helo NAME] [--timeout D] --domain DOMAIN HOST[:PORT]\n"

// checkCmd audits how the server at HOST treats mail for a user of DOMAIN
// that does not exist (package smtpcheck). It exits 0 for C3, 1 for C1, 2
// for C2, 3 for a usage error and 4 when it could not tell.
func checkCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("check", stderr)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	data := fs.Bool("data", false, "if the unknown user is accepted, send it a tiny message with the null sender to tell C2 (refused after DATA) from C1")
	domain := fs.String("domain", "", "the `DOMAIN` the server receives mail for (required)")
	helo := fs.String("helo", "", "the `NAME` to greet the server with (default: this host's name)")
	timeout := fs.Duration("timeout", 60*time.Second, "limit on the whole check")
	fs.Usage = func() {
		fmt.Fprint(stderr, checkUsage)
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return exitError
	}
	if len(pos) != 1 || *domain == "" || strings.ContainsAny(*domain, "@ <>") || *timeout <= 0 {
		fmt.Fprint(stderr, checkUsage)
		return exitError
	}
	addr, err := smtpcheck.ParseServer(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "nobounce check: %v\n", err)
		return exitError
	}
	if *helo == "" {
		*helo, _ = os.Hostname()
	}
	r := smtpcheck.Run(context.Background(), smtpcheck.Options{
		Addr: addr, Domain: strings.ToLower(*domain), Helo: *helo, Data: *data, Timeout: *timeout,
	})
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(r)
	} else {
		writeCheckReport(stdout, r)
	}
	switch r.Class {
	case smtpcheck.C3:
		return exitCheckC3
	case smtpcheck.C2:
		return exitCheckC2
	case smtpcheck.C1:
		return exitCheckC1
	}
	return exitCheckUnknown
}

func writeCheckReport(w io.Writer, r smtpcheck.Report) {
	fmt.Fprintf(w, "nobounce check of %s for %s\n\n", r.Server, r.Domain)
	for _, l := range r.Transcript {
		fmt.Fprintf(w, "  %s\n", l)
	}
	fmt.Fprintln(w)
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-12s%s\n", k+":", v)
		}
	}
	line("postmaster", r.Postmaster)
	if r.ProbeRcpt != "" {
		line("unknown", "RCPT TO:<"+r.Probe+"> "+r.ProbeRcpt)
	}
	switch {
	case r.DataTested:
		line("after DATA", r.ProbeData)
	case r.Class == smtpcheck.C1:
		line("after DATA", "not tested (add --data to tell C2 from C1)")
	}
	class := string(r.Class)
	if r.Class == smtpcheck.Unknown {
		class = "could not tell"
	}
	fmt.Fprintf(w, "%-12s%s: %s\n", "class:", class, strings.TrimPrefix(r.Summary, "could not tell: "))
	fmt.Fprintf(w, "\nWhat to do:\n")
	for _, a := range r.Advice {
		fmt.Fprintf(w, "  - %s\n", a)
	}
}
