package rspamd

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nobounce/nobounce/scan"
)

// The tests against a real rspamd run when NOBOUNCE_RSPAMD is the URL of
// its normal worker, e.g. one started by testbed/rspamd.sh:
//
//	bash testbed/rspamd.sh start /tmp/rspamd 17833
//	NOBOUNCE_RSPAMD=http://127.0.0.1:17833 go test ./scan/rspamd/

func realRspamd(t testing.TB) string {
	t.Helper()
	u := os.Getenv("NOBOUNCE_RSPAMD")
	if u == "" {
		t.Skip("NOBOUNCE_RSPAMD is not set: no real rspamd to test against (e.g. NOBOUNCE_RSPAMD=http://127.0.0.1:11333)")
	}
	return u
}

// gtube is SpamAssassin's test string, which rspamd knows too; in two
// halves so that this file is no test message itself.
var gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST" + "-EMAIL*C.34X"

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

func TestRealRspamd(t *testing.T) {
	u := realRspamd(t)
	s := newScanner(t, Options{URLs: []string{u}, Timeout: 60 * time.Second})
	env := &scan.Envelope{QueueID: "4Bc9xK0Zq2z1", ClientAddr: "192.0.2.7", ClientName: "client.example.org",
		Helo: "client.example.org", From: "alice@example.org", Rcpts: []string{"bob@example.test"}, MTAName: "mx.example.test"}
	long := strings.Repeat("We went through the agenda and agreed to meet again next week.\r\n", 9000)
	tests := []struct {
		name   string
		env    *scan.Envelope
		msg    []byte
		advice scan.Advice
		symbol string
	}{
		{"gtube", env, ham("Hello,\r\n\r\n" + gtube + "\r\n"), scan.AdviseReject, "GTUBE"},
		{"gtube without envelope", nil, []byte("Subject: test\r\n\r\n" + gtube + "\r\n"), scan.AdviseReject, "GTUBE"},
		{"ham", env, ham("Hello Bob,\r\n\r\nthe minutes are below. See you on Monday.\r\n\r\nAlice\r\n"), scan.AdviseNone, "RCPT_COUNT_ONE"},
		{"ham on disk", env, ham(long), scan.AdviseNone, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := spooled(t, s, t.Context(), tt.env, tt.msg)
			t.Logf("%v %v %q reply %q score %v/%v in %v (%v)", r.Status, r.Advice, r.Rule, r.Reply, spamScore(r), spamRequired(r), r.Elapsed, r.Err)
			if r.Status != scan.Clean || r.Spam == nil {
				t.Fatalf("%v %v", r.Status, r.Err)
			}
			if r.Advice != tt.advice {
				t.Errorf("advice %v, want %v", r.Advice, tt.advice)
			}
			if tt.symbol != "" && !slices.Contains(r.Spam.Symbols, tt.symbol) {
				t.Errorf("symbols %v lack %s", r.Spam.Symbols, tt.symbol)
			}
			if tt.advice == scan.AdviseReject && r.Reply == "" {
				t.Error("no smtp_message for GTUBE")
			}
		})
	}
	t.Run("tag at", func(t *testing.T) {
		// A threshold below the ham's score tags it.
		low := newScanner(t, Options{URLs: []string{u}, TagAt: 0.01})
		r := spooled(t, low, t.Context(), env, ham("Hello Bob\r\n"))
		if r.Status != scan.Clean || r.Spam.Score < 0.01 || r.Advice != scan.AdviseTag {
			t.Errorf("%v %v %q %+v", r.Status, r.Advice, r.Rule, r.Spam)
		}
	})
	if h := s.Ping(t.Context()); !h[0].Up {
		t.Errorf("Ping: %v", h[0].Err)
	}
}

func spamScore(r scan.Result) float64 {
	if r.Spam == nil {
		return 0
	}
	return r.Spam.Score
}

func spamRequired(r scan.Result) float64 {
	if r.Spam == nil {
		return 0
	}
	return r.Spam.Required
}
