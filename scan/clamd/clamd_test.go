package clamd

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/sockaddr"
)

var networks = []string{"unix", "tcp"}

// newScanner returns a Scanner with short test timings.
func newScanner(t testing.TB, timeout time.Duration, addrs ...sockaddr.Addr) *Scanner {
	t.Helper()
	s, err := New(Options{Addrs: addrs, Timeout: timeout, ConnectTimeout: time.Second, RetryDown: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// asJob gives access to the job's goroutine for leak checks.
func asJob(t testing.TB, j scan.Job) *job {
	t.Helper()
	jj, ok := j.(*job)
	if !ok {
		t.Fatalf("Begin returned %T", j)
	}
	return jj
}

// waitDone fails the test unless the job's goroutine has ended within d.
func waitDone(t testing.TB, j *job, d time.Duration) {
	t.Helper()
	select {
	case <-j.done:
	case <-time.After(d):
		t.Fatalf("job goroutine still running %v later", d)
	}
}

// writeAll writes msg in pieces of the given size and returns the first error.
func writeAll(j scan.Job, msg []byte, piece int) error {
	for len(msg) > 0 {
		n := min(piece, len(msg))
		if _, err := j.Write(msg[:n]); err != nil {
			return err
		}
		msg = msg[n:]
	}
	return nil
}

// writeRepeat writes piece again and again, total bytes in all, and returns
// the first error: a long message without holding it in memory.
// If progress is not nil, it counts the bytes written so far.
func writeRepeat(j scan.Job, piece []byte, total int, progress *atomic.Int64) error {
	for ; total > 0; total -= len(piece) {
		n, err := j.Write(piece[:min(len(piece), total)])
		if progress != nil {
			progress.Add(int64(n))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// waitStalled returns once progress has not moved for 50ms (a Write is
// blocked), or after 2s. It only makes a test more meaningful: returning
// early cannot make it fail.
func waitStalled(progress *atomic.Int64) {
	last, since := progress.Load(), time.Now()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		if n := progress.Load(); n != last {
			last, since = n, time.Now()
		} else if time.Since(since) > 50*time.Millisecond {
			return
		}
	}
}

func isDown(s *Scanner, i int) bool { return s.pool.IsDown(i) }

func TestNew(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without addresses: no error")
	}
	if _, err := New(Options{Addrs: []sockaddr.Addr{{Network: "udp", Address: "127.0.0.1:1"}}}); err == nil {
		t.Error("New with a udp address: no error")
	}
	s, err := New(Options{Addrs: []sockaddr.Addr{{Network: "unix", Address: "/nonexistent/clamd.sock"}}})
	if err != nil {
		t.Fatalf("New with a unix socket that does not exist yet: %v", err)
	}
	if s.Name() != "clamd" {
		t.Errorf("Name() = %q", s.Name())
	}
	if s.opts.Timeout != DefaultTimeout || s.opts.ConnectTimeout != DefaultConnectTimeout || s.opts.RetryDown != DefaultRetryDown {
		t.Errorf("defaults not applied: %+v", s.opts)
	}
}

// TestAnswers runs one message through the fake clamd behaving in each way,
// over a unix socket and over TCP.
func TestAnswers(t *testing.T) {
	// The scan timeout of the cases that hang; the others get 10s, enough
	// for a loaded machine under -race.
	const short = 400 * time.Millisecond
	tests := []struct {
		name    string
		timeout time.Duration
		b       behaviour
		size    int
		status  scan.Status
		threat  string
		errHas  []string // substrings of Result.Err
		is      error    // errors.Is(Result.Err, is)
	}{
		{name: "ok", b: behaviour{reply: "stream: OK"}, size: 3000, status: scan.Clean},
		{name: "found", b: behaviour{reply: "stream: Eicar-Signature FOUND"}, size: 3000,
			status: scan.Infected, threat: "Eicar-Signature"},
		{name: "found dotted name", b: behaviour{reply: "stream: Clamav.Test.File-6 FOUND"}, size: 100,
			status: scan.Infected, threat: "Clamav.Test.File-6"},
		// The library's pattern refuses a ':' in a signature name.
		{name: "found name with colon", b: behaviour{reply: "stream: YARA.Rule:Part.UNOFFICIAL FOUND"}, size: 100,
			status: scan.Infected, threat: "YARA.Rule:Part.UNOFFICIAL"},
		// The library drops a last line without "\n": no answer, never clean.
		{name: "answer without newline", b: behaviour{reply: "stream: OK", noNewline: true}, size: 100,
			status: scan.Failed, errHas: []string{"without an answer"}},
		{name: "empty message", b: behaviour{}, size: 0, status: scan.Clean},
		{name: "garbage", b: behaviour{reply: "\x01garbage from the server"}, size: 3000,
			status: scan.Failed, errHas: []string{"garbage from the server", "unexpected answer"}},
		{name: "error line", b: behaviour{reply: "stream: Can't allocate memory ERROR"}, size: 3000,
			status: scan.Failed, errHas: []string{"Can't allocate memory"}},
		{name: "closed without answer", b: behaviour{silent: true}, size: 3000,
			status: scan.Failed, errHas: []string{"without an answer"}},
		// Over the limit before the end: small enough that the client may
		// have sent everything before clamd closed (the answer is read), or
		// not (a failed write, then the probe).
		{name: "size limit small", b: behaviour{limit: 4096}, size: 64 << 10,
			status: scan.Failed, errHas: []string{"size limit exceeded (clamd StreamMaxLength)"}, is: ErrSizeLimit},
		// Far over the limit: the write fails (broken pipe or reset).
		{name: "size limit large", b: behaviour{limit: 64 << 10}, size: 4 << 20,
			status: scan.Failed, errHas: []string{"size limit exceeded (clamd StreamMaxLength)"}, is: ErrSizeLimit},
		{name: "closed mid-stream", b: behaviour{closeAfter: 8 << 10}, size: 4 << 20,
			status: scan.Failed, errHas: []string{"closed"}},
		{name: "hangs after the stream", timeout: short, b: behaviour{noReply: true}, size: 3000,
			status: scan.Failed, errHas: []string{"timed out"}, is: ErrTimeout},
		{name: "never reads", timeout: short, b: behaviour{noRead: true}, size: 16 << 20,
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
				s := newScanner(t, timeout, f.addr(network))
				start := time.Now()
				j := asJob(t, s.Begin(t.Context(), &scan.Envelope{QueueID: "Q1"}))
				var werr error
				if tt.size > 1<<20 {
					werr = writeRepeat(j, message(64<<10), tt.size, nil)
				} else {
					werr = writeAll(j, message(tt.size), 64<<10)
				}
				r := j.Finish(t.Context())
				took := time.Since(start)

				t.Logf("%v %q err=%v (write err %v)", r.Status, r.Threat, r.Err, werr)
				if r.Status != tt.status {
					t.Fatalf("status %v, want %v (err %v, write err %v)", r.Status, tt.status, r.Err, werr)
				}
				if r.Threat != tt.threat {
					t.Errorf("threat %q, want %q", r.Threat, tt.threat)
				}
				if r.Scanner != "clamd" || r.Server != f.addr(network).String() || r.Elapsed <= 0 {
					t.Errorf("scanner %q server %q elapsed %v", r.Scanner, r.Server, r.Elapsed)
				}
				if (r.Err != nil) != (tt.status == scan.Failed) {
					t.Errorf("err %v with status %v", r.Err, r.Status)
				}
				for _, sub := range tt.errHas {
					if r.Err == nil || !strings.Contains(r.Err.Error(), sub) {
						t.Errorf("err %v, want it to contain %q", r.Err, sub)
					}
				}
				if r.Err != nil && !strings.HasPrefix(r.Err.Error(), "clamd "+r.Server+": ") {
					t.Errorf("err %q does not start with the scanner and address", r.Err)
				}
				if tt.is != nil && !errors.Is(r.Err, tt.is) {
					t.Errorf("err %v is not %v", r.Err, tt.is)
				}
				if tt.is == nil && errors.Is(r.Err, ErrSizeLimit) {
					t.Errorf("err %v claims the size limit", r.Err)
				}
				if took > timeout+time.Second {
					t.Errorf("took %v with a timeout of %v", took, timeout)
				}
				// The goroutine ends by itself, at the latest at the
				// library's deadline on the connection.
				waitDone(t, j, 3*timeout+time.Second)
			})
		}
	}
}

// TestExactBytes checks that clamd receives exactly the bytes written, in
// INSTREAM framing, whatever the sizes of the writes.
func TestExactBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	msg := message(300<<10 + 123)
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			f := newFake(t, behaviour{record: true})
			s := newScanner(t, 5*time.Second, f.addr(network))
			j := s.Begin(t.Context(), nil)
			for rest := msg; len(rest) > 0; {
				n := min(len(rest), []int{1, 7, 1023, 1024, 1025, 4096, 65535, 65536}[rng.IntN(8)])
				if w, err := j.Write(rest[:n]); err != nil || w != n {
					t.Fatalf("Write(%d bytes) = %d, %v", n, w, err)
				}
				rest = rest[n:]
			}
			if r := j.Finish(t.Context()); r.Status != scan.Clean {
				t.Fatalf("result %v: %v", r.Status, r.Err)
			}
			st := f.received()
			if len(st) != 1 || !st[0].complete {
				t.Fatalf("fake received %d streams, want one complete", len(st))
			}
			if !bytes.Equal(st[0].data, msg) {
				t.Fatalf("fake received %d bytes, not the %d written", len(st[0].data), len(msg))
			}
			t.Logf("%d bytes in %d chunks of at most %d bytes", st[0].size, st[0].chunks, st[0].maxChunk)
			if st[0].chunks < 2 {
				t.Errorf("%d chunks: not a multi-chunk test", st[0].chunks)
			}
		})
	}
}

