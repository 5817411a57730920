//go:build soak

package soak

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// scale picks the full or the short (CI) figure.
func scale(full, short int) int {
	if tb.short {
		return short
	}
	return full
}

// tally counts results by outcome: "250", "550", "451@RCPT", "error".
func tally(rs []result) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		switch {
		case r.err != nil:
			m["error"]++
		case r.stage == "DATA-END":
			m[fmt.Sprint(r.code)]++
		default:
			m[fmt.Sprintf("%d@%s", r.code, r.stage)]++
		}
	}
	return m
}

func tallyString(m map[string]int) string {
	var ks []string
	for k, v := range m {
		ks = append(ks, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(ks)
	return strings.Join(ks, " ")
}

// checkDelivery waits for Postfix's queue to empty and checks that every
// accepted message was delivered exactly once with a virus status allowed
// by okStatus, that nothing else was delivered, and that no DSN was made.
// It returns the number delivered.
func checkDelivery(t *testing.T, rs []result, dsnBefore int, okStatus func(r result, status string) bool) int {
	t.Helper()
	tb.waitQueue(t, 5*time.Minute)
	byID := map[string]result{}
	for _, r := range rs {
		byID[r.id] = r
	}
	got := map[string]int{}
	box := tb.mailbox("alice")
	for _, d := range box {
		if d.fromDaemon {
			t.Errorf("a bounce was delivered: %s", d.file)
			continue
		}
		got[d.id]++
		r, ok := byID[d.id]
		if !ok {
			continue // an earlier scenario's (the queue was drained before)
		}
		if !r.accepted() {
			t.Errorf("message %s was delivered but its client got %d at %s (err %v)", d.id, r.code, r.stage, r.err)
		}
		if !okStatus(r, d.virusStatus) {
			t.Errorf("message %s (virus %v) delivered with X-Virus-Status %q", d.id, r.virus, d.virusStatus)
		}
	}
	lost := 0
	for _, r := range rs {
		if r.accepted() && got[r.id] == 0 {
			lost++
			if lost <= 5 {
				t.Errorf("message %s was accepted (250) but never delivered", r.id)
			}
		}
		if got[r.id] > 1 {
			t.Errorf("message %s delivered %d times", r.id, got[r.id])
		}
	}
	if pm := tb.mailbox("postmaster"); len(pm) > 0 {
		t.Logf("postmaster notices: %d (Postfix's own reports, not DSNs)", len(pm))
	}
	if d := tb.dsns() - dsnBefore; d != 0 {
		t.Errorf("Postfix made %d DSN(s)", d)
	}
	if lost > 0 {
		t.Errorf("%d accepted message(s) lost", lost)
	}
	return len(box)
}

func cleanOnly(r result, status string) bool { return status == "Clean" && !r.virus }

// TestVolume: 10 000 messages (1 000 short) through Postfix with 200
// concurrent SMTP sessions (100 short), every 20th with EICAR: delivered +
// rejected = sent, none lost, no DSN.
func TestVolume(t *testing.T) {
	n, conc := scale(10000, 1000), scale(200, 100)
	tb.mailbox("alice")
	dsn0 := tb.dsns()
	gen := &messages{b: tb, prefix: "volume", virusEvery: 20}
	t0 := time.Now()
	rs := load(context.Background(), tb.smtpAddr, conc, 1, n, gen)
	elapsed := time.Since(t0)
	c := tally(rs)
	viruses := 0
	for _, r := range rs {
		if r.virus {
			viruses++
		}
	}
	delivered := checkDelivery(t, rs, dsn0, cleanOnly)
	t.Logf("sent %d in %s (%.0f/s) with %d sessions: %s; delivered %d; viruses sent %d",
		len(rs), elapsed.Round(time.Millisecond), float64(len(rs))/elapsed.Seconds(), conc, tallyString(c), delivered, viruses)
	if len(rs) != n {
		t.Errorf("sent %d of %d", len(rs), n)
	}
	if c["250"] != delivered || c["550"] != viruses || c["250"]+c["550"] != n {
		t.Errorf("want delivered (%d) + rejected (%d) = sent (%d), rejected = viruses (%d): %s",
			delivered, c["550"], n, viruses, tallyString(c))
	}
}

// TestAborts: sessions that end mid-body, 10 000 (1 000 short) at the
// milter (half with an abort packet on a connection that goes on, half by
// a dropped connection, as nobounce-bench -abort-after) and 1 000 (200
// short) SMTP clients vanishing mid-DATA through Postfix: nobounce's file
// descriptors, spool files and sessions return to their baseline.
func TestAborts(t *testing.T) {
	time.Sleep(2 * time.Second)
	base := tb.holdings()
	var (
		mu   sync.Mutex
		peak holdings
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			h := tb.holdings()
			mu.Lock()
			peak.threads, peak.fds = max(peak.threads, h.threads), max(peak.fds, h.fds)
			peak.spool, peak.sessions = max(peak.spool, h.spool), max(peak.sessions, h.sessions)
			mu.Unlock()
		}
	}()
	n := scale(10000, 1000)
	for _, mode := range []string{"abort", "drop"} {
		out, err := exec.Command(tb.benchBin, "-milter", fmt.Sprintf("inet:127.0.0.1:%d", tb.nbPort),
			"-sessions", "50", "-messages", fmt.Sprint(n/2), "-size", "256KB",
			"-abort-after", "100KB", "-abort-mode", mode).CombinedOutput()
		want := fmt.Sprintf("replies:    %s=%d\nerrors:     0\n", map[string]string{"abort": "aborted", "drop": "dropped"}[mode], n/2)
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("nobounce-bench -abort-mode %s: %v\n%s", mode, err, out)
		}
	}
	m := scale(1000, 200)
	gen := &messages{b: tb, prefix: "vanish"}
	jobs := make(chan msg)
	var dropErrs int
	var dmu sync.Mutex
	var dwg sync.WaitGroup
	for w := 0; w < 50; w++ {
		dwg.Add(1)
		go func() {
			defer dwg.Done()
			for m := range jobs {
				if err := dropMidData(tb.smtpAddr, m); err != nil {
					dmu.Lock()
					dropErrs++
					dmu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < m; i++ {
		jobs <- gen.next()
	}
	close(jobs)
	dwg.Wait()
	if dropErrs > 0 {
		t.Errorf("%d of %d SMTP sessions could not reach DATA", dropErrs, m)
	}
	var after holdings
	for end := time.Now().Add(20 * time.Second); ; time.Sleep(250 * time.Millisecond) {
		after = tb.holdings()
		if (after.fds <= base.fds && after.spool <= base.spool && after.sessions <= base.sessions) || time.Now().After(end) {
			break
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d milter sessions aborted mid-body (%d abort packets, %d dropped connections), %d SMTP clients gone mid-DATA", n, n/2, n/2, m)
	t.Logf("baseline: %s", base)
	t.Logf("peak:     %s", peak)
	t.Logf("after:    %s", after)
	if after.fds > base.fds || after.spool > base.spool || after.sessions > base.sessions {
		t.Errorf("nobounce did not return to its baseline: before %s, after %s", base, after)
	}
	if after.threads > peak.threads {
		t.Errorf("threads grew after the load: %s", after)
	}
	tb.waitQueue(t, time.Minute)
	for _, d := range tb.mailbox("alice") {
		if strings.HasPrefix(d.id, "vanish-") {
			t.Errorf("a message whose client vanished mid-DATA was delivered: %s", d.id)
		}
	}
}

// TestSIGHUP: reloads every 100 ms under load; no failed session, every
// message answered as if nothing happened.
func TestSIGHUP(t *testing.T) {
	tb.mailbox("alice")
	dsn0 := tb.dsns()
	ctx, cancel := context.WithCancel(context.Background())
	reloads := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			reply := []string{"Virus found: {virus}", "Virus detected: {virus}"}[i%2]
			if err := tb.writeConfig("tempfail", reply); err != nil {
				t.Error(err)
				return
			}
			tb.nb.Process.Signal(syscall.SIGHUP)
			reloads++
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	gen := &messages{b: tb, prefix: "hup", virusEvery: 10}
	rs := load(ctx, tb.smtpAddr, 50, 2, scale(3000, 500), gen)
	cancel()
	<-done
	tb.writeConfig("tempfail", "Virus found: {virus}")
	tb.nb.Process.Signal(syscall.SIGHUP)
	c := tally(rs)
	t.Logf("%d messages with %d reloads (SIGHUP every 100 ms), 50 sessions of 2 messages: %s", len(rs), reloads, tallyString(c))
	for _, r := range rs {
		if r.err != nil || r.stage != "DATA-END" || (r.code != 250 && r.code != 550) || (r.code == 550) != r.virus {
			t.Errorf("message %s (virus %v): %d at %s, err %v", r.id, r.virus, r.code, r.stage, r.err)
			break
		}
	}
	checkDelivery(t, rs, dsn0, cleanOnly)
	raw, _ := os.ReadFile(tb.nbLog)
	if strings.Contains(string(raw), "reload failed") {
		t.Errorf("a reload failed: see %s", tb.nbLog)
	}
}

// TestSIGTERM: SIGTERM under load. Messages under way (MAIL sent before
// the signal) finish with their real verdict (or, when the MAIL had not
// reached nobounce yet, get Postfix's 4xx at MAIL); nobounce exits 0; Postfix
// answers later messages, in open SMTP sessions and new ones, with its
// milter_default_action (tempfail: 4xx), so nothing passes unscanned and
// nothing is lost. nobounce is started again afterwards.
func TestSIGTERM(t *testing.T) {
	tb.mailbox("alice")
	dsn0 := tb.dsns()
	ctx, cancel := context.WithCancel(context.Background())
	gen := &messages{b: tb, prefix: "term", virusEvery: 10}
	resCh := make(chan []result)
	go func() { resCh <- load(ctx, tb.smtpAddr, 50, 3, 0, gen) }()
	time.Sleep(4 * time.Second)
	tT := time.Now()
	var exitErr error
	var drain time.Duration
	stopped := make(chan struct{})
	go func() { drain, exitErr = tb.stopNobounce(); close(stopped) }()
	time.Sleep(4 * time.Second)
	cancel()
	rs := <-resCh
	<-stopped
	if err := tb.startNobounce(); err != nil {
		t.Fatal(err)
	}
	if exitErr != nil {
		t.Errorf("nobounce exited with %v after SIGTERM", exitErr)
	}
	var before, inFlight, later []result
	for _, r := range rs {
		switch {
		case r.tEnd.Before(tT):
			before = append(before, r)
		case r.tMail.Before(tT):
			inFlight = append(inFlight, r)
		default:
			later = append(later, r)
		}
	}
	t.Logf("SIGTERM after %d messages; nobounce drained and exited in %s (status %v)", len(before), drain.Round(time.Millisecond), exitErr)
	t.Logf("under way at SIGTERM: %d: %s", len(inFlight), tallyString(tally(inFlight)))
	t.Logf("started after SIGTERM: %d: %s", len(later), tallyString(tally(later)))
	for _, r := range inFlight {
		// MAIL sent just before the signal may not have reached nobounce
		// yet: Postfix then answers it with milter_default_action.
		if r.err == nil && r.stage == "MAIL" && r.code/100 == 4 {
			continue
		}
		if r.err != nil || r.stage != "DATA-END" || (r.code != 250 && r.code != 550) {
			t.Errorf("message %s under way at SIGTERM: %d at %s, err %v", r.id, r.code, r.stage, r.err)
		}
	}
	for _, r := range later {
		if r.err != nil || r.code/100 != 4 {
			t.Errorf("message %s started after SIGTERM: %d at %s, err %v (want a 4xx from milter_default_action)", r.id, r.code, r.stage, r.err)
			break
		}
	}
	checkDelivery(t, rs, dsn0, cleanOnly)
}

// TestScannerFaults: clamd killed (then refusing connections until it is
// started again), clamd hung (SIGSTOP, longer than nobounce's clamd
// connect and scan timeouts), and clamd killed with on_error = "accept", under steady load:
// every message answered while clamd is out gets 451 (with accept: 250 and
// "Not scanned"), none is accepted unscanned, nothing is lost, and mail
// flows again afterwards.
func TestScannerFaults(t *testing.T) {
	kill := func() func() {
		syscall.Kill(tb.clamdPID(), syscall.SIGKILL)
		return func() {
			if err := tb.clamd("start"); err != nil {
				t.Fatal(err)
			}
		}
	}
	hang := func() func() {
		pid := tb.clamdPID()
		syscall.Kill(pid, syscall.SIGSTOP)
		return func() { syscall.Kill(pid, syscall.SIGCONT) }
	}
	t.Run("killed-then-refusing", func(t *testing.T) { fault(t, "kill", kill, 8*time.Second, false) })
	// Longer than connect_timeout + timeout (5 s + 5 s): a connect to a
	// stopped clamd waits in its listen queue, then in EAGAIN retries.
	t.Run("hung", func(t *testing.T) { fault(t, "hang", hang, 15*time.Second, false) })
	t.Run("killed-on_error-accept", func(t *testing.T) {
		tb.writeConfig("accept", "Virus found: {virus}")
		tb.nb.Process.Signal(syscall.SIGHUP)
		time.Sleep(time.Second)
		defer func() {
			tb.writeConfig("tempfail", "Virus found: {virus}")
			tb.nb.Process.Signal(syscall.SIGHUP)
			time.Sleep(time.Second)
		}()
		fault(t, "accept", kill, 8*time.Second, true)
	})
}

func fault(t *testing.T, name string, start func() func(), length time.Duration, acceptOnError bool) {
	tb.mailbox("alice")
	dsn0 := tb.dsns()
	ctx, cancel := context.WithCancel(context.Background())
	gen := &messages{b: tb, prefix: "fault-" + name, virusEvery: 10}
	resCh := make(chan []result)
	go func() { resCh <- load(ctx, tb.smtpAddr, 20, 1, 0, gen) }()
	time.Sleep(3 * time.Second)
	tF := time.Now()
	recover := start()
	time.Sleep(length)
	tR := time.Now()
	recover()
	time.Sleep(5 * time.Second)
	cancel()
	rs := <-resCh

	var before, during, edge, after []result
	for _, r := range rs {
		switch {
		case r.tEnd.Before(tF):
			before = append(before, r)
		case r.tDot.After(tF.Add(300*time.Millisecond)) && r.tEnd.Before(tR):
			during = append(during, r)
		case r.tDot.After(tR.Add(2 * time.Second)):
			after = append(after, r)
		default:
			edge = append(edge, r)
		}
	}
	t.Logf("before the fault: %d: %s", len(before), tallyString(tally(before)))
	t.Logf("during (%s):      %d: %s", length, len(during), tallyString(tally(during)))
	t.Logf("at its edges:     %d: %s", len(edge), tallyString(tally(edge)))
	t.Logf("after recovery:   %d: %s", len(after), tallyString(tally(after)))
	for _, r := range rs {
		if r.err != nil {
			t.Errorf("message %s: session failed at %s: %v", r.id, r.stage, r.err)
			break
		}
	}
	if len(during) == 0 {
		t.Errorf("no message was answered during the fault")
	}
	for _, r := range during {
		ok := r.stage == "DATA-END" && r.code == 451
		if acceptOnError {
			ok = r.stage == "DATA-END" && r.code == 250
		}
		if !ok {
			t.Errorf("message %s answered during the fault with %d at %s", r.id, r.code, r.stage)
			break
		}
	}
	flowed := 0
	for _, r := range after {
		if r.accepted() {
			flowed++
		}
	}
	if flowed == 0 {
		t.Errorf("no message accepted after clamd came back")
	}
	inWindow := func(r result) bool { return !r.tEnd.Before(tF) && r.tDot.Before(tR.Add(2*time.Second)) }
	checkDelivery(t, rs, dsn0, func(r result, status string) bool {
		if acceptOnError && inWindow(r) && strings.HasPrefix(status, "Not scanned") {
			return true
		}
		return cleanOnly(r, status)
	})
}
