package spamd

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/sockaddr"
)

var networks = []string{"unix", "tcp"}

func newScanner(t testing.TB, o Options) *Scanner {
	t.Helper()
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = time.Second
	}
	if o.RetryDown == 0 {
		o.RetryDown = time.Minute
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// spooled scans msg the way a scan.Stream does: the spool is filled, then
// the job begun on it is finished.
func spooled(t testing.TB, s *Scanner, ctx context.Context, msg []byte) scan.Result {
	t.Helper()
	sp := scan.NewSpool(t.TempDir(), 0)
	defer sp.Close()
	j := s.BeginSpooled(ctx, &scan.Envelope{QueueID: "Q1"}, sp)
	if _, err := sp.Write(msg); err != nil {
		t.Fatal(err)
	}
	defer j.Abort()
	return j.Finish(ctx)
}

// written scans msg through Begin and Write in pieces.
func written(t testing.TB, s *Scanner, ctx context.Context, msg []byte, piece int) scan.Result {
	t.Helper()
	j := s.Begin(ctx, nil)
	defer j.Abort()
	for rest := msg; len(rest) > 0; {
		n := min(piece, len(rest))
		if w, err := j.Write(rest[:n]); err != nil || w != n {
			t.Fatalf("Write = %d, %v", w, err)
		}
		rest = rest[n:]
	}
	return j.Finish(ctx)
}

func isDown(s *Scanner, i int) bool { return s.pool.IsDown(i) }

func TestNew(t *testing.T) {
	a := []sockaddr.Addr{{Network: "tcp", Address: "127.0.0.1:783"}}
	for _, tt := range []struct {
		name string
		o    Options
		err  string
	}{
		{"no address", Options{}, "no address"},
		{"udp", Options{Addrs: []sockaddr.Addr{{Network: "udp", Address: "127.0.0.1:1"}}}, "want a unix socket path or a TCP host:port"},
		{"user with newline", Options{Addrs: a, User: "a\r\nContent-length: 0"}, "user"},
		{"user with space around", Options{Addrs: a, User: " bob"}, "user"},
		{"NaN tag", Options{Addrs: a, TagAt: math.NaN()}, "NaN"},
		{"NaN reject", Options{Addrs: a, RejectAt: math.NaN()}, "NaN"},
	} {
		if _, err := New(tt.o); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: err %v, want %q", tt.name, err, tt.err)
		}
	}
	s, err := New(Options{Addrs: a, User: "debian-spamd"})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "spamd" {
		t.Errorf("Name() = %q", s.Name())
	}
	o := s.opts
	if o.Timeout != DefaultTimeout || o.ConnectTimeout != DefaultConnectTimeout || o.RetryDown != DefaultRetryDown ||
		o.MaxSize != DefaultMaxSize || o.RejectAt != DefaultRejectAt || o.TagAt != 0 {
		t.Errorf("defaults not applied: %+v", o)
	}
}