// TestFailover: an address that refuses connections is marked down and the
// next one takes the message; the next message goes straight to it.
func TestFailover(t *testing.T) {
	for _, kind := range []string{"tcp", "unix", "missing"} {
		t.Run(kind, func(t *testing.T) {
			f := newFake(t, behaviour{reply: "stream: Eicar-Signature FOUND", record: true})
			dead := refusedAddr(t, kind)
			s := newScanner(t, 5*time.Second, dead, f.unix)
			msg := message(10 << 10)
			for i := range 2 {
				j := s.Begin(t.Context(), nil)
				if err := writeAll(j, msg, 4096); err != nil {
					t.Fatal(err)
				}
				r := j.Finish(t.Context())
				if r.Status != scan.Infected || r.Server != f.unix.String() {
					t.Fatalf("message %d: %v from %q (%v), want infected from %q", i, r.Status, r.Server, r.Err, f.unix)
				}
				if !isDown(s, 0) || isDown(s, 1) {
					t.Errorf("message %d: down = %v, %v; want true, false", i, isDown(s, 0), isDown(s, 1))
				}
				if got := s.order()[0]; got.name != f.unix.String() {
					t.Errorf("message %d: next message would go first to %s", i, got.name)
				}
			}
			if st := f.received(); len(st) != 2 || !bytes.Equal(st[0].data, msg) || !bytes.Equal(st[1].data, msg) {
				t.Errorf("the second clamd did not receive both whole messages")
			}
		})
	}
}

