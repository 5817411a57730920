package recipient

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nobounce/nobounce/recipient/smtptest"
	"github.com/nobounce/nobounce/sockaddr"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// events counts what a checker reports.
type events struct {
	mu sync.Mutex
	n  map[Event]int
}

func (e *events) add(ev Event, _ string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.n == nil {
		e.n = map[Event]int{}
	}
	e.n[ev]++
}

func (e *events) count(ev Event) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.n[ev]
}

func checker(be *smtptest.Server, mod func(*Options)) *Checker {
	o := Options{
		Domains:       []string{"example.test"},
		Backends:      map[string]sockaddr.Addr{"example.test": be.Addr},
		Cache:         NewCache(DefaultCacheOptions),
		CatchAllCheck: true,
		Timeout:       2 * time.Second,
		Logger:        quiet,
	}
	if mod != nil {
		mod(&o)
	}
	return New(o)
}

func check(c *Checker, rcpt string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Check(ctx, rcpt)
}

func writeList(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "recipients")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// step is one recipient checked in turn against the same checker, and
// what must happen.
type step struct {
	rcpt   string
	reply  string // "" = accepted; else the start of the reply
	reason Reason
	conns  int // the backend's connection count after this step
}

func runSteps(t *testing.T, be *smtptest.Server, c *Checker, steps []step) {
	t.Helper()
	for i, s := range steps {
		r := check(c, s.rcpt)
		if got := r.Reply(); s.reply == "" && got != "" || !strings.HasPrefix(got, s.reply) {
			t.Errorf("step %d %s: reply %q, want %q", i, s.rcpt, got, s.reply)
		}
		if r.Reason != s.reason {
			t.Errorf("step %d %s: reason %s, want %s (detail %s)", i, s.rcpt, r.Reason, s.reason, r.Detail)
		}
		if n := be.Connections(); n != s.conns {
			t.Errorf("step %d %s: backend saw %d connections, want %d", i, s.rcpt, n, s.conns)
		}
	}
}

const unknownText = "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown in virtual mailbox table"

func TestCheckRejectingBackend(t *testing.T) {
	be := smtptest.Start(t, smtptest.Config{Users: []string{"alice@example.test", "bob@example.test"}})
	c := checker(be, nil)
	runSteps(t, be, c, []step{
		{"alice@example.test", "", ReasonCallout, 1},
		{"alice@example.test", "", ReasonCached, 1},
		{"ALICE@Example.TEST", "", ReasonCached, 1}, // case does not matter
		{"nobody@example.test", unknownText, ReasonCalloutUnknown, 2},
		{"nobody@example.test", unknownText + " (previously cached response)", ReasonCachedUnknown, 2},
		{"bob@example.test", "", ReasonCallout, 3},
		{"someone@elsewhere.test", "", ReasonNotLocal, 3},
		{"no-domain", "", ReasonNotLocal, 3},
		{"@example.test", "", ReasonNotLocal, 3},
	})
	// The probe ran once, with the first callout, and found no catch-all.
	if len(be.Rcpts()) != 4 || !strings.HasPrefix(be.Rcpts()[0], "nobounce-probe-") || be.Rcpts()[1] != "alice@example.test" {
		t.Errorf("backend saw RCPT TO %q: want the probe, then one per address", be.Rcpts())
	}
}