// TestPolicy: the score against TagAt and RejectAt.
func TestPolicy(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		tagAt, rejectAt float64
		score, required float64
		isSpam          bool
		advice          scan.Advice
		rule            string
	}{
		{0, 0, 1.2, 5, false, scan.AdviseNone, "score 1.2 < 5"},
		{0, 0, -3, 5, false, scan.AdviseNone, "score -3 < 5"},
		{0, 0, 5, 5, true, scan.AdviseTag, "score 5 >= 5"},
		{0, 0, 9.9, 5, true, scan.AdviseTag, "score 9.9 >= 5"},
		{0, 0, 10, 5, true, scan.AdviseReject, "score 10 >= 10"},
		{0, 0, 1004.2, 5, true, scan.AdviseReject, "score 1004.2 >= 10"},
		// TagAt 0 follows spamd's own verdict, even with another required score.
		{0, 0, 7, 8, false, scan.AdviseNone, "score 7 < 8"},
		{0, 0, 8, 8, true, scan.AdviseTag, "score 8 >= 8"},
		{0, 0, 5, 5, false, scan.AdviseNone, "score 5, not spam by spamd's verdict (required 5)"},
		// An explicit TagAt overrides spamd's verdict both ways.
		{3, 0, 3.5, 5, false, scan.AdviseTag, "score 3.5 >= 3"},
		{7, 0, 6, 5, true, scan.AdviseNone, "score 6 < 7"},
		{0, 20, 15, 5, true, scan.AdviseTag, "score 15 >= 5"},
		{0, 6, 6, 5, true, scan.AdviseReject, "score 6 >= 6"},
		{0, inf, 1004.2, 5, true, scan.AdviseTag, "score 1004.2 >= 5"},
		{inf, inf, 1004.2, 5, true, scan.AdviseNone, "score 1004.2 < +Inf"},
		// A reject threshold below the tag threshold still rejects.
		{8, 4, 5, 5, true, scan.AdviseReject, "score 5 >= 4"},
	}
	for _, tt := range tests {
		s := newScanner(t, Options{Addrs: []sockaddr.Addr{{Network: "tcp", Address: "127.0.0.1:1"}}, TagAt: tt.tagAt, RejectAt: tt.rejectAt})
		advice, rule := s.advise(&reply{Score: tt.score, Required: tt.required, IsSpam: tt.isSpam})
		if advice != tt.advice || rule != tt.rule {
			t.Errorf("tag %v reject %v, score %v/%v spam %v: %v %q, want %v %q",
				tt.tagAt, tt.rejectAt, tt.score, tt.required, tt.isSpam, advice, rule, tt.advice, tt.rule)
		}
	}
}

