package smtpcheck

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nobounce/nobounce/recipient/smtptest"
	"github.com/nobounce/nobounce/sockaddr"
)

func TestRun(t *testing.T) {
	users := []string{"postmaster@example.test", "alice@example.test"}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := sockaddr.Addr{Network: "tcp", Address: ln.Addr().String()}
	ln.Close()
	tests := []struct {
		name     string
		cfg      *smtptest.Config // nil: nothing listens
		data     bool
		class    Class
		summary  string
		messages int // messages the server received
	}{
		{"rejects at RCPT", &smtptest.Config{Users: users}, false, C3, "refused at RCPT TO", 0},
		{"rejects at RCPT, with --data", &smtptest.Config{Users: users}, true, C3, "refused at RCPT TO", 0},
		{"catch-all", &smtptest.Config{CatchAll: true}, false, C1, "without --data", 0},
		{"catch-all, with --data", &smtptest.Config{CatchAll: true}, true, C1, "is accepted", 1},
		{"rejects after DATA, without --data", &smtptest.Config{Users: users, RejectData: true}, false, C1, "cannot be told", 0},
		{"rejects after DATA", &smtptest.Config{Users: users, RejectData: true}, true, C2, "refused only after DATA", 1},
		{"greylisting", &smtptest.Config{RcptTempFail: true}, false, Unknown, "temporary failure", 0},
		{"refuses the null sender", &smtptest.Config{RejectNullSender: true}, false, Unknown, "null sender is refused", 0},
		{"not a server for the domain", &smtptest.Config{Users: []string{"alice@other.test"}}, false, Unknown, "postmaster@example.test is refused", 0},
		{"refuses the connection", &smtptest.Config{Greeting: "554 5.3.2 no"}, false, Unknown, "cannot talk", 0},
		{"down", nil, false, Unknown, "cannot talk", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := down
			var srv *smtptest.Server
			if tt.cfg != nil {
				srv = smtptest.Start(t, *tt.cfg)
				addr = srv.Addr
			}
			var trace []string
			r := Run(context.Background(), Options{Addr: addr, Domain: "example.test", Data: tt.data, Timeout: 5 * time.Second,
				Trace: func(dir, line string) { trace = append(trace, dir+" "+line) }})
			if r.Class != tt.class || !strings.Contains(r.Summary, tt.summary) {
				t.Errorf("class %s (%s), want %s (%q)\n%s", r.Class, r.Summary, tt.class, tt.summary, strings.Join(trace, "\n"))
			}
			if len(r.Advice) == 0 || (tt.class == Unknown) != (r.Error != "") {
				t.Errorf("advice %q, error %q", r.Advice, r.Error)
			}
			if !strings.HasPrefix(r.Probe, "nobounce-check-") || !strings.HasSuffix(r.Probe, "@example.test") {
				t.Errorf("probe %q", r.Probe)
			}
			if srv != nil {
				n := 0
				if srv.LastMessage() != "" {
					n = 1
				}
				if n != tt.messages {
					t.Errorf("the server received %d messages, want %d", n, tt.messages)
				}
				for _, rc := range srv.Rcpts() {
					if !strings.HasPrefix(rc, "nobounce-check-") && rc != "postmaster@example.test" {
						t.Errorf("RCPT TO %q: the check asks for postmaster and the probe only", rc)
					}
				}
			}
		})
	}
}

func TestRunTimeout(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Config{Silent: true})
	start := time.Now()
	r := Run(context.Background(), Options{Addr: srv.Addr, Domain: "example.test", Timeout: 300 * time.Millisecond})
	if r.Class != Unknown || time.Since(start) > 3*time.Second {
		t.Errorf("silent server: %s after %v", r.Class, time.Since(start))
	}
}

func TestParseServer(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"mx.example.com", "mx.example.com:25", false},
		{"mx.example.com:2525", "mx.example.com:2525", false},
		{"127.0.0.1", "127.0.0.1:25", false},
		{"::1", "[::1]:25", false},
		{"[::1]", "[::1]:25", false},
		{"[::1]:587", "[::1]:587", false},
		{"inet:127.0.0.1:2525", "127.0.0.1:2525", false},
		{"inet:2525@127.0.0.1", "127.0.0.1:2525", false},
		{"unix:/run/smtp", "", true},
		{"mx.example.com:x", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		a, err := ParseServer(tt.in)
		if (err != nil) != tt.err || !tt.err && a.Address != tt.want {
			t.Errorf("ParseServer(%q) = %v, %v; want %q", tt.in, a, err, tt.want)
		}
	}
}

func FuzzParseServer(f *testing.F) {
	for _, s := range []string{"mx.example.com", "mx:2525", "::1", "[::1]:587", "inet:127.0.0.1:25", "inet:25@10.0.0.1", "unix:/x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseServer(s)
		if err != nil {
			return
		}
		if a.Network != "tcp" {
			t.Fatalf("ParseServer(%q) = %v: not TCP", s, a)
		}
		b, err := ParseServer(a.Address)
		if err != nil || b != a {
			t.Fatalf("ParseServer(%q) = %v; its address gives %v, %v", s, a, b, err)
		}
	})
}
