package main

import (
	"net"
	"strings"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/nobounce/nobounce/sockaddr"
)

func TestParseMessage(t *testing.T) {
	raw := "From someone@example.com  Thu Aug 22 12:36:23 2002\n" +
		"Subject: hello\nX-Folded: a\n\tb\nnot a header line\nbody 1\n.dot\n"
	m := parseMessage([]byte(raw))
	want := [][2]string{{"Subject", "hello"}, {"X-Folded", "a\n\tb"}}
	if len(m.headers) != len(want) || m.headers[0] != want[0] || m.headers[1] != want[1] {
		t.Fatalf("headers %q, want %q", m.headers, want)
	}
	if got := string(m.body); got != "not a header line\r\nbody 1\r\n.dot\r\n" {
		t.Fatalf("body %q", got)
	}
}

func TestWorkloadUniqueAndEicar(t *testing.T) {
	w := newWorkload(synthetic(100), 2)
	a, b := w.get(1), w.get(2)
	if a.headers[0] == b.headers[0] || a.headers[0][0] != "X-Bench-Id" {
		t.Fatalf("not unique: %q %q", a.headers[0], b.headers[0])
	}
	if strings.Contains(string(a.body), "EICAR") || !strings.Contains(string(b.body), eicar()) {
		t.Fatal("EICAR not in every 2nd message only")
	}
}

// TestClientAgainstGoMilter drives go-milter's NoOpMilter, which answers
// protocol version 2 to Postfix's offer of 6: the client must fall back as
// Postfix does, and abort a message mid-body on request.
func TestClientAgainstGoMilter(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &gomilter.Server{NewMilter: func() gomilter.Milter { return gomilter.NoOpMilter{} }}
	go srv.Serve(ln)
	defer srv.Close()
	a, _ := sockaddr.Parse("inet:" + ln.Addr().String())
	c, err := dialMilter(a, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if c.version != 2 {
		t.Fatalf("version %d, want 2", c.version)
	}
	if ans, err := c.hello(); err != nil || ans.code != 'c' {
		t.Fatalf("hello: %q %v", ans.code, err)
	}
	m := synthetic(200 << 10)[0]
	if kind, _, err := c.message(m, 0, false); err != nil || kind != "accept" {
		t.Fatalf("message: %q %v", kind, err)
	}
	if kind, _, err := c.message(m, 100<<10, false); err != nil || kind != "aborted" {
		t.Fatalf("aborted message: %q %v", kind, err)
	}
	if kind, _, err := c.message(m, 0, false); err != nil || kind != "accept" {
		t.Fatalf("message after an abort: %q %v", kind, err)
	}
}