// TestAnswers runs one message through the fake spamd answering in each
// way, over a unix socket and over TCP.
func TestAnswers(t *testing.T) {
	const short = 400 * time.Millisecond
	tests := []struct {
		name    string
		timeout time.Duration
		b       behaviour
		status  scan.Status
		advice  scan.Advice
		rule    string
		spam    *scan.Spam
		errHas  []string
		is      error
	}{
		{name: "clean", b: behaviour{}, status: scan.Clean, advice: scan.AdviseNone, rule: "score 1.2 < 5",
			spam: &scan.Spam{Score: 1.2, Required: 5, Symbols: []string{"MISSING_DATE", "MISSING_MID"}}},
		{name: "gtube", b: behaviour{answer: "SPAMD/1.1 0 EX_OK\r\nContent-length: 21\r\nSpam: True ; 1004.2 / 5.0\r\n\r\nGTUBE,MISSING_HEADERS"},
			status: scan.Clean, advice: scan.AdviseReject, rule: "score 1004.2 >= 10",
			spam: &scan.Spam{Score: 1004.2, Required: 5, Symbols: []string{"GTUBE", "MISSING_HEADERS"}, IsSpam: true}},
		{name: "tag", b: behaviour{answer: "SPAMD/1.1 0 EX_OK\r\nContent-length: 4\r\nSpam: True ; 6.0 / 5.0\r\n\r\nA,B\n"},
			status: scan.Clean, advice: scan.AdviseTag, rule: "score 6 >= 5",
			spam: &scan.Spam{Score: 6, Required: 5, Symbols: []string{"A", "B"}, IsSpam: true}},
		{name: "no symbols", b: behaviour{answer: "SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: False ; -0.1 / 5.0\r\n\r\n"},
			status: scan.Clean, advice: scan.AdviseNone, rule: "score -0.1 < 5", spam: &scan.Spam{Score: -0.1, Required: 5}},
		{name: "negative zero", b: behaviour{answer: "SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\nSpam: False ; -0.0 / 5.0\r\n\r\n"},
			status: scan.Clean, advice: scan.AdviseNone, rule: "score 0 < 5", spam: &scan.Spam{Score: 0, Required: 5}},
		{name: "spamd error", b: behaviour{answer: "SPAMD/1.0 69 Service Unavailable: Error fetching user preferences via SQL\r\n"},
			status: scan.Failed, errHas: []string{"answered 69 Service Unavailable: Error fetching user preferences"}},
		{name: "refused early", b: behaviour{early: "SPAMD/1.0 76 Bad header line: FOO\r\n"},
			status: scan.Failed, errHas: []string{"answered 76 Bad header line: FOO"}},
		{name: "truncated symbols", b: behaviour{answer: "SPAMD/1.1 0 EX_OK\r\nContent-length: 30\r\nSpam: True ; 15.3 / 5.0\r\n\r\nGTUBE,MISS"},
			status: scan.Failed, errHas: []string{"truncated: 10 of 30 bytes"}, is: ErrProtocol},
		{name: "truncated header", b: behaviour{answer: "SPAMD/1.1 0 EX_OK\r\nContent-length: 30\r\nSpam: Tr"},
			status: scan.Failed, errHas: []string{"middle of a line"}, is: ErrProtocol},
		{name: "no spam header", b: behaviour{answer: "SPAMD/1.1 0 EX_OK\r\nContent-length: 0\r\n\r\n"},
			status: scan.Failed, errHas: []string{"no Spam: header"}, is: ErrProtocol},
		{name: "garbage", b: behaviour{answer: "HTTP/1.1 400 Bad Request\r\n\r\n"},
			status: scan.Failed, errHas: []string{"not SPAMD/x.y"}, is: ErrProtocol},
		{name: "bad score", b: behaviour{answer: "SPAMD/1.1 0 EX_OK\r\nSpam: True ; lots / 5.0\r\n\r\n"},
			status: scan.Failed, errHas: []string{"score"}, is: ErrProtocol},
		{name: "odd symbol", b: behaviour{answer: "SPAMD/1.1 0 EX_OK\r\nContent-length: 12\r\nSpam: True ; 6 / 5\r\n\r\nA,B\r\nX-Evil:"},
			status: scan.Failed, errHas: []string{"not a rule name"}, is: ErrProtocol},
		{name: "closed without answer", b: behaviour{silent: true}, status: scan.Failed, errHas: []string{"closed without an answer"}},
		{name: "closed at once", b: behaviour{closeNow: true}, status: scan.Failed},
		{name: "slow drip", timeout: short, b: behaviour{drip: 50 * time.Millisecond},
			status: scan.Failed, errHas: []string{"timed out"}, is: ErrTimeout},
		{name: "hangs", timeout: short, b: behaviour{noReply: true},
			status: scan.Failed, errHas: []string{"timed out"}, is: ErrTimeout},
	}
	for _, network := range networks {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				f := newFake(t, tt.b)
				timeout := tt.timeout
				if timeout == 0 {
					timeout = 10 * time.Second
				}
				s := newScanner(t, Options{Addrs: []sockaddr.Addr{f.addr(network)}, Timeout: timeout})
				start := time.Now()
				r := spooled(t, s, t.Context(), message(3000))
				took := time.Since(start)
				t.Logf("%v %v %q err=%v", r.Status, r.Advice, r.Rule, r.Err)
				if r.Status != tt.status {
					t.Fatalf("status %v, want %v (err %v)", r.Status, tt.status, r.Err)
				}
				if r.Scanner != "spamd" || r.Server != f.addr(network).String() || r.Elapsed <= 0 {
					t.Errorf("scanner %q server %q elapsed %v", r.Scanner, r.Server, r.Elapsed)
				}
				if r.Advice != tt.advice || r.Rule != tt.rule {
					t.Errorf("advice %v %q, want %v %q", r.Advice, r.Rule, tt.advice, tt.rule)
				}
				if tt.spam == nil && r.Spam != nil || tt.spam != nil && (r.Spam == nil || !equalSpam(*r.Spam, *tt.spam)) {
					t.Errorf("spam %+v, want %+v", r.Spam, tt.spam)
				}
				if (r.Err != nil) != (tt.status == scan.Failed) {
					t.Errorf("err %v with status %v", r.Err, r.Status)
				}
				for _, sub := range tt.errHas {
					if r.Err == nil || !strings.Contains(r.Err.Error(), sub) {
						t.Errorf("err %v, want it to contain %q", r.Err, sub)
					}
				}
				if r.Err != nil && !strings.HasPrefix(r.Err.Error(), "spamd "+r.Server+": ") {
					t.Errorf("err %q does not start with the scanner and address", r.Err)
				}
				if tt.is != nil && !errors.Is(r.Err, tt.is) {
					t.Errorf("err %v is not %v", r.Err, tt.is)
				}
				if took > timeout+time.Second {
					t.Errorf("took %v with a timeout of %v", took, timeout)
				}
			})
		}
	}
}

