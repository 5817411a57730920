package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/nobounce/nobounce/milter"
	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/verdict"
)

func scanCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("scan", stderr)
	var o overrides
	cfgPath := fs.String("config", "", "configuration `FILE` (TOML); without it built-in defaults apply")
	o.addSharedFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return exitError
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "usage: nobounce scan [-config FILE] [-clamd ADDR]... FILE.eml\n")
		return exitError
	}
	cfg, err := loadConfig(*cfgPath, &o)
	if err != nil {
		fmt.Fprintf(stderr, "nobounce scan: %v\n", err)
		return exitError
	}
	f, err := os.Open(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "nobounce scan: %v\n", err)
		return exitError
	}
	defer f.Close()
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	st, err := buildSettings(cfg, logger, process{metrics: milter.NewMetrics(nil), caches: &milter.RecipientCaches{}})
	if err != nil {
		fmt.Fprintf(stderr, "nobounce scan: %v\n", err)
		return exitError
	}

	stream := scan.Open(context.Background(), st.Scanners, &scan.Envelope{}, st.Scan)
	if err := copyWireForm(stream, f); err != nil {
		stream.Abort()
		fmt.Fprintf(stderr, "nobounce scan: read %s: %v\n", pos[0], err)
		return exitError
	}
	ctx, cancel := context.WithTimeout(context.Background(), st.EOMTimeout)
	defer cancel()
	results := stream.Finish(ctx)
	v := st.Decide(results, stream.Oversize())

	fmt.Fprintf(stdout, "file:    %s\nsize:    %d bytes (wire form)\n", pos[0], stream.Size())
	if len(results) == 0 && !stream.Oversize() {
		fmt.Fprintf(stdout, "scanner: none configured\n")
	}
	for _, r := range results {
		line := r.Status.String()
		switch {
		case r.Status == scan.Infected:
			line += " (" + verdict.Sanitize(r.Threat, 0) + ")"
		case r.Err != nil:
			line += " (" + r.Err.Error() + ")"
		case r.Skipped != "":
			line = "not scanned (" + r.Skipped + ")"
		}
		if r.Spam != nil {
			line += fmt.Sprintf(", score %.1f/%.1f", r.Spam.Score, r.Spam.Required)
		}
		if r.Advice != scan.AdviseNone {
			line += ", advises " + r.Advice.String()
		}
		if r.Rule != "" {
			line += ": " + verdict.Sanitize(r.Rule, 0)
		}
		if r.Server != "" {
			line += " via " + r.Server
		}
		fmt.Fprintf(stdout, "%-8s %s in %s\n", r.Scanner+":", line, r.Elapsed.Round(1e5))
	}
	if stream.Oversize() {
		fmt.Fprintf(stdout, "scan:    not scanned, over max_size %d bytes\n", st.Scan.MaxSize)
	}
	fmt.Fprintf(stdout, "verdict: %s (%s)\nreply:   %s\n", v.Action, v.Reason, v.Reply())
	if v.Action == verdict.Accept || v.Action == verdict.Tag {
		for _, h := range v.Headers {
			fmt.Fprintf(stdout, "header:  %s: %s\n", h.Name, h.Value)
		}
	}
	switch v.Action {
	case verdict.Reject:
		return exitReject
	case verdict.TempFail:
		return exitTempFail
	}
	return exitOK
}

// copyWireForm streams a message file as an MTA would hand it over after
// DATA: CRLF line ends, and no mbox "From " separator line.
func copyWireForm(w io.Writer, r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	bw := bufio.NewWriterSize(w, 64<<10)
	first := true
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			if first && bytes.HasPrefix(line, []byte("From ")) {
				line = nil
			}
			if n := len(line); n > 0 && line[n-1] == '\n' {
				line = bytes.TrimSuffix(line[:n-1], []byte("\r"))
				bw.Write(line)
				bw.WriteString("\r\n")
			} else {
				bw.Write(line)
			}
		}
		first = false
		switch err {
		case nil, bufio.ErrBufferFull: // a longer line goes on in the next slice
			continue
		case io.EOF:
			return bw.Flush()
		default:
			return err
		}
	}
}

func configCheckCmd(path string, stdout, stderr io.Writer) int {
	c, err := loadConfig(path, &overrides{})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitError
	}
	fmt.Fprintf(stdout, "%s: OK (listen %s, clamd %v)\n", path, c.Listen, c.Clamd.Addresses)
	return exitOK
}