// TestAllDown: when no address answers, the scan fails at once, naming
// every address; when all are marked down they are still tried, oldest
// failure first.
func TestAllDown(t *testing.T) {
	a, b := refusedAddr(t, "tcp"), refusedAddr(t, "missing")
	s := newScanner(t, 5*time.Second, a, b)
	start := time.Now()
	j := s.Begin(t.Context(), nil)
	werr := writeAll(j, message(100<<10), 4096)
	r := j.Finish(t.Context())
	if r.Status != scan.Failed || werr == nil {
		t.Fatalf("all down: %v, write error %v", r.Status, werr)
	}
	// Refused connections fail at once; waiting for ConnectTimeout (1s)
	// twice would take 2s.
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("all down took %v", took)
	}
	for _, addr := range []sockaddr.Addr{a, b} {
		if !strings.Contains(r.Err.Error(), addr.String()) {
			t.Errorf("err %q does not name %s", r.Err, addr)
		}
	}
	if !isDown(s, 0) || !isDown(s, 1) {
		t.Fatal("not both marked down")
	}
	if o := s.order(); o[0].addr != a || o[1].addr != b {
		t.Errorf("order %s, %s: want oldest failure first", o[0].name, o[1].name)
	}
	s.markDown(s.servers[0], errors.New("failed again")) // now b failed longer ago
	if o := s.order(); o[0].addr != b || o[1].addr != a {
		t.Errorf("order %s, %s: want oldest failure first", o[0].name, o[1].name)
	}

	// A clamd comes up on the second address: although marked down, it is
	// tried and takes the message.
	f := newFakeAt(t, behaviour{}, b.Address)
	j = s.Begin(t.Context(), nil)
	if err := writeAll(j, message(1000), 4096); err != nil {
		t.Fatal(err)
	}
	if r := j.Finish(t.Context()); r.Status != scan.Clean || r.Server != f.unix.String() {
		t.Fatalf("after recovery: %v from %s (%v)", r.Status, r.Server, r.Err)
	}
	if !isDown(s, 0) || isDown(s, 1) {
		t.Errorf("down = %v, %v; want true, false", isDown(s, 0), isDown(s, 1))
	}
}