func equalSpam(a, b scan.Spam) bool {
	return a.Score == b.Score && a.Required == b.Required && a.IsSpam == b.IsSpam &&
		strings.Join(a.Symbols, ",") == strings.Join(b.Symbols, ",")
}

// TestRequest: spamd receives the SPAMC request line, the exact
// Content-length, the User header when set, and the message byte for byte,
// from a spool in memory and from one on disk, through BeginSpooled and
// through Begin and Write.
func TestRequest(t *testing.T) {
	for _, tt := range []struct {
		name  string
		size  int
		user  string
		write bool
	}{
		{"small", 3000, "", false},
		{"small with user", 3000, "alice@example.test", false},
		{"on disk", scan.DefaultSpoolMemory + 12345, "", false},
		{"written", 100_001, "bob", true},
		{"written on disk", scan.DefaultSpoolMemory*2 + 7, "", true},
		{"empty", 0, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, behaviour{})
			s := newScanner(t, Options{Addrs: []sockaddr.Addr{f.unix}, Timeout: 10 * time.Second, MaxSize: 4 << 20, User: tt.user})
			msg := message(tt.size)
			var r scan.Result
			if tt.write {
				r = written(t, s, t.Context(), msg, 4096)
			} else {
				r = spooled(t, s, t.Context(), msg)
			}
			if r.Status != scan.Clean {
				t.Fatalf("%v %v", r.Status, r.Err)
			}
			reqs := f.received()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			q := reqs[0]
			want := []string{"Content-length"}
			if tt.user != "" {
				want = append(want, "User")
			}
			if q.line != "SYMBOLS SPAMC/1.5" || strings.Join(q.order, ",") != strings.Join(want, ",") {
				t.Errorf("request %q with headers %v, want SYMBOLS SPAMC/1.5 with %v", q.line, q.order, want)
			}
			if q.headers["User"] != tt.user {
				t.Errorf("User %q, want %q", q.headers["User"], tt.user)
			}
			if !q.ok || !bytes.Equal(q.body, msg) {
				t.Errorf("spamd got %d bytes (complete %v), not the %d of the message", len(q.body), q.ok, len(msg))
			}
		})
	}
}

// TestTooLarge: over MaxSize the message is not sent; exactly MaxSize is.
func TestTooLarge(t *testing.T) {
	const limit = 10_000
	for _, tt := range []struct {
		name    string
		size    int
		write   bool
		skipped bool
	}{
		{"at the limit", limit, false, false},
		{"one over", limit + 1, false, true},
		{"far over", 600 << 10, false, true},
		{"written at the limit", limit, true, false},
		{"written one over", limit + 1, true, true},
		{"written far over", 600 << 10, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, behaviour{})
			s := newScanner(t, Options{Addrs: []sockaddr.Addr{f.tcp}, MaxSize: limit})
			var r scan.Result
			if tt.write {
				r = written(t, s, t.Context(), message(tt.size), 3000)
			} else {
				r = spooled(t, s, t.Context(), message(tt.size))
			}
			if r.Status != scan.Clean || r.Err != nil {
				t.Fatalf("%v %v", r.Status, r.Err)
			}
			n := len(f.received())
			if tt.skipped {
				if r.Skipped != SkippedTooLarge || r.Spam != nil || r.Advice != scan.AdviseNone || n != 0 {
					t.Errorf("skipped %q spam %v advice %v, %d requests: want skipped, nothing sent", r.Skipped, r.Spam, r.Advice, n)
				}
			} else if r.Skipped != "" || r.Spam == nil || n != 1 {
				t.Errorf("skipped %q spam %v, %d requests: want scanned", r.Skipped, r.Spam, n)
			}
		})
	}
}