func TestCheckCatchAll(t *testing.T) {
	tests := []struct {
		name  string
		list  string // "" = no list
		steps []step
	}{
		{"no list: accepted unchecked", "", []step{
			{"alice@example.test", "", ReasonCatchAll, 1},
			{"nobody@example.test", "", ReasonCatchAll, 1}, // no second callout
		}},
		{"the list decides", "alice@example.test\n", []step{
			{"alice@example.test", "", ReasonListed, 1},
			{"nobody@example.test", "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown", ReasonNotListed, 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := smtptest.Start(t, smtptest.Config{CatchAll: true})
			var ev events
			c := checker(be, func(o *Options) {
				o.Event = ev.add
				if tt.list != "" {
					l, err := LoadList(writeList(t, tt.list), quiet)
					if err != nil {
						t.Fatal(err)
					}
					o.List = l
				}
			})
			runSteps(t, be, c, tt.steps)
			if n := ev.count(EventCatchAll); n != 1 {
				t.Errorf("catch-all counted %d times, want once", n)
			}
		})
	}
	// Without the probe, a catch-all's answers are taken as they come.
	be := smtptest.Start(t, smtptest.Config{CatchAll: true})
	c := checker(be, func(o *Options) { o.CatchAllCheck = false })
	runSteps(t, be, c, []step{{"nobody@example.test", "", ReasonCallout, 1}})
}

func TestCheckCantTell(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	down := &smtptest.Server{Addr: sockaddr.Addr{Network: "tcp", Address: ln.Addr().String()}}
	ln.Close()
	tests := []struct {
		name     string
		be       *smtptest.Server
		failOpen bool
		list     string
		want     string
		reason   Reason
		conns    int // after two checks: nothing was cached
	}{
		{"backend answers 4xx", smtptest.Start(t, smtptest.Config{RcptTempFail: true}), false, "", "451 4.4.3", ReasonUnverified, 2},
		{"backend refuses the null sender", smtptest.Start(t, smtptest.Config{RejectNullSender: true}), false, "", "451 4.4.3", ReasonUnverified, 2},
		{"backend greets with 554", smtptest.Start(t, smtptest.Config{Greeting: "554 no"}), false, "", "451 4.4.3", ReasonUnverified, 2},
		{"backend down", down, false, "", "451 4.4.3", ReasonUnverified, 0},
		{"backend silent: timeout", smtptest.Start(t, smtptest.Config{Silent: true}), false, "", "451 4.4.3", ReasonUnverified, 2},
		{"fail open", smtptest.Start(t, smtptest.Config{RcptTempFail: true}), true, "", "", ReasonUnverifiedAccept, 2},
		{"the list decides", smtptest.Start(t, smtptest.Config{RcptTempFail: true}), false, "@example.test\n!nobody@example.test\n",
			"550 5.1.1", ReasonNotListed, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev events
			c := checker(tt.be, func(o *Options) {
				o.Event = ev.add
				o.FailOpen = tt.failOpen
				o.Timeout = 300 * time.Millisecond
				if tt.list != "" {
					o.List, _ = LoadList(writeList(t, tt.list), quiet)
				}
			})
			for i := 0; i < 2; i++ {
				start := time.Now()
				r := check(c, "nobody@example.test")
				if got := r.Reply(); tt.want == "" && got != "" || !strings.HasPrefix(got, tt.want) {
					t.Errorf("check %d: reply %q, want %q", i, got, tt.want)
				}
				if r.Reason != tt.reason {
					t.Errorf("check %d: reason %s, want %s", i, r.Reason, tt.reason)
				}
				if time.Since(start) > 2*time.Second {
					t.Errorf("check %d took %v", i, time.Since(start))
				}
			}
			if n := tt.be.Connections(); n != tt.conns {
				t.Errorf("backend saw %d connections, want %d (can't-tell answers are never cached)", n, tt.conns)
			}
			if n := ev.count(EventCalloutFailed); n != 2 {
				t.Errorf("%d callout failures counted, want 2", n)
			}
		})
	}
}

func TestCheckExpiry(t *testing.T) {
	be := smtptest.Start(t, smtptest.Config{Users: []string{"alice@example.test"}})
	c := checker(be, func(o *Options) {
		o.Cache = NewCache(CacheOptions{Size: 10, Positive: 300 * time.Millisecond, Negative: 150 * time.Millisecond, CatchAll: time.Hour})
	})
	runSteps(t, be, c, []step{
		{"alice@example.test", "", ReasonCallout, 1},
		{"nobody@example.test", "550", ReasonCalloutUnknown, 2},
		{"alice@example.test", "", ReasonCached, 2},
		{"nobody@example.test", "550", ReasonCachedUnknown, 2},
	})
	time.Sleep(200 * time.Millisecond) // the negative answer expired, the positive not yet
	runSteps(t, be, c, []step{
		{"nobody@example.test", "550", ReasonCalloutUnknown, 3},
		{"alice@example.test", "", ReasonCached, 3},
	})
	time.Sleep(200 * time.Millisecond)
	runSteps(t, be, c, []step{{"alice@example.test", "", ReasonCallout, 4}})
}

func TestCheckSizeBound(t *testing.T) {
	be := smtptest.Start(t, smtptest.Config{CatchAll: true})
	c := checker(be, func(o *Options) {
		o.CatchAllCheck = false
		o.Cache = NewCache(CacheOptions{Size: 3, Positive: time.Hour, Negative: time.Hour, CatchAll: time.Hour})
	})
	for i := 0; i < 10; i++ {
		check(c, fmt.Sprintf("u%d@example.test", i))
	}
	if pos, neg := c.Cache().Len(); pos != 3 || neg != 0 {
		t.Errorf("cache holds %d positive, %d negative; want 3, 0", pos, neg)
	}
	// The oldest were evicted: asking again calls out again.
	runSteps(t, be, c, []step{{"u0@example.test", "", ReasonCallout, 11}, {"u9@example.test", "", ReasonCached, 11}})
}

func TestCheckOneCalloutAtATime(t *testing.T) {
	be := smtptest.Start(t, smtptest.Config{Users: []string{"alice@example.test"}, Delay: 200 * time.Millisecond})
	c := checker(be, func(o *Options) { o.CatchAllCheck = false })
	var ev events
	c.opts.Event = ev.add
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := check(c, "alice@example.test"); !r.Accept() {
				t.Errorf("concurrent check: %v", r.Reply())
			}
		}()
	}
	wg.Wait()
	if n := be.Connections(); n != 1 {
		t.Errorf("8 concurrent checks of one address made %d callouts, want 1", n)
	}
	if n := ev.count(EventCallout); n != 1 {
		t.Errorf("%d callouts reported, want 1", n)
	}
}

