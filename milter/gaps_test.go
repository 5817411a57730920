package milter

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	gomilter "github.com/emersion/go-milter"

	"github.com/nobounce/nobounce/sockaddr"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines(substr string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, l := range strings.Split(s.b.String(), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}

// TestGapMacrosMerged: go-milter hands each callback only the latest macro
// packet. Postfix sends the queue id with the RCPT stage and other macros
// later; the verdict must still know the queue id and the authenticated user.
func TestGapMacrosMerged(t *testing.T) {
	var logs syncBuffer
	sc := &recScanner{}
	_, c := startServer(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, settings(sc))
	s := connect(t, c)
	if err := s.Macros(gomilter.CodeMail, "{auth_authen}", "carol"); err != nil {
		t.Fatal(err)
	}
	mustContinue(t, "MAIL", func() (*gomilter.Action, error) { return s.Mail("carol@example.test", nil) })
	if err := s.Macros(gomilter.CodeRcpt, "i", "4XyZ1234"); err != nil {
		t.Fatal(err)
	}
	mustContinue(t, "RCPT", func() (*gomilter.Action, error) { return s.Rcpt("alice@example.test", nil) })
	if err := s.Macros(gomilter.CodeHeader, "{other}", "x"); err != nil {
		t.Fatal(err)
	}
	mustContinue(t, "HEADER", func() (*gomilter.Action, error) { return s.HeaderField("Subject", "s") })
	if err := s.Macros(gomilter.CodeEOB, "{msg_id}", "<m@x>"); err != nil {
		t.Fatal(err)
	}
	mustContinue(t, "EOH", s.HeaderEnd)
	if _, act, err := s.End(); err != nil || replyOf(act) != "accept" {
		t.Fatalf("EOB: %v %v", act, err)
	}
	v := logs.lines("msg=verdict")
	if len(v) != 1 || !strings.Contains(v[0], "queue_id=4XyZ1234") {
		t.Fatalf("verdict log lines %q: want one with queue_id=4XyZ1234", v)
	}
	if got := sc.seen; len(got) != 1 {
		t.Fatalf("scanner saw %d messages", len(got))
	}
}

// TestGapBackendKeptAfterReject: go-milter replaces the backend after a bare
// reject or accept, losing the connection's data. After a rejected and an
// accepted message, the third still knows the client and its HELO.
func TestGapBackendKeptAfterReject(t *testing.T) {
	var logs syncBuffer
	sc := &recScanner{marker: "VIRUS"}
	_, c := startServer(t, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, settings(sc))
	s := connect(t, c)
	virus := clean
	virus.body = []string{"VIRUS\r\n"}
	for _, m := range []msg{virus, clean, clean} {
		send(t, s, m)
	}
	v := logs.lines("msg=verdict")
	if len(v) != 3 {
		t.Fatalf("%d verdict lines, want 3: %q", len(v), v)
	}
	for i, l := range v {
		if !strings.Contains(l, "client=192.0.2.7") || !strings.Contains(l, "helo=client.example") {
			t.Errorf("message %d lost the connection data: %s", i+1, l)
		}
	}
	if strings.Contains(logs.b.String(), "replaced a session backend") {
		t.Error("go-milter replaced the backend")
	}
}

func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "milter.sock")
	a := sockaddr.Addr{Network: "unix", Address: path}

	// A stale socket (nobody listening) is replaced.
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	ln, err := Listen(a, 0o660, "")
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %o, want 660", fi.Mode().Perm())
	}
	// A live one is not taken over.
	if _, err := Listen(a, 0o660, ""); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("second Listen on a live socket: %v", err)
	}
	ln.Close()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket left behind after close: %v", err)
	}
	// A regular file is never removed.
	if err := os.WriteFile(path, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(a, 0o660, ""); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a regular file: %v", err)
	}
	// Group by name and by number; an unknown group is an error.
	os.Remove(path)
	if _, err := Listen(a, 0o660, "no-such-group-nobounce"); err == nil {
		t.Error("unknown group accepted")
	}
	ln, err = Listen(a, 0o600, "0")
	if err != nil {
		t.Fatalf("group 0: %v", err)
	}
	ln.Close()
}
