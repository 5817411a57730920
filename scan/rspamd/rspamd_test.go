package rspamd

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
)

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

// spooled scans msg the way a scan.Stream does.
func spooled(t testing.TB, s *Scanner, ctx context.Context, env *scan.Envelope, msg []byte) scan.Result {
	t.Helper()
	sp := scan.NewSpool(t.TempDir(), 0)
	defer sp.Close()
	j := s.BeginSpooled(ctx, env, sp)
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
	u := []string{"http://127.0.0.1:11333"}
	for _, tt := range []struct {
		name string
		o    Options
		err  string
	}{
		{"no URL", Options{}, "no URL"},
		{"scheme", Options{URLs: []string{"127.0.0.1:11333"}}, `URL "127.0.0.1:11333"`},
		{"other scheme", Options{URLs: []string{"ftp://127.0.0.1:11333"}}, "want http:// or https://"},
		{"unix", Options{URLs: []string{"unix:/run/rspamd.sock"}}, "want http:// or https://"},
		{"no host", Options{URLs: []string{"http:///checkv2"}}, "no host"},
		{"query", Options{URLs: []string{"http://127.0.0.1:11333/?x=1"}}, "no query"},
		{"user", Options{URLs: []string{"http://u:p@127.0.0.1:11333"}}, "no user info"},
		{"negative", Options{URLs: u, TagAt: -1}, "negative"},
		{"NaN", Options{URLs: u, RejectAt: math.NaN()}, "NaN"},
		{"password", Options{URLs: u, Password: "a\r\nb"}, "password"},
	} {
		if _, err := New(tt.o); err == nil || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%s: err %v, want %q", tt.name, err, tt.err)
		}
	}
	s, err := New(Options{URLs: []string{"http://127.0.0.1:11333", "https://rspamd.example.test/base/"}})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "rspamd" {
		t.Errorf("Name() = %q", s.Name())
	}
	o := s.opts
	if o.Timeout != DefaultTimeout || o.ConnectTimeout != DefaultConnectTimeout || o.RetryDown != DefaultRetryDown ||
		o.MaxSize != DefaultMaxSize || o.TagAt != 0 || o.RejectAt != 0 {
		t.Errorf("defaults not applied: %+v", o)
	}
	if s.servers[0].check != "http://127.0.0.1:11333/checkv2" || s.servers[1].check != "https://rspamd.example.test/base/checkv2" ||
		s.servers[1].ping != "https://rspamd.example.test/base/ping" {
		t.Errorf("endpoints %q, %q, %q", s.servers[0].check, s.servers[1].check, s.servers[1].ping)
	}
}

