// Command nobounce-bench drives a milter over the milter protocol with
// concurrent sessions, as Postfix would, and reports throughput, the time
// from the end of the body to the milter's reply, errors, the replies by
// kind, and the milter's peak memory and CPU time.
//
// One milter (the foundation benchmarks, testbed/bench.sh):
//
//	nobounce-bench -milter inet:127.0.0.1:10029 -sessions 50 -messages 200 -size 10MB -pid 1234 [-clamd unix:/path]
//
// Real mail instead of a made-up body: -corpus DIR replays the messages
// under DIR (the SpamAssassin public corpus, testbed/corpus.sh), mbox
// "From " line stripped; -eicar N adds the EICAR test string to every N-th.
//
// Side by side, alternating runs (testbed/compare.sh):
//
//	nobounce-bench -compare -title clamd -rounds 5 -sessions 16 -messages 1000 -corpus DIR \
//	    -target nobounce=inet:127.0.0.1:10029,pid=1234 \
//	    -target clamav-milter=inet:127.0.0.1:10031,pid=5678 -json clamd.json
//
// runs every target once per round, in turn (the order reverses every
// round), and prints each target's medians and the first target's ratios to
// each other target, measured within the same round.
//
// The chart and the summary table of several comparisons:
//
//	nobounce-bench -chart docs/benchmarks-compare.svg clamd.json spamd.json ...
//
// Through a real MTA: -smtp 127.0.0.1:25 sends the messages as SMTP
// sessions of its own and counts the answers to the final ".".
//
// Every message carries a header of its own (X-Bench-Id), so that no
// scanner can answer from a cache. See client.go for how closely the milter
// conversation follows Postfix's.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/scan/clamd"
	"github.com/nobounce/nobounce/sockaddr"
)

// config is what every run of one invocation shares.
type config struct {
	sessions int
	messages int
	perConn  int // messages per milter connection; 0: as many as there are
	timeout  time.Duration
	warmup   int

	abortAfter int  // > 0: end every message after this many body bytes
	abortDrop  bool // ... by dropping the connection instead of an abort packet
}

