package config

import (
	"strconv"
	"strings"
)

// Error is one problem with the configuration.
type Error struct {
	File string // "" when the config did not come from a file
	Line int    // 1-based; 0 when unknown (a default, or no file)
	Key  string // dotted key, "clamd.on_error"; "" for syntax errors
	Msg  string
}

// Error renders "FILE:LINE: key: problem", leaving out the parts that are
// unknown; a line without a file reads "line N: key: problem".
func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.File != "" && e.Line > 0:
		b.WriteString(e.File + ":" + strconv.Itoa(e.Line) + ": ")
	case e.File != "":
		b.WriteString(e.File + ": ")
	case e.Line > 0:
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors lists every problem found, in file order; its Error is one problem
// per line. Parse, Load and Validate return an Errors or nil.
type Errors []error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Unwrap lets errors.Is and errors.As look at each problem.
func (es Errors) Unwrap() []error { return es }

// orNil turns an empty list into a nil error (not a nil Errors in a
// non-nil interface).
func (es Errors) orNil() error {
	if len(es) == 0 {
		return nil
	}
	return es
}
