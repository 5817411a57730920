package main

import (
	"flag"
	"io"
	"strings"
)

// listFlag is a repeatable flag: -clamd A -clamd B.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// parseInterspersed parses flags anywhere among the arguments, so that
// "nobounce scan msg.eml -clamd X" works like "nobounce scan -clamd X msg.eml".
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("nobounce "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