// TestAnswers runs one message through the fake rspamd answering in each way.
func TestAnswers(t *testing.T) {
	const short = 400 * time.Millisecond
	tests := []struct {
		name    string
		timeout time.Duration
		b       behaviour
		status  scan.Status
		advice  scan.Advice
		reply   string
		errHas  []string
		is      error
	}{
		{name: "clean", b: behaviour{}, status: scan.Clean, advice: scan.AdviseNone},
		{name: "gtube", b: behaviour{answer: gtubeAnswer}, status: scan.Clean, advice: scan.AdviseReject, reply: "Gtube pattern"},
		{name: "http error", b: behaviour{status: 500, answer: `{"error":"cannot process message","error_domain":"rspamd-task"}`},
			status: scan.Failed, errHas: []string{"answered HTTP 500: cannot process message"}},
		{name: "http error without json", b: behaviour{status: 502, answer: "Bad Gateway"},
			status: scan.Failed, errHas: []string{`answered HTTP 502 "Bad Gateway"`}},
		{name: "garbage json", b: behaviour{answer: `{"action":"reject","score":`},
			status: scan.Failed, errHas: []string{"not the JSON of /checkv2"}, is: ErrAnswer},
		{name: "unknown action", b: behaviour{answer: `{"action":"burn it","score":99,"required_score":15}`},
			status: scan.Failed, errHas: []string{`unknown action "burn it"`}, is: ErrAnswer},
		{name: "truncated", b: behaviour{raw: "HTTP/1.1 200 OK\r\nContent-Length: 500\r\nContent-Type: application/json\r\n\r\n{\"action\":\"reject\""},
			status: scan.Failed, errHas: []string{"reading the answer", "unexpected EOF"}},
		{name: "garbage status line", b: behaviour{raw: "SPAMD/1.1 0 EX_OK\r\n\r\n"},
			status: scan.Failed, errHas: []string{"malformed HTTP"}},
		{name: "closed without answer", b: behaviour{closeIt: true},
			status: scan.Failed, errHas: []string{"connection closed without an answer"}},
		{name: "slow drip", timeout: short, b: behaviour{drip: 50 * time.Millisecond},
			status: scan.Failed, errHas: []string{"timed out"}, is: ErrTimeout},
		{name: "hangs", timeout: short, b: behaviour{noReply: true},
			status: scan.Failed, errHas: []string{"timed out"}, is: ErrTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFake(t, tt.b)
			timeout := tt.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			s := newScanner(t, Options{URLs: []string{f.url}, Timeout: timeout})
			start := time.Now()
			r := spooled(t, s, t.Context(), &scan.Envelope{QueueID: "Q1"}, message(3000))
			took := time.Since(start)
			t.Logf("%v %v %q err=%v", r.Status, r.Advice, r.Rule, r.Err)
			if r.Status != tt.status {
				t.Fatalf("status %v, want %v (err %v)", r.Status, tt.status, r.Err)
			}
			if r.Scanner != "rspamd" || r.Server != f.url || r.Elapsed <= 0 {
				t.Errorf("scanner %q server %q elapsed %v", r.Scanner, r.Server, r.Elapsed)
			}
			if r.Advice != tt.advice || r.Reply != tt.reply {
				t.Errorf("advice %v reply %q, want %v %q", r.Advice, r.Reply, tt.advice, tt.reply)
			}
			if (r.Spam != nil) != (tt.status == scan.Clean) {
				t.Errorf("spam %+v with status %v", r.Spam, r.Status)
			}
			if (r.Err != nil) != (tt.status == scan.Failed) {
				t.Errorf("err %v with status %v", r.Err, r.Status)
			}
			for _, sub := range tt.errHas {
				if r.Err == nil || !strings.Contains(r.Err.Error(), sub) {
					t.Errorf("err %v, want it to contain %q", r.Err, sub)
				}
			}
			if r.Err != nil && !strings.HasPrefix(r.Err.Error(), "rspamd "+r.Server+": ") {
				t.Errorf("err %q does not start with the scanner and URL", r.Err)
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

// TestRequest: rspamd receives POST /checkv2 with the envelope in its
// headers, the message byte for byte as the body, from a spool in memory
// or on disk, through BeginSpooled or Begin and Write.
func TestRequest(t *testing.T) {
	full := &scan.Envelope{
		QueueID: "4Bc9xK0Zq2z1", ClientAddr: "192.0.2.7", ClientName: "client.example.org",
		Helo: "client.example.org", From: "alice@example.org", Rcpts: []string{"bob@example.test", "carol@example.test"},
		AuthUser: "alice", MTAName: "mx.example.test",
	}
	tests := []struct {
		name     string
		env      *scan.Envelope
		password string
		size     int
		write    bool
		want     map[string][]string // headers; nil values: must be absent
	}{
		{name: "full envelope", env: full, password: "secret", size: 3000, want: map[string][]string{
			"Ip": {"192.0.2.7"}, "Helo": {"client.example.org"}, "Hostname": {"client.example.org"},
			"From": {"alice@example.org"}, "Rcpt": {"bob@example.test", "carol@example.test"},
			"Queue-Id": {"4Bc9xK0Zq2z1"}, "User": {"alice"}, "Mta-Name": {"mx.example.test"}, "Password": {"secret"},
		}},
		{name: "null sender, not authenticated", env: &scan.Envelope{ClientAddr: "::1", Rcpts: []string{"postmaster@example.test"}},
			size: scan.DefaultSpoolMemory + 777, want: map[string][]string{
				"Ip": {"::1"}, "From": {"<>"}, "Rcpt": {"postmaster@example.test"}, "User": nil, "Helo": nil, "Password": nil,
			}},
		{name: "no envelope", env: nil, size: 100, want: map[string][]string{"From": nil, "Rcpt": nil, "Ip": nil}},
		{name: "sendmail without reverse DNS", env: &scan.Envelope{ClientAddr: "192.0.2.7", ClientName: "[192.0.2.7]"},
			size: 100, want: map[string][]string{"Ip": {"192.0.2.7"}, "Hostname": {"unknown"}}},
		{name: "client name unknown to nobounce", env: &scan.Envelope{ClientAddr: "192.0.2.7"},
			size: 100, want: map[string][]string{"Ip": {"192.0.2.7"}, "Hostname": nil}},
		{name: "empty envelope", env: &scan.Envelope{}, size: 100, want: map[string][]string{"From": nil, "Rcpt": nil}},
		{name: "control characters", env: &scan.Envelope{Helo: "evil\r\nX-Injected: 1", From: "a\x00b@example.org"},
			size: 100, want: map[string][]string{"Helo": {"evilX-Injected: 1"}, "From": {"ab@example.org"}, "X-Injected": nil}},
		{name: "written", size: 100_001, write: true, want: map[string][]string{"From": nil}},
		{name: "written on disk", size: 2*scan.DefaultSpoolMemory + 7, write: true},
		{name: "empty message", env: full, size: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, behaviour{})
			s := newScanner(t, Options{URLs: []string{f.url}, Password: tt.password})
			msg := message(tt.size)
			var r scan.Result
			if tt.write {
				r = written(t, s, t.Context(), msg, 4096)
			} else {
				r = spooled(t, s, t.Context(), tt.env, msg)
			}
			if r.Status != scan.Clean {
				t.Fatalf("%v %v", r.Status, r.Err)
			}
			reqs := f.received()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			q := reqs[0]
			if q.method != "POST" || q.path != "/checkv2" {
				t.Errorf("%s %s, want POST /checkv2", q.method, q.path)
			}
			for k, v := range tt.want {
				if got := q.header.Values(k); strings.Join(got, "|") != strings.Join(v, "|") {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if !bytes.Equal(q.body, msg) {
				t.Errorf("rspamd got %d bytes, not the %d of the message", len(q.body), len(msg))
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
		{"written at the limit", limit, true, false},
		{"written one over", limit + 1, true, true},
		{"written far over", 600 << 10, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, behaviour{})
			s := newScanner(t, Options{URLs: []string{f.url}, MaxSize: limit})
			var r scan.Result
			if tt.write {
				r = written(t, s, t.Context(), message(tt.size), 3000)
			} else {
				r = spooled(t, s, t.Context(), nil, message(tt.size))
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

// TestFailover: a URL that refuses connections is marked down and the next
// takes the message; the next message goes straight to it.
func TestFailover(t *testing.T) {
	f := newFake(t, behaviour{})
	dead := refusedURL(t)
	s := newScanner(t, Options{URLs: []string{dead, f.url}})
	for i := range 2 {
		r := spooled(t, s, t.Context(), nil, message(1000))
		if r.Status != scan.Clean || r.Server != f.url {
			t.Fatalf("message %d: %v from %q (%v)", i, r.Status, r.Server, r.Err)
		}
		if !isDown(s, 0) || isDown(s, 1) {
			t.Errorf("message %d: down = %v, %v; want true, false", i, isDown(s, 0), isDown(s, 1))
		}
		if got := s.order()[0]; got.name != f.url {
			t.Errorf("message %d: next message would go first to %s", i, got.name)
		}
	}
	if n := len(f.received()); n != 2 {
		t.Errorf("%d requests reached the live rspamd, want 2", n)
	}
}

// TestFailoverAfterError: an rspamd that takes the request and then fails
// hands the message to the next URL without being marked down; a timeout
// does not fail over.
func TestFailoverAfterError(t *testing.T) {
	for _, tt := range []struct {
		name     string
		first    behaviour
		timeout  time.Duration
		failover bool
	}{
		{"http error", behaviour{status: 500, answer: `{"error":"oops"}`}, 0, true},
		{"garbage", behaviour{answer: "nonsense"}, 0, true},
		{"closed", behaviour{closeIt: true}, 0, true},
		{"timeout", behaviour{noReply: true}, 300 * time.Millisecond, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, b := newFake(t, tt.first), newFake(t, behaviour{answer: gtubeAnswer})
			s := newScanner(t, Options{URLs: []string{a.url, b.url}, Timeout: tt.timeout})
			msg := message(2000)
			r := spooled(t, s, t.Context(), nil, msg)
			t.Logf("%v from %s: %v", r.Status, r.Server, r.Err)
			if tt.failover {
				if r.Status != scan.Clean || r.Server != b.url || r.Advice != scan.AdviseReject {
					t.Fatalf("%v %v from %s (%v), want a reject from the second", r.Status, r.Advice, r.Server, r.Err)
				}
				if q := b.received(); len(q) != 1 || !bytes.Equal(q[0].body, msg) {
					t.Error("the second rspamd did not get the whole message")
				}
			} else {
				if r.Status != scan.Failed || !errors.Is(r.Err, ErrTimeout) || r.Server != a.url {
					t.Fatalf("%v from %s (%v), want a timeout from the first", r.Status, r.Server, r.Err)
				}
				if n := len(b.received()); n != 0 {
					t.Errorf("the second rspamd got %d requests after a timeout", n)
				}
			}
			if isDown(s, 0) {
				t.Error("an rspamd that answered was marked down")
			}
		})
	}
	a := newFake(t, behaviour{status: 500, answer: `{"error":"first"}`})
	b := newFake(t, behaviour{status: 503, answer: `{"error":"second"}`})
	s := newScanner(t, Options{URLs: []string{a.url, b.url}})
	r := spooled(t, s, t.Context(), nil, message(100))
	want := "rspamd " + b.url + ": answered HTTP 503: second (after " + a.url + ": answered HTTP 500: first)"
	if r.Status != scan.Failed || r.Err.Error() != want {
		t.Errorf("%v %v\nwant %s", r.Status, r.Err, want)
	}
}

// TestAllDown: when no URL answers the scan fails at once naming each.
func TestAllDown(t *testing.T) {
	a, b := refusedURL(t), refusedURL(t)
	s := newScanner(t, Options{URLs: []string{a, b}})
	start := time.Now()
	r := spooled(t, s, t.Context(), nil, message(100))
	if r.Status != scan.Failed || !strings.Contains(r.Err.Error(), "no rspamd reachable") {
		t.Fatalf("all down: %v %v", r.Status, r.Err)
	}
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("all down took %v", took)
	}
	for _, u := range []string{a, b} {
		if !strings.Contains(r.Err.Error(), u) {
			t.Errorf("err %q does not name %s", r.Err, u)
		}
	}
	if !isDown(s, 0) || !isDown(s, 1) {
		t.Error("not both marked down")
	}
}

// TestFinishContext: Finish gives up when its ctx is done; Abort during
// Finish ends it too.
func TestFinishContext(t *testing.T) {
	f := newFake(t, behaviour{noReply: true})
	s := newScanner(t, Options{URLs: []string{f.url}, Timeout: 10 * time.Second})
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
	done := make(chan scan.Result, 1)
	go func() { done <- j.Finish(t.Context()) }()
	for len(f.received()) < 2 {
		time.Sleep(5 * time.Millisecond) // until the request is in
	}
	start := time.Now()
	j.Abort()
	select {
	case r = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Finish still waiting 5s after Abort")
	}
	if r.Status != scan.Failed || !errors.Is(r.Err, errAborted) {
		t.Fatalf("Finish during Abort: %v %v", r.Status, r.Err)
	}
	t.Logf("Finish ended %v after Abort", time.Since(start))
	if isDown(s, 0) {
		t.Error("our own cancellation marked rspamd down")
	}
}

// TestAbortBeforeFinish: a job aborted before the end of the message never
// connects; Write after Abort fails.
func TestAbortBeforeFinish(t *testing.T) {
	f := newFake(t, behaviour{})
	s := newScanner(t, Options{URLs: []string{f.url}})
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
	if n := len(f.received()); n != 0 {
		t.Errorf("%d requests after Abort", n)
	}
}

func TestPing(t *testing.T) {
	f := newFake(t, behaviour{})
	bad := newFake(t, behaviour{})
	dead := refusedURL(t)
	s := newScanner(t, Options{URLs: []string{f.url, dead, bad.url + "/wrong"}})
	h := s.Ping(t.Context())
	if len(h) != 3 {
		t.Fatalf("%d results", len(h))
	}
	for i, want := range []bool{true, false, false} {
		if h[i].Up != want || (h[i].Err == nil) != want || isDown(s, i) == want {
			t.Errorf("%s: up %v err %v down %v", h[i].Addr, h[i].Up, h[i].Err, isDown(s, i))
		}
		if h[i].Err != nil && !strings.HasPrefix(h[i].Err.Error(), "rspamd "+h[i].Addr+": ") {
			t.Errorf("err %q does not name the URL", h[i].Err)
		}
	}
	if !strings.Contains(h[2].Err.Error(), "answered HTTP 500") {
		t.Errorf("err %v", h[2].Err)
	}
}

// TestConcurrent runs many scans at once, with Ping beside them (for -race).
func TestConcurrent(t *testing.T) {
	f := newFake(t, behaviour{})
	s := newScanner(t, Options{URLs: []string{refusedURL(t), f.url}})
	msg := message(50 << 10)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			var r scan.Result
			if i%2 == 0 {
				r = spooled(t, s, t.Context(), &scan.Envelope{Rcpts: []string{"a@example.test"}}, msg)
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
	f := newFake(t, behaviour{answer: gtubeAnswer})
	s := newScanner(t, Options{URLs: []string{f.url}})
	env := &scan.Envelope{QueueID: "Q9", Rcpts: []string{"bob@example.test"}, From: "a@example.org"}
	st := scan.Open(t.Context(), []scan.Scanner{s}, env, scan.Options{SpoolDir: t.TempDir(), SpoolMemory: 1024})
	msg := message(5000)
	for rest := msg; len(rest) > 0; rest = rest[min(len(rest), 700):] {
		st.Write(rest[:min(len(rest), 700)])
	}
	res := st.Finish(t.Context())
	if len(res) != 1 || res[0].Status != scan.Clean || res[0].Advice != scan.AdviseReject || res[0].Reply != "Gtube pattern" {
		t.Fatalf("results %+v", res)
	}
	if q := f.received(); len(q) != 1 || !bytes.Equal(q[0].body, msg) || q[0].header.Get("Queue-Id") != "Q9" {
		t.Error("rspamd did not get the message and its envelope")
	}
}