// TestFailover: an address that refuses connections is marked down and the
// next takes the message; the next message goes straight to it.
func TestFailover(t *testing.T) {
	for _, kind := range []string{"tcp", "missing"} {
		t.Run(kind, func(t *testing.T) {
			f := newFake(t, behaviour{})
			dead := refusedAddr(t, kind)
			s := newScanner(t, Options{Addrs: []sockaddr.Addr{dead, f.unix}})
			for i := range 2 {
				r := spooled(t, s, t.Context(), message(1000))
				if r.Status != scan.Clean || r.Server != f.unix.String() {
					t.Fatalf("message %d: %v from %q (%v)", i, r.Status, r.Server, r.Err)
				}
				if !isDown(s, 0) || isDown(s, 1) {
					t.Errorf("message %d: down = %v, %v; want true, false", i, isDown(s, 0), isDown(s, 1))
				}
				if got := s.order()[0]; got.name != f.unix.String() {
					t.Errorf("message %d: next message would go first to %s", i, got.name)
				}
			}
			if n := len(f.received()); n != 2 {
				t.Errorf("%d requests reached the live spamd, want 2", n)
			}
		})
	}
}

// TestAllDown: when no address answers the scan fails at once naming each;
// when all are marked down they are still tried, oldest failure first, and
// one that came back takes the message.
func TestAllDown(t *testing.T) {
	a, b := refusedAddr(t, "tcp"), refusedAddr(t, "missing")
	s := newScanner(t, Options{Addrs: []sockaddr.Addr{a, b}})
	start := time.Now()
	r := spooled(t, s, t.Context(), message(100))
	if r.Status != scan.Failed {
		t.Fatalf("all down: %v", r.Status)
	}
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("all down took %v", took)
	}
	for _, addr := range []sockaddr.Addr{a, b} {
		if !strings.Contains(r.Err.Error(), addr.String()) {
			t.Errorf("err %q does not name %s", r.Err, addr)
		}
	}
	if !strings.Contains(r.Err.Error(), "no spamd reachable") {
		t.Errorf("err %q", r.Err)
	}
	if o := s.order(); o[0].addr != a || o[1].addr != b {
		t.Errorf("order %s, %s: want oldest failure first", o[0].name, o[1].name)
	}
	f := newFakeAt(t, behaviour{}, b.Address)
	if r := spooled(t, s, t.Context(), message(100)); r.Status != scan.Clean || r.Server != f.unix.String() {
		t.Fatalf("after recovery: %v from %s (%v)", r.Status, r.Server, r.Err)
	}
	if !isDown(s, 0) || isDown(s, 1) {
		t.Errorf("down = %v, %v; want true, false", isDown(s, 0), isDown(s, 1))
	}
}

