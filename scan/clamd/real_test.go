package clamd

import (
	"encoding/base64"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/sockaddr"
)

// The tests against a real clamd run when NOBOUNCE_CLAMD names its socket
// ("unix:/run/clamav/clamd.ctl", "inet:127.0.0.1:3310"). Its database must
// detect EICAR: the official one does, or a DatabaseDirectory with
//
//	Eicar-Test-Signature:0:*:<hex of the 68 EICAR bytes>
//
// in an .ndb file. NOBOUNCE_CLAMD_STREAMMAX, when set, is that clamd's
// StreamMaxLength in bytes, for the over-size test.

// eicar is the EICAR anti-virus test file, written so that this source file
// is not itself detected.
var eicar = strings.Join([]string{`X5O!P%@AP[4\PZX54(P^)7CC)7}$`, `EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`}, "")

func realClamd(t testing.TB) sockaddr.Addr {
	t.Helper()
	env := os.Getenv("NOBOUNCE_CLAMD")
	if env == "" {
		t.Skip("NOBOUNCE_CLAMD is not set: no real clamd to test against (e.g. NOBOUNCE_CLAMD=unix:/run/clamav/clamd.ctl)")
	}
	a, err := sockaddr.Parse(env)
	if err != nil {
		t.Fatalf("NOBOUNCE_CLAMD: %v", err)
	}
	return a
}

// mimeMessage returns a message in wire form with one attachment.
func mimeMessage(attachment string) []byte {
	b64 := base64.StdEncoding.EncodeToString([]byte(attachment))
	return []byte("From: a@example.org\r\nTo: b@example.org\r\nSubject: test\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n" +
		"--b1\r\nContent-Type: text/plain\r\n\r\nSee the attachment.\r\n" +
		"--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"t.com\"\r\n" +
		"Content-Transfer-Encoding: base64\r\n\r\n" + b64 + "\r\n--b1--\r\n")
}

func TestRealClamd(t *testing.T) {
	addr := realClamd(t)
	s := newScanner(t, 30*time.Second, addr)
	tests := []struct {
		name   string
		msg    []byte
		status scan.Status
	}{
		{"eicar attached", mimeMessage(eicar), scan.Infected},
		{"eicar raw", []byte(eicar), scan.Infected},
		{"clean text", message(200 << 10), scan.Clean},
		{"clean attachment", mimeMessage("just some text, nothing to see\n"), scan.Clean},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := s.Begin(t.Context(), nil)
			if err := writeAll(j, tt.msg, 4096); err != nil {
				t.Fatal(err)
			}
			r := j.Finish(t.Context())
			t.Logf("%v %q %v in %v", r.Status, r.Threat, r.Err, r.Elapsed)
			if r.Status != tt.status {
				t.Fatalf("status %v (%v), want %v", r.Status, r.Err, tt.status)
			}
			if tt.status == scan.Infected && r.Threat == "" {
				t.Error("infected without a threat name")
			}
		})
	}
	if h := s.Ping(t.Context()); !h[0].Up {
		t.Errorf("Ping: %v", h[0].Err)
	}
}

func TestRealClamdSizeLimit(t *testing.T) {
	addr := realClamd(t)
	limit, err := strconv.Atoi(os.Getenv("NOBOUNCE_CLAMD_STREAMMAX"))
	if err != nil || limit <= 0 {
		t.Skip("NOBOUNCE_CLAMD_STREAMMAX (the clamd's StreamMaxLength in bytes) is not set")
	}
	s := newScanner(t, 30*time.Second, addr)
	piece := message(64 << 10)
	for _, size := range []int{limit + 1, 2 * limit, 10 * limit} {
		j := s.Begin(t.Context(), nil)
		werr := writeRepeat(j, piece, size, nil)
		r := j.Finish(t.Context())
		t.Logf("%d bytes: %v %v (write: %v)", size, r.Status, r.Err, werr)
		if r.Status != scan.Failed || !errors.Is(r.Err, ErrSizeLimit) {
			t.Errorf("%d bytes with StreamMaxLength %d: %v %v", size, limit, r.Status, r.Err)
		}
	}
	j := s.Begin(t.Context(), nil)
	if err := writeRepeat(j, piece, limit, nil); err != nil {
		t.Fatal(err)
	}
	if r := j.Finish(t.Context()); r.Status != scan.Clean {
		t.Errorf("exactly StreamMaxLength: %v %v", r.Status, r.Err)
	}
}