func main() {
	addr := flag.String("milter", "inet:127.0.0.1:10029", "milter `SOCKET` to drive")
	sessions := flag.Int("sessions", 16, "concurrent milter sessions")
	messages := flag.Int("messages", 100, "messages in all (per run)")
	size := flag.String("size", "10KB", "body size of each made-up message (e.g. 10KB, 1MB, 10MB); not with -corpus")
	pid := flag.Int("pid", 0, "`PID` of the milter process, to report its peak RSS (VmHWM) and CPU time")
	baseline := flag.String("clamd", "", "also scan the same messages directly with the clamd at `ADDR` (INSTREAM, same concurrency) as a baseline, and print the ratios")
	corpusDir := flag.String("corpus", "", "replay the messages under `DIR` (SpamAssassin corpus: testbed/corpus.sh) instead of a made-up body")
	corpusLimit := flag.Int("corpus-limit", 0, "use only the first `N` messages of the corpus's fixed order (0: all)")
	eicarEvery := flag.Int("eicar", 0, "add the EICAR test string to every `N`-th message (0: none)")
	perConn := flag.Int("per-conn", 0, "messages per milter connection (0: each session keeps its connection for all its messages)")
	timeout := flag.Duration("timeout", 5*time.Minute, "longest wait for any milter reply")
	compare := flag.Bool("compare", false, "compare the -target milters in alternating runs")
	var targets listFlag
	flag.Var(&targets, "target", "`NAME=SOCKET[,pid=PID]` to compare, repeatable; the first is the one the ratios are of")
	rounds := flag.Int("rounds", 3, "rounds of a comparison (each target runs once per round)")
	warmup := flag.Int("warmup", 50, "messages sent to each target before its first measured run, not counted")
	title := flag.String("title", "", "name of this comparison (in the JSON output and the chart)")
	goals := flag.String("goals", "", "goals of this comparison, written into the JSON for the chart: rate>=2,p99<=0.5,rss<=150MB")
	jsonOut := flag.String("json", "", "write the comparison's runs to `FILE` as JSON")
	chart := flag.String("chart", "", "draw `FILE.svg` from the comparison JSON files named as arguments, and print their summary table")
	abortAfter := flag.String("abort-after", "", "abort every message after this much of its body (e.g. 64KB), as an MTA whose client went away mid-body; the message must be longer")
	abortMode := flag.String("abort-mode", "abort", "how -abort-after ends a message: abort (an abort packet, the connection goes on) or drop (the connection is closed)")
	smtpAddr := flag.String("smtp", "", "send the messages through the SMTP server at `HOST:PORT` (a real MTA) instead of driving a milter")
	flag.Parse()

	if *chart != "" {
		if err := drawChart(*chart, flag.Args()); err != nil {
			fatal(err)
		}
		return
	}

	var corpus []*message
	if *corpusDir != "" {
		var err error
		if corpus, err = loadCorpus(*corpusDir, *corpusLimit); err != nil {
			fatal(err)
		}
	} else {
		n, err := parseSize(*size)
		if err != nil {
			fatal(err)
		}
		corpus = synthetic(n)
	}
	wl := newWorkload(corpus, *eicarEvery)
	cfg := config{sessions: *sessions, messages: *messages, perConn: *perConn, timeout: *timeout, warmup: *warmup}
	if *abortAfter != "" {
		n, err := parseSize(*abortAfter)
		if err != nil || n <= 0 {
			fatal(fmt.Errorf("-abort-after %q: want a size above 0", *abortAfter))
		}
		cfg.abortAfter = n
		switch *abortMode {
		case "abort":
		case "drop":
			cfg.abortDrop = true
		default:
			fatal(fmt.Errorf("-abort-mode %q: want abort or drop", *abortMode))
		}
	}

	if *smtpAddr != "" {
		st := runSMTP(*smtpAddr, cfg, wl)
		st.print("smtp " + *smtpAddr)
		if len(st.errs) > 0 {
			os.Exit(1)
		}
		return
	}

	if *compare {
		if len(targets) == 0 {
			fatal(fmt.Errorf("-compare needs -target (two or more for ratios)"))
		}
		var ts []target
		for _, s := range targets {
			t, err := parseTarget(s)
			if err != nil {
				fatal(err)
			}
			ts = append(ts, t)
		}
		c := comparison{Title: *title, Goals: *goals, Sessions: cfg.sessions, Messages: cfg.messages,
			PerConn: cfg.perConn, Rounds: *rounds, Workload: describe(*corpusDir, corpus, *eicarEvery)}
		if err := c.run(ts, cfg, wl); err != nil {
			fatal(err)
		}
		c.summary(os.Stdout)
		if *jsonOut != "" {
			if err := c.save(*jsonOut); err != nil {
				fatal(err)
			}
		}
		if c.failed() {
			os.Exit(1)
		}
		return
	}

	a, err := sockaddr.Parse(*addr)
	if err != nil {
		fatal(err)
	}
	var base *stats
	if *baseline != "" {
		b, err := clamdBaseline(*baseline, cfg, wl)
		if err != nil {
			fatal(err)
		}
		base = &b
		b.print("clamd direct (baseline)")
	}
	st := runMilter(a, *pid, cfg, wl)
	st.print("milter")
	if base != nil && base.n > 0 && st.n > 0 {
		fmt.Printf("ratio milter/clamd-direct: rate %.2f×  p50 %.2f×  p99 %.2f×\n",
			st.rate()/base.rate(), float64(st.pct(50))/float64(base.pct(50)), float64(st.pct(99))/float64(base.pct(99)))
	}
	if len(st.errs) > 0 {
		os.Exit(1)
	}
}