// TestStalledWrite: a spamd that never reads a large message is caught by
// the timeout while we are still writing.
func TestStalledWrite(t *testing.T) {
	f := newFake(t, behaviour{noRead: true})
	s := newScanner(t, Options{Addrs: []sockaddr.Addr{f.tcp}, Timeout: 500 * time.Millisecond, MaxSize: 64 << 20})
	// More than the socket buffers of both ends hold.
	sp := scan.NewSpool(t.TempDir(), 0)
	defer sp.Close()
	piece := message(1 << 20)
	for range 24 {
		if _, err := sp.Write(piece); err != nil {
			t.Fatal(err)
		}
	}
	j := s.BeginSpooled(t.Context(), nil, sp)
	defer j.Abort()
	start := time.Now()
	r := j.Finish(t.Context())
	if r.Status != scan.Failed || !errors.Is(r.Err, ErrTimeout) {
		t.Fatalf("%v %v, want a timeout", r.Status, r.Err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v", took)
	}
}

// TestFinishContext: Finish gives up when its ctx is done, and says the
// same when called again; Abort during Finish ends it too.
func TestFinishContext(t *testing.T) {
	f := newFake(t, behaviour{noReply: true})
	s := newScanner(t, Options{Addrs: []sockaddr.Addr{f.unix}, Timeout: 10 * time.Second})

	sp := scan.NewSpool("", 0)
	defer sp.Close()
	sp.Write(message(1000))
	j := s.BeginSpooled(t.Context(), nil, sp)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	r := j.Finish(ctx)
	if r.Status != scan.Failed || !errors.Is(r.Err, context.DeadlineExceeded) || errors.Is(r.Err, ErrTimeout) {
		t.Fatalf("Finish: %v %v", r.Status, r.Err)
	}
	if r2 := j.Finish(t.Context()); r2.Err != r.Err {
		t.Errorf("second Finish: %v, first %v", r2.Err, r.Err)
	}
	j.Abort()

	j = s.BeginSpooled(t.Context(), nil, sp)
	go func() {
		<-f.accepted
		<-f.accepted // the first job's connection, then ours
		j.Abort()
	}()
	start := time.Now()
	r = j.Finish(t.Context())
	if r.Status != scan.Failed || !errors.Is(r.Err, errAborted) {
		t.Fatalf("Finish during Abort: %v %v", r.Status, r.Err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Abort took %v to end Finish", took)
	}
	if isDown(s, 0) {
		t.Error("our own cancellation marked spamd down")
	}
}

// TestAbortBeforeFinish: a job aborted before the end of the message never
// connects; Write after Abort fails; Begin's own spool is removed.
func TestAbortBeforeFinish(t *testing.T) {
	f := newFake(t, behaviour{})
	s := newScanner(t, Options{Addrs: []sockaddr.Addr{f.unix}})
	j := s.Begin(t.Context(), nil)
	if _, err := j.Write(message(scan.DefaultSpoolMemory + 1)); err != nil {
		t.Fatal(err)
	}
	j.Abort()
	if _, err := j.Write([]byte("x")); err == nil {
		t.Error("Write after Abort: no error")
	}
	if r := j.Finish(t.Context()); r.Status != scan.Failed || !errors.Is(r.Err, errAborted) {
		t.Errorf("Finish after Abort: %v %v", r.Status, r.Err)
	}
	j.Abort()
	if n := len(f.received()); n != 0 {
		t.Errorf("%d requests after Abort", n)
	}
}

func TestPing(t *testing.T) {
	f := newFake(t, behaviour{})
	bad := newFake(t, behaviour{early: "SPAMD/1.0 76 Bad header line: PING\r\n"})
	dead := refusedAddr(t, "tcp")
	s := newScanner(t, Options{Addrs: []sockaddr.Addr{f.unix, dead, f.tcp, bad.tcp}})
	h := s.Ping(t.Context())
	if len(h) != 4 {
		t.Fatalf("%d results", len(h))
	}
	for i, want := range []bool{true, false, true, false} {
		if h[i].Up != want || (h[i].Err == nil) != want || isDown(s, i) == want {
			t.Errorf("%s: up %v err %v down %v", h[i].Addr, h[i].Up, h[i].Err, isDown(s, i))
		}
		if h[i].Err != nil && !strings.HasPrefix(h[i].Err.Error(), "spamd "+h[i].Addr+": ") {
			t.Errorf("err %q does not name the address", h[i].Err)
		}
	}
	if !strings.Contains(h[3].Err.Error(), "Bad header line") {
		t.Errorf("err %v", h[3].Err)
	}
}

// TestConcurrent runs many scans at once, with Ping beside them (for -race).
func TestConcurrent(t *testing.T) {
	f := newFake(t, behaviour{})
	s := newScanner(t, Options{Addrs: []sockaddr.Addr{refusedAddr(t, "tcp"), f.unix, f.tcp}})
	msg := message(50 << 10)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			var r scan.Result
			if i%2 == 0 {
				r = spooled(t, s, t.Context(), msg)
			} else {
				r = written(t, s, t.Context(), msg, 8192)
			}
			if r.Status != scan.Clean {
				t.Errorf("%v %v", r.Status, r.Err)
			}
		})
	}
	wg.Go(func() { s.Ping(t.Context()) })
	wg.Wait()
	for _, q := range f.received() {
		if !bytes.Equal(q.body, msg) {
			t.Fatal("a message arrived damaged")
		}
	}
}

