package spamd

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/sockaddr"
)

// The tests against a real spamd run when NOBOUNCE_SPAMD names its socket
// ("inet:127.0.0.1:783"), e.g. one started by testbed/spamd.sh:
//
//	bash testbed/spamd.sh start /tmp/spamd 17830
//	NOBOUNCE_SPAMD=inet:127.0.0.1:17830 go test ./scan/spamd/

func realSpamd(t testing.TB) sockaddr.Addr {
	t.Helper()
	env := os.Getenv("NOBOUNCE_SPAMD")
	if env == "" {
		t.Skip("NOBOUNCE_SPAMD is not set: no real spamd to test against (e.g. NOBOUNCE_SPAMD=inet:127.0.0.1:783)")
	}
	a, err := sockaddr.Parse(env)
	if err != nil {
		t.Fatalf("NOBOUNCE_SPAMD: %v", err)
	}
	return a
}

// gtube is SpamAssassin's test string, in two halves so that this file is
// no test message itself.
var gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST" + "-EMAIL*C.34X"

// ham is an ordinary message with every header a mail client writes.
func ham(body string) []byte {
	return []byte("Received: from client.example.org (client.example.org [192.0.2.7])\r\n" +
		"\tby mx.example.test with ESMTP id 4AbCdE; Mon, 23 Nov 2026 10:00:00 +0000\r\n" +
		"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n" +
		"From: Alice Example <alice@example.org>\r\n" +
		"To: Bob Example <bob@example.test>\r\n" +
		"Subject: Minutes of Monday's meeting\r\n" +
		"Message-ID: <20261123100000.12345@client.example.org>\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n\r\n" + body)
}

func TestRealSpamd(t *testing.T) {
	addr := realSpamd(t)
	s := newScanner(t, Options{Addrs: []sockaddr.Addr{addr}, Timeout: 60 * time.Second, User: "nobody"})
	long := strings.Repeat("We went through the agenda and agreed to meet again next week.\r\n", 9000) // ~580 KiB: a spool on disk
	tests := []struct {
		name   string
		msg    []byte
		advice scan.Advice
		symbol string
	}{
		{"gtube", ham("Hello,\r\n\r\n" + gtube + "\r\n"), scan.AdviseReject, "GTUBE"},
		{"gtube without headers", []byte("Subject: test\r\n\r\n" + gtube + "\r\n"), scan.AdviseReject, "GTUBE"},
		{"ham", ham("Hello Bob,\r\n\r\nthe minutes are below. See you on Monday.\r\n\r\nAlice\r\n"), scan.AdviseNone, ""},
		{"ham on disk", ham(long), scan.AdviseNone, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := spooled(t, s, t.Context(), tt.msg)
			t.Logf("%v %v %q %+v in %v (%v)", r.Status, r.Advice, r.Rule, r.Spam, r.Elapsed, r.Err)
			if r.Status != scan.Clean || r.Spam == nil {
				t.Fatalf("%v %v", r.Status, r.Err)
			}
			if r.Advice != tt.advice {
				t.Errorf("advice %v, want %v", r.Advice, tt.advice)
			}
			if tt.symbol != "" && !slices.Contains(r.Spam.Symbols, tt.symbol) {
				t.Errorf("symbols %v lack %s", r.Spam.Symbols, tt.symbol)
			}
			if r.Spam.Required != 5 {
				t.Errorf("required %v, want Debian's 5", r.Spam.Required)
			}
			if tt.advice == scan.AdviseReject && (r.Spam.Score < 1000 || !r.Spam.IsSpam) {
				t.Errorf("GTUBE scored %v, spam %v", r.Spam.Score, r.Spam.IsSpam)
			}
		})
	}
	t.Run("too large", func(t *testing.T) {
		small := newScanner(t, Options{Addrs: []sockaddr.Addr{addr}, MaxSize: 100})
		if r := spooled(t, small, t.Context(), ham(gtube+"\r\n")); r.Status != scan.Clean || r.Skipped != SkippedTooLarge {
			t.Errorf("%v skipped %q", r.Status, r.Skipped)
		}
	})
	if h := s.Ping(t.Context()); !h[0].Up {
		t.Errorf("Ping: %v", h[0].Err)
	}
}