func describe(dir string, corpus []*message, eicarEvery int) string {
	var s string
	if dir != "" {
		total := 0
		for _, m := range corpus {
			total += m.size()
		}
		s = fmt.Sprintf("%d corpus messages (mean %d bytes)", len(corpus), total/len(corpus))
	} else {
		s = fmt.Sprintf("made-up %d-byte body", len(corpus[0].body))
	}
	if eicarEvery > 0 {
		s += fmt.Sprintf(", EICAR in every %d-th", eicarEvery)
	}
	return s
}

// runMilter sends cfg.messages messages of wl to the milter at a with
// cfg.sessions concurrent sessions. pid > 0: measure that process tree's
// peak RSS and CPU time over the run.
func runMilter(a sockaddr.Addr, pid int, cfg config, wl *workload) stats {
	var (
		mu   sync.Mutex
		st   = stats{sessions: cfg.sessions, replies: map[string]int{}}
		next int
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next >= cfg.messages {
			return 0, false
		}
		next++
		return next, true
	}
	fail := func(err error) {
		mu.Lock()
		st.errs = append(st.errs, err.Error())
		mu.Unlock()
	}
	var cpu0 time.Duration
	if pid > 0 {
		resetPeak(pid)
		cpu0 = cpuTime(pid)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < cfg.sessions; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *mclient
			sent := 0
			for {
				i, ok := take()
				if !ok {
					break
				}
				if c == nil {
					var err error
					if c, err = dialMilter(a, cfg.timeout); err != nil {
						fail(err)
						c = nil
						continue
					}
					sent = 0
					ans, err := c.hello()
					if err != nil || ans.code != 'c' {
						if err == nil {
							err = fmt.Errorf("session refused at connect/helo: %s", kindOfAnswer(ans))
						}
						fail(err)
						c.close()
						c = nil
						continue
					}
				}
				m := wl.get(i)
				kind, d, err := c.message(m, cfg.abortAfter, cfg.abortDrop)
				sent++
				mu.Lock()
				if err != nil {
					st.errs = append(st.errs, err.Error())
				} else {
					st.n++
					st.bytes += int64(m.size())
					if cfg.abortAfter == 0 {
						st.lat = append(st.lat, d)
					}
					st.replies[kind]++
				}
				mu.Unlock()
				if kind == "dropped" {
					c = nil
					continue
				}
				if err != nil || (cfg.perConn > 0 && sent >= cfg.perConn) {
					c.close()
					c = nil
				}
			}
			if c != nil {
				c.close()
			}
		}()
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	if pid > 0 {
		st.cpu = cpuTime(pid) - cpu0
		if hwm, err := treePeakRSS(pid); err == nil {
			st.rss = hwm
		}
		st.pid = pid
	}
	return st
}

// stats is one run's figures.
type stats struct {
	n, sessions int
	bytes       int64
	elapsed     time.Duration
	lat         []time.Duration
	replies     map[string]int
	errs        []string
	pid         int
	rss         int64
	cpu         time.Duration
	sorted      bool
}

func (s *stats) rate() float64 { return float64(s.n) / s.elapsed.Seconds() }

func (s *stats) pct(p int) time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	if !s.sorted {
		sort.Slice(s.lat, func(i, j int) bool { return s.lat[i] < s.lat[j] })
		s.sorted = true
	}
	return pct(s.lat, p)
}