// TestStream: through a scan.Stream, the scanner reads the shared spool.
func TestStream(t *testing.T) {
	f := newFake(t, behaviour{answer: "SPAMD/1.1 0 EX_OK\r\nContent-length: 5\r\nSpam: True ; 12.0 / 5.0\r\n\r\nGTUBE"})
	s := newScanner(t, Options{Addrs: []sockaddr.Addr{f.unix}})
	st := scan.Open(t.Context(), []scan.Scanner{s}, &scan.Envelope{}, scan.Options{SpoolDir: t.TempDir(), SpoolMemory: 1024})
	msg := message(5000)
	for rest := msg; len(rest) > 0; rest = rest[min(len(rest), 700):] {
		st.Write(rest[:min(len(rest), 700)])
	}
	res := st.Finish(t.Context())
	if len(res) != 1 || res[0].Status != scan.Clean || res[0].Advice != scan.AdviseReject || res[0].Scanner != "spamd" {
		t.Fatalf("results %+v", res)
	}
	if q := f.received(); len(q) != 1 || !bytes.Equal(q[0].body, msg) {
		t.Error("spamd did not get the message")
	}
}

// TestFailoverAfterError: a spamd that takes the connection and then fails
// (an error, garbage, a closed connection) hands the message to the next
// address without being marked down; a timeout does not fail over.
func TestFailoverAfterError(t *testing.T) {
	for _, tt := range []struct {
		name     string
		first    behaviour
		timeout  time.Duration
		failover bool
	}{
		{"spamd error", behaviour{answer: "SPAMD/1.0 69 Service Unavailable: try later\r\n"}, 0, true},
		{"garbage", behaviour{answer: "nonsense\r\n"}, 0, true},
		{"closed", behaviour{silent: true}, 0, true},
		{"timeout", behaviour{noReply: true}, 300 * time.Millisecond, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, b := newFake(t, tt.first), newFake(t, behaviour{})
			s := newScanner(t, Options{Addrs: []sockaddr.Addr{a.unix, b.unix}, Timeout: tt.timeout})
			r := spooled(t, s, t.Context(), message(2000))
			t.Logf("%v from %s: %v", r.Status, r.Server, r.Err)
			if tt.failover {
				if r.Status != scan.Clean || r.Server != b.unix.String() {
					t.Fatalf("%v from %s (%v), want clean from the second", r.Status, r.Server, r.Err)
				}
				if q := b.received(); len(q) != 1 || !bytes.Equal(q[0].body, message(2000)) {
					t.Error("the second spamd did not get the whole message")
				}
			} else {
				if r.Status != scan.Failed || !errors.Is(r.Err, ErrTimeout) || r.Server != a.unix.String() {
					t.Fatalf("%v from %s (%v), want a timeout from the first", r.Status, r.Server, r.Err)
				}
				if n := len(b.received()); n != 0 {
					t.Errorf("the second spamd got %d requests after a timeout", n)
				}
			}
			if isDown(s, 0) {
				t.Error("a spamd that answered was marked down")
			}
		})
	}
	// Both fail: the error names both, the last one's failure first.
	a := newFake(t, behaviour{answer: "SPAMD/1.0 69 Service Unavailable: first\r\n"})
	b := newFake(t, behaviour{answer: "SPAMD/1.0 74 EX_IOERR second\r\n"})
	s := newScanner(t, Options{Addrs: []sockaddr.Addr{a.tcp, b.tcp}})
	r := spooled(t, s, t.Context(), message(100))
	want := "spamd " + b.tcp.String() + ": answered 74 EX_IOERR second (after " + a.tcp.String() + ": answered 69 Service Unavailable: first)"
	if r.Status != scan.Failed || r.Err.Error() != want {
		t.Errorf("%v %v\nwant %s", r.Status, r.Err, want)
	}
}