// TestAbort: Abort in the middle of a message ends the goroutine, and a
// Write after it fails instead of blocking, whether clamd is reading or stuck.
func TestAbort(t *testing.T) {
	for _, tt := range []struct {
		name    string
		b       behaviour
		timeout time.Duration
		bound   time.Duration // the goroutine must be gone by then
	}{
		// Blocked on the pipe: ends at once, long before the deadline.
		{"clamd reading", behaviour{}, 20 * time.Second, 2 * time.Second},
		// Blocked writing to a clamd that reads nothing: ends at the
		// library's deadline on the connection (the timeout after the
		// last chunk sent).
		{"clamd stuck", behaviour{noRead: true}, time.Second, 3 * time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake(t, tt.b)
			s := newScanner(t, tt.timeout, f.unix)
			j := asJob(t, s.Begin(t.Context(), nil))
			if err := writeAll(j, message(8<<10), 4096); err != nil {
				t.Fatal(err)
			}
			<-f.accepted
			written := make(chan error, 1)
			if tt.b.noRead {
				// Fill the socket buffers until a Write blocks, then abort.
				var progress atomic.Int64
				piece := message(64 << 10)
				go func() { written <- writeRepeat(j, piece, 1<<30, &progress) }()
				waitStalled(&progress)
			}
			start := time.Now()
			j.Abort()
			if tt.b.noRead {
				if err := <-written; err == nil {
					t.Fatal("writer ended without an error")
				}
			}
			if _, err := j.Write([]byte("more")); err == nil {
				t.Error("Write after Abort: no error")
			}
			waitDone(t, j, tt.bound)
			t.Logf("goroutine ended %v after Abort", time.Since(start))
			r := j.Finish(t.Context())
			if r.Status != scan.Failed || !errors.Is(r.Err, errAborted) {
				t.Errorf("Finish after Abort: %v %v", r.Status, r.Err)
			}
			j.Abort() // again: no effect
		})
	}
}

// TestServerDies: clamd dies while a Write is blocked on it; the Write
// returns an error long before the scan's timeout.
func TestServerDies(t *testing.T) {
	for _, network := range networks {
		t.Run(network, func(t *testing.T) {
			f := newFake(t, behaviour{noRead: true})
			s := newScanner(t, 30*time.Second, f.addr(network))
			j := asJob(t, s.Begin(t.Context(), nil))
			written := make(chan error, 1)
			var progress atomic.Int64
			piece := message(64 << 10)
			go func() { written <- writeRepeat(j, piece, 1<<30, &progress) }()
			<-f.accepted
			waitStalled(&progress)
			start := time.Now()
			f.kill()
			select {
			case err := <-written:
				if err == nil {
					t.Fatal("writer ended without an error")
				}
				t.Logf("Write returned %v after %v", err, time.Since(start))
			case <-time.After(5 * time.Second):
				t.Fatal("Write still blocked 5s after clamd died")
			}
			r := j.Finish(t.Context())
			if r.Status != scan.Failed || errors.Is(r.Err, ErrTimeout) {
				t.Errorf("result %v %v", r.Status, r.Err)
			}
			waitDone(t, j, time.Second)
		})
	}
}