func (s *stats) print(label string) {
	fmt.Printf("== %s\n", label)
	mean := int64(0)
	if s.n > 0 {
		mean = s.bytes / int64(s.n)
	}
	fmt.Printf("messages:   %d (mean %d bytes), %d sessions, %s\n", s.n, mean, s.sessions, s.elapsed.Round(time.Millisecond))
	fmt.Printf("rate:       %.1f messages/s, %.1f MB/s\n", s.rate(), float64(s.bytes)/1e6/s.elapsed.Seconds())
	if len(s.lat) > 0 {
		fmt.Printf("eom→reply:  p50 %s  p99 %s  max %s\n", s.pct(50), s.pct(99), s.lat[len(s.lat)-1].Round(10*time.Microsecond))
	}
	fmt.Printf("replies:    %s\n", s.replyString())
	fmt.Printf("errors:     %d\n", len(s.errs))
	for i, e := range s.errs {
		if i == 5 {
			fmt.Printf("            ...\n")
			break
		}
		fmt.Printf("            %s\n", e)
	}
	if s.pid > 0 {
		fmt.Printf("peak RSS:   %.1f MB (VmHWM of pid %d and its children, this run)\n", float64(s.rss)/1e6, s.pid)
		if s.n > 0 {
			fmt.Printf("CPU:        %s, %.2f ms per message\n", s.cpu.Round(time.Millisecond), float64(s.cpu)/float64(time.Millisecond)/float64(s.n))
		}
	}
}

func (s *stats) replyString() string {
	var kinds []string
	for k, v := range s.replies {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(kinds)
	return strings.Join(kinds, " ")
}

// clamdBaseline streams the same messages straight to clamd with nobounce's
// own clamd client, measuring from the last byte to clamd's answer: the part
// of the end-of-message wait that no milter can avoid.
func clamdBaseline(addr string, cfg config, wl *workload) (stats, error) {
	a, err := sockaddr.Parse(addr)
	if err != nil {
		return stats{}, err
	}
	sc, err := clamd.New(clamd.Options{Addrs: []sockaddr.Addr{a}, Timeout: cfg.timeout})
	if err != nil {
		return stats{}, err
	}
	st := stats{sessions: cfg.sessions, replies: map[string]int{}}
	var mu sync.Mutex
	next := 0
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < cfg.sessions; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next >= cfg.messages {
					mu.Unlock()
					return
				}
				next++
				i := next
				mu.Unlock()
				m := wl.get(i)
				job := sc.Begin(context.Background(), &scan.Envelope{})
				var hdr strings.Builder
				for _, h := range m.headers {
					fmt.Fprintf(&hdr, "%s: %s\r\n", h[0], strings.ReplaceAll(h[1], "\n", "\r\n"))
				}
				hdr.WriteString("\r\n")
				job.Write([]byte(hdr.String()))
				for off := 0; off < len(m.body); off += maxChunk {
					job.Write(m.body[off:min(off+maxChunk, len(m.body))])
				}
				t0 := time.Now()
				r := job.Finish(context.Background())
				d := time.Since(t0)
				job.Abort()
				mu.Lock()
				if r.Err != nil {
					st.errs = append(st.errs, r.Err.Error())
				} else {
					st.n++
					st.bytes += int64(m.size())
					st.lat = append(st.lat, d)
					st.replies[r.Status.String()]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	return st, nil
}

func pct(d []time.Duration, p int) time.Duration {
	i := (len(d)*p + 99) / 100
	if i > 0 {
		i--
	}
	return d[i].Round(10 * time.Microsecond)
}

// makeBody is plain text in 76-column lines, CRLF, like a base64 attachment.
func makeBody(n int) []byte {
	var b strings.Builder
	line := strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx", 2)[:76]
	for b.Len() < n {
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	return []byte(b.String()[:n])
}

func parseSize(s string) (int, error) {
	mult := 1
	u := strings.ToUpper(s)
	for _, suf := range []struct {
		s string
		m int
	}{{"KB", 1 << 10}, {"MB", 1 << 20}, {"K", 1 << 10}, {"M", 1 << 20}} {
		if strings.HasSuffix(u, suf.s) {
			mult, u = suf.m, strings.TrimSuffix(u, suf.s)
			break
		}
	}
	v, err := strconv.Atoi(u)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return v * mult, nil
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "nobounce-bench:", err)
	os.Exit(2)
}
