// Command nobounce-bench drives a milter over the milter protocol with
// concurrent sessions, as an MTA would, and reports throughput, the time from
// the end of the body to the milter's reply, and the milter's peak memory.
//
//	nobounce-bench -milter inet:127.0.0.1:10029 -sessions 50 -messages 200 -size 10MB -pid 1234
//
// It offers what Postfix offers in negotiation, sends each message in 64 KiB
// body chunks with a unique Message-ID (so no scanner cache can help) and
// counts the replies by kind.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/scan/clamd"
	"github.com/nobounce/nobounce/sockaddr"
)

func main() {
	addr := flag.String("milter", "inet:127.0.0.1:10029", "milter `SOCKET` to drive")
	sessions := flag.Int("sessions", 16, "concurrent milter sessions")
	messages := flag.Int("messages", 100, "messages in all")
	size := flag.String("size", "10KB", "body size of each message (e.g. 10KB, 1MB, 10MB)")
	pid := flag.Int("pid", 0, "`PID` of the milter process, to report its peak RSS (VmHWM)")
	baseline := flag.String("clamd", "", "also scan the same messages directly with the clamd at `ADDR` (INSTREAM, same concurrency) as a baseline, and print the ratios")
	flag.Parse()

	a, err := sockaddr.Parse(*addr)
	if err != nil {
		fatal(err)
	}
	n, err := parseSize(*size)
	if err != nil {
		fatal(err)
	}
	body := makeBody(n)
	client := gomilter.NewClientWithOptions(a.Network, a.Address, gomilter.ClientOptions{
		ReadTimeout:  5 * time.Minute,
		WriteTimeout: time.Minute,
		ActionMask:   gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptAddRcpt | gomilter.OptRemoveRcpt | gomilter.OptQuarantine | gomilter.OptChangeBody,
	})

	var base *stats
	if *baseline != "" {
		b, err := clamdBaseline(*baseline, *sessions, *messages, body)
		if err != nil {
			fatal(err)
		}
		base = &b
		b.print("clamd direct (baseline)")
	}

	var (
		mu      sync.Mutex
		lat     []time.Duration
		replies = map[string]int{}
		errs    []string
		next    int
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next >= *messages {
			return 0, false
		}
		next++
		return next, true
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < *sessions; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var s *gomilter.ClientSession
			for {
				i, ok := take()
				if !ok {
					break
				}
				if s == nil {
					if s, err = client.Session(); err == nil {
						_, err = s.Conn("bench.example", gomilter.FamilyInet, 40000, "127.0.0.2")
					}
					if err == nil {
						_, err = s.Helo("bench.example")
					}
					if err != nil {
						mu.Lock()
						errs = append(errs, err.Error())
						mu.Unlock()
						s = nil
						continue
					}
				}
				kind, d, err := one(s, i, body)
				mu.Lock()
				if err != nil {
					errs = append(errs, err.Error())
					s.Close()
					s = nil
				} else {
					lat = append(lat, d)
					replies[kind]++
				}
				mu.Unlock()
			}
			if s != nil {
				s.Close()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	st := stats{n: len(lat), size: n, sessions: *sessions, elapsed: elapsed, lat: lat, replies: replies, errs: errs}
	st.print("milter")
	if base != nil && base.n > 0 && st.n > 0 {
		fmt.Printf("ratio milter/clamd-direct: rate %.2f×  p50 %.2f×  p99 %.2f×\n",
			st.rate()/base.rate(), float64(st.pct(50))/float64(base.pct(50)), float64(st.pct(99))/float64(base.pct(99)))
	}
	if *pid > 0 {
		if hwm, err := peakRSS(*pid); err == nil {
			fmt.Printf("peak RSS:   %.1f MB (VmHWM of pid %d)\n", float64(hwm)/1e6, *pid)
		} else {
			fmt.Printf("peak RSS:   unknown: %v\n", err)
		}
	}
	if len(errs) > 0 {
		os.Exit(1)
	}
}

// one sends message i and returns the kind of reply and the time from the
// end of the body to the reply.
func one(s *gomilter.ClientSession, i int, body []byte) (string, time.Duration, error) {
	steps := []func() (*gomilter.Action, error){
		func() (*gomilter.Action, error) { return s.Mail("bench@remote.test", nil) },
		func() (*gomilter.Action, error) { return s.Rcpt("alice@example.test", nil) },
		func() (*gomilter.Action, error) {
			return s.HeaderField("Message-ID", fmt.Sprintf("<bench.%d.%d@remote.test>", time.Now().UnixNano(), i))
		},
		func() (*gomilter.Action, error) {
			return s.HeaderField("Subject", "benchmark message "+strconv.Itoa(i))
		},
		s.HeaderEnd,
	}
	for off := 0; off < len(body); off += gomilter.MaxBodyChunk {
		chunk := body[off:min(off+gomilter.MaxBodyChunk, len(body))]
		steps = append(steps, func() (*gomilter.Action, error) { return s.BodyChunk(chunk) })
	}
	for _, f := range steps {
		act, err := f()
		if err != nil {
			return "", 0, err
		}
		if act.Code != gomilter.ActContinue {
			return kindOf(act), 0, s.Abort()
		}
	}
	t0 := time.Now()
	_, act, err := s.End()
	d := time.Since(t0)
	if err != nil {
		return "", 0, err
	}
	return kindOf(act), d, nil
}

// stats is one run's figures.
type stats struct {
	n, size, sessions int
	elapsed           time.Duration
	lat               []time.Duration
	replies           map[string]int
	errs              []string
}

func (s *stats) rate() float64 { return float64(s.n) / s.elapsed.Seconds() }

func (s *stats) pct(p int) time.Duration {
	sort.Slice(s.lat, func(i, j int) bool { return s.lat[i] < s.lat[j] })
	return pct(s.lat, p)
}

func (s *stats) print(label string) {
	fmt.Printf("== %s\n", label)
	fmt.Printf("messages:   %d of %d bytes body, %d sessions, %s\n", s.n, s.size, s.sessions, s.elapsed.Round(time.Millisecond))
	fmt.Printf("rate:       %.1f messages/s, %.1f MB/s\n", s.rate(), float64(s.n)*float64(s.size)/1e6/s.elapsed.Seconds())
	if s.n > 0 {
		fmt.Printf("eom→reply:  p50 %s  p99 %s  max %s\n", s.pct(50), s.pct(99), s.lat[len(s.lat)-1].Round(10*time.Microsecond))
	}
	var kinds []string
	for k, v := range s.replies {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(kinds)
	fmt.Printf("replies:    %s\n", strings.Join(kinds, " "))
	fmt.Printf("errors:     %d\n", len(s.errs))
	for i, e := range s.errs {
		if i == 5 {
			fmt.Printf("            ...\n")
			break
		}
		fmt.Printf("            %s\n", e)
	}
}

// clamdBaseline streams the same messages straight to clamd with nobounce's
// own clamd client, measuring from the last byte to clamd's answer: the part
// of the end-of-message wait that no milter can avoid.
func clamdBaseline(addr string, sessions, messages int, body []byte) (stats, error) {
	a, err := sockaddr.Parse(addr)
	if err != nil {
		return stats{}, err
	}
	sc, err := clamd.New(clamd.Options{Addrs: []sockaddr.Addr{a}, Timeout: 5 * time.Minute})
	if err != nil {
		return stats{}, err
	}
	st := stats{size: len(body), sessions: sessions, replies: map[string]int{}}
	var mu sync.Mutex
	next := 0
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < sessions; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				if next >= messages {
					mu.Unlock()
					return
				}
				next++
				i := next
				mu.Unlock()
				job := sc.Begin(context.Background(), &scan.Envelope{})
				fmt.Fprintf(job, "Message-ID: <bench.%d.%d@remote.test>\r\nSubject: benchmark message %d\r\n\r\n", time.Now().UnixNano(), i, i)
				for off := 0; off < len(body); off += gomilter.MaxBodyChunk {
					job.Write(body[off:min(off+gomilter.MaxBodyChunk, len(body))])
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

func kindOf(a *gomilter.Action) string {
	if a.Code == gomilter.ActReplyCode {
		return strconv.Itoa(a.SMTPCode)
	}
	if a.Code == gomilter.ActContinue || a.Code == gomilter.ActAccept {
		return "accept"
	}
	return string(rune(a.Code))
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
	var b bytes.Buffer
	line := []byte(strings.Repeat("QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAx", 2)[:76])
	for b.Len() < n {
		b.Write(line)
		b.WriteString("\r\n")
	}
	return b.Bytes()[:n]
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

func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "nobounce-bench:", err)
	os.Exit(2)
}