// TestFinishContext: Finish gives up when its ctx is done, and says so the
// same way when called again.
func TestFinishContext(t *testing.T) {
	f := newFake(t, behaviour{noReply: true})
	s := newScanner(t, 5*time.Second, f.unix)
	j := asJob(t, s.Begin(t.Context(), nil))
	if err := writeAll(j, message(1000), 4096); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	r := j.Finish(ctx)
	if r.Status != scan.Failed || !errors.Is(r.Err, context.DeadlineExceeded) || r.Server != f.unix.String() {
		t.Fatalf("Finish: %v %v from %q", r.Status, r.Err, r.Server)
	}
	if r2 := j.Finish(t.Context()); r2.Err != r.Err {
		t.Errorf("second Finish: %v, first %v", r2.Err, r.Err)
	}
	j.Abort()
}

// TestCancelledBegin: a scan begun with a dead ctx fails without dialling.
func TestCancelledBegin(t *testing.T) {
	f := newFake(t, behaviour{})
	s := newScanner(t, 5*time.Second, f.unix)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	j := asJob(t, s.Begin(ctx, nil))
	if _, err := j.Write([]byte("x")); err == nil {
		t.Error("Write: no error")
	}
	r := j.Finish(t.Context())
	if r.Status != scan.Failed || !errors.Is(r.Err, context.Canceled) {
		t.Errorf("result %v %v", r.Status, r.Err)
	}
	waitDone(t, j, time.Second)
	if isDown(s, 0) {
		t.Error("our own cancellation marked clamd down")
	}
}

func TestPing(t *testing.T) {
	f := newFake(t, behaviour{})
	dead := refusedAddr(t, "tcp")
	s := newScanner(t, 5*time.Second, f.unix, dead, f.tcp)
	h := s.Ping(t.Context())
	if len(h) != 3 {
		t.Fatalf("%d results", len(h))
	}
	for i, want := range []bool{true, false, true} {
		if h[i].Up != want || (h[i].Err == nil) != want || isDown(s, i) == want {
			t.Errorf("%s: up %v err %v down %v", h[i].Addr, h[i].Up, h[i].Err, isDown(s, i))
		}
		if want && h[i].Latency <= 0 {
			t.Errorf("%s: latency %v", h[i].Addr, h[i].Latency)
		}
	}
	if h[1].Addr != dead.String() || !strings.Contains(h[1].Err.Error(), dead.String()) {
		t.Errorf("down address reported as %q: %v", h[1].Addr, h[1].Err)
	}
}

// TestConcurrent runs many scans at once, with Ping beside them (for -race).
func TestConcurrent(t *testing.T) {
	f := newFake(t, behaviour{record: true})
	s := newScanner(t, 10*time.Second, refusedAddr(t, "tcp"), f.unix, f.tcp)
	msg := message(50 << 10)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			j := s.Begin(t.Context(), nil)
			if err := writeAll(j, msg, 8192); err != nil {
				t.Error(err)
			}
			if r := j.Finish(t.Context()); r.Status != scan.Clean {
				t.Errorf("%v %v", r.Status, r.Err)
			}
		})
	}
	wg.Go(func() { s.Ping(t.Context()) })
	wg.Wait()
	for _, st := range f.received() {
		if !bytes.Equal(st.data, msg) {
			t.Fatal("a stream arrived damaged")
		}
	}
}

// TestSlowSender: a message that takes longer to arrive than Options.Timeout
// (a slow SMTP client) is still scanned, since each piece keeps the
// connection busy; Timeout bounds stalls and the wait after the end.
func TestSlowSender(t *testing.T) {
	f := newFake(t, behaviour{record: true})
	s := newScanner(t, 300*time.Millisecond, f.addr("unix"))
	j := s.Begin(t.Context(), nil)
	for i := 0; i < 6; i++ {
		if _, err := j.Write([]byte("a slow line of the message\r\n")); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r := j.Finish(t.Context()); r.Status != scan.Clean {
		t.Fatalf("slow message: %v %v, want clean", r.Status, r.Err)
	}
}
