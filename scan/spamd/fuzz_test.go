package spamd

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

// FuzzParseSpamcReply feeds arbitrary answers to the parser: it must not
// panic, every failure must be spamd's own (errReply), a missing answer or
// a protocol error, and what it accepts must be sane and survive being
// written back in spamd's form and parsed again.
func FuzzParseSpamcReply(f *testing.F) {
	for _, s := range []string{
		okAnswer,
		"SPAMD/1.1 0 EX_OK\r\nContent-length: 103\r\nSpam: True ; 1004.2 / 5.0\r\n\r\nGTUBE,MISSING_DATE,MISSING_HEADERS,MISSING_MID,NO_HEADERS_MESSAGE,NO_RECEIVED,NO_RELAYS,TVD_SPACE_RATIO",
		"SPAMD/1.1 0 EX_OK\r\nSpam: False ; -0.5 / 5.0\r\n\r\nALL_TRUSTED\r\n",
		"SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: No ; 4.9 / 5.0\r\n\r\n",
		"SPAMD/1.0 76 Bad header line: (Content-Length mismatch: Expected 99999 bytes, got 5 bytes)\r\n",
		"SPAMD/1.0 69 Service Unavailable: zlib: failed\r\n",
		"SPAMD/1.5 0 PONG\r\n",
		"SPAMD/1.1 0 EX_OK\r\nContent-length: 30\r\nSpam: True ; 15.3 / 5.0\r\n\r\nGTUBE,MISS",
		"SPAMD/1.1 0 EX_OK\r\nSpam: True ; 1e308 / 5.0\r\n\r\n",
		"SPAMD/1.1 0 EX_OK\nSpam: True;6/5\n\nA,,B,",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rp, err := parseReply(bytes.NewReader(data))
		if err != nil {
			var er *errReply
			if !errors.As(err, &er) && !errors.Is(err, ErrProtocol) && !errors.Is(err, errNoAnswer) {
				t.Fatalf("error of an unexpected kind: %v", err)
			}
			if errors.As(err, &er) && er.Code == 0 {
				t.Fatalf("errReply with code 0: %v", err)
			}
			return
		}
		for _, f := range []float64{rp.Score, rp.Required} {
			if math.IsNaN(f) || math.IsInf(f, 0) {
				t.Fatalf("score %v", f)
			}
		}
		for _, sym := range rp.Symbols {
			if sym == "" || strings.ContainsAny(sym, ", \t\r\n:") {
				t.Fatalf("symbol %q", sym)
			}
		}
		// Written back as spamd would, it parses to the same.
		spam := "False"
		if rp.IsSpam {
			spam = "True"
		}
		body := strings.Join(rp.Symbols, ",")
		again := fmt.Sprintf("SPAMD/1.1 0 EX_OK\r\nContent-length: %d\r\nSpam: %s ; %s / %s\r\n\r\n%s",
			len(body), spam, fmtScore(rp.Score), fmtScore(rp.Required), body)
		rp2, err := parseReply(strings.NewReader(again))
		if err != nil {
			t.Fatalf("written back as %q: %v", again, err)
		}
		if rp2.IsSpam != rp.IsSpam || rp2.Score != rp.Score || rp2.Required != rp.Required || strings.Join(rp2.Symbols, ",") != body {
			t.Fatalf("round trip: %+v, then %+v", rp, rp2)
		}
	})
}