func TestCheckListOnly(t *testing.T) {
	l, err := LoadList(writeList(t, "alice@example.test\n@example.org\n!bob@example.org\n"), quiet)
	if err != nil {
		t.Fatal(err)
	}
	c := New(Options{Domains: []string{"example.test", "example.org", "example.net"}, List: l, Logger: quiet})
	tests := []struct {
		rcpt   string
		reply  string
		reason Reason
	}{
		{"alice@example.test", "", ReasonListed},
		{"nobody@example.test", "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown", ReasonNotListed},
		{"anyone@example.org", "", ReasonListed},
		{"bob@example.org", "550 5.1.1", ReasonNotListed},
		{"x@example.net", "", ReasonUnchecked}, // local, but the list does not cover it
		{"x@remote.test", "", ReasonNotLocal},
	}
	for _, tt := range tests {
		r := check(c, tt.rcpt)
		if got := r.Reply(); tt.reply == "" && got != "" || !strings.HasPrefix(got, tt.reply) || r.Reason != tt.reason {
			t.Errorf("%s: %q (%s), want %q (%s)", tt.rcpt, got, r.Reason, tt.reply, tt.reason)
		}
	}
}

func TestUnknownResultText(t *testing.T) {
	tests := []struct {
		rep    Reply
		cached bool
		want   string
	}{
		{Reply{}, false, "550 5.1.1 <a@b.test>: Recipient address rejected: User unknown"},
		{Reply{}, true, "550 5.1.1 <a@b.test>: Recipient address rejected: User unknown (previously cached response)"},
		{Reply{550, "5.1.1", []string{"<a@b.test>: no mailbox here"}}, true, "550 5.1.1 <a@b.test>: no mailbox here (previously cached response)"},
		{Reply{553, "5.1.3", []string{"bad address syntax"}}, false, "550 5.1.3 bad address syntax"},
		{Reply{550, "5.7.1", []string{"relay denied"}}, false, "550 5.1.1 relay denied"}, // not a mailbox status: ours
		{Reply{550, "", []string{"no such user"}}, false, "550 5.1.1 no such user"},
	}
	for _, tt := range tests {
		if got := unknownResult("a@b.test", ReasonCalloutUnknown, tt.rep, tt.cached).Reply(); got != tt.want {
			t.Errorf("unknownResult(%v, cached %v) = %q, want %q", tt.rep, tt.cached, got, tt.want)
		}
	}
}

func TestGroups(t *testing.T) {
	g := NewGroups(map[string]string{"example.test": "staff", "Boss@Example.Test": "vip", "other.test": "staff"})
	tests := map[string]string{
		"alice@example.test": "staff",
		"boss@example.test":  "vip",
		"BOSS@EXAMPLE.TEST":  "vip",
		"x@other.test":       "staff",
		"x@remote.test":      DefaultGroup,
		"no-domain":          DefaultGroup,
	}
	for addr, want := range tests {
		if got := g.Of(addr); got != want {
			t.Errorf("Of(%q) = %q, want %q", addr, got, want)
		}
	}
	var none *Groups
	if none.Of("a@b") != DefaultGroup || none.Len() != 0 {
		t.Error("a nil *Groups is not all default")
	}
	if r := OtherGroup("a@b.test"); r.Code != 452 || r.Enhanced != "4.5.3" || !strings.Contains(r.Text, "separate transaction") {
		t.Errorf("OtherGroup = %+v", r)
	}
}

// BenchmarkCachedLookup measures recipients answered from the cache (the
// common case for a busy domain): one Check per operation, in parallel.
func BenchmarkCachedLookup(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ln.Close() // no backend: every lookup must come from the cache
	cache := NewCache(DefaultCacheOptions)
	be := sockaddr.Addr{Network: "tcp", Address: ln.Addr().String()}
	const n = 10000
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("user%d@example.test", i)
		st := Exists
		if i%4 == 0 {
			st = Unknown
		}
		cache.put(be.String()+" "+addrs[i], st, Reply{Code: 550, Enhanced: "5.1.1", Lines: []string{"no"}})
	}
	cache.setCatchAll(be.String()+" @example.test", false)
	c := New(Options{Backends: map[string]sockaddr.Addr{"example.test": be}, Cache: cache, CatchAllCheck: true, Logger: quiet})
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r := c.Check(ctx, addrs[i%n])
			if r.Reason != ReasonCached && r.Reason != ReasonCachedUnknown {
				b.Fatalf("not from the cache: %+v", r)
			}
			i += 7
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
}
