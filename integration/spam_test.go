//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The spam tests run beside the shared test bed: a private spamd and
// rspamd (testbed/spamd.sh, testbed/rspamd.sh), nobounce instances of
// their own (a config file per backend) and, for the MTA tests, a Postfix
// and a Sendmail of their own pointing at one of those. A watchdog stops
// the daemons if the test binary dies; teardown stops them otherwise.

// spamServers is the running spamd and rspamd.
type spamServers struct {
	dir        string
	spamdDir   string
	rspamdDir  string
	spamdPort  int
	rspamdPort int
	watch      *exec.Cmd
}

func (s *spamServers) spamdAddr() string { return fmt.Sprintf("inet:127.0.0.1:%d", s.spamdPort) }
func (s *spamServers) rspamdURL() string { return fmt.Sprintf("http://127.0.0.1:%d", s.rspamdPort) }

var (
	spamOnce sync.Once
	spamBed  *spamServers
	spamErr  error
)

// spamWatchdog stops the spam test bed's daemons on SIGTERM, from
// teardown or from the kernel when the test binary dies (Pdeathsig).
const spamWatchdog = `
dir=$1 testbed=$2
cleanup() {
	trap '' TERM INT
	[[ -d $dir/sendmail ]] && bash "$testbed/sendmail.sh" stop "$dir/sendmail"
	[[ -d $dir/postfix ]] && bash "$testbed/postfix.sh" stop "$dir/postfix"
	[[ -d $dir/spamd ]] && bash "$testbed/spamd.sh" stop "$dir/spamd"
	[[ -d $dir/rspamd ]] && bash "$testbed/rspamd.sh" stop "$dir/rspamd"
	exit 0
}
trap cleanup TERM INT
echo ready
exec 1>&2
while :; do sleep 1 & wait $!; done
`

// spam returns the spam test bed, starting it on first use.
func spam(t *testing.T) *spamServers {
	t.Helper()
	spamOnce.Do(func() { spamBed, spamErr = startSpamServers() })
	if spamErr != nil {
		t.Fatalf("spam test bed: %v", spamErr)
	}
	return spamBed
}

func startSpamServers() (*spamServers, error) {
	for _, p := range []string{"/usr/sbin/spamd", "/usr/bin/spamc", "/usr/bin/rspamd", "/usr/bin/rspamc"} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%s is missing: run `bash testbed/install.sh` first", p)
		}
	}
	s := &spamServers{dir: filepath.Join(env.root, "spam")}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, err
	}
	s.spamdDir, s.rspamdDir = filepath.Join(s.dir, "spamd"), filepath.Join(s.dir, "rspamd")
	s.spamdPort, s.rspamdPort = freePort(), freePort()

	cmd := exec.Command("bash", "-c", spamWatchdog, "watchdog", s.dir, filepath.Join(env.repo, "testbed"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := startLocked(cmd); err != nil {
		return nil, fmt.Errorf("start the spam watchdog: %v", err)
	}
	if _, err := out.Read(make([]byte, 6)); err != nil {
		return nil, fmt.Errorf("the spam watchdog did not start: %v", err)
	}
	s.watch = cmd
	onTeardown(s.stop)

	// Both at once: rspamd takes about 15 s to compile its rules, spamd 6 s.
	errs := make(chan error, 2)
	go func() { errs <- env.script("spamd.sh", "start", s.spamdDir, strconv.Itoa(s.spamdPort)) }()
	go func() { errs <- env.script("rspamd.sh", "start", s.rspamdDir, strconv.Itoa(s.rspamdPort)) }()
	return s, errors.Join(<-errs, <-errs)
}

// stop stops every daemon of the spam test bed through its watchdog.
func (s *spamServers) stop() {
	if s.watch == nil {
		return
	}
	s.watch.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- s.watch.Wait() }()
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		fmt.Fprintln(os.Stderr, "integration: the spam watchdog did not stop everything within 90 s")
		s.watch.Process.Kill()
	}
	s.watch = nil
}

// nobounceProc is one nobounce of the spam tests.
type nobounceProc struct {
	name string
	port int
	cfg  string
	log  string
	cmd  *exec.Cmd
	done chan error
}

func (n *nobounceProc) addr() string { return fmt.Sprintf("inet:127.0.0.1:%d", n.port) }

// startNobounce runs `nobounce serve` with the given configuration (TOML,
// without listen) on port (0: a free one) and waits until it listens. It
// is stopped when t ends.
func startNobounce(t *testing.T, name string, port int, config string) *nobounceProc {
	t.Helper()
	if port == 0 {
		port = freePort()
	}
	dir := filepath.Join(env.root, "spam")
	os.MkdirAll(dir, 0o755)
	n := &nobounceProc{name: name, port: port,
		cfg: filepath.Join(dir, name+".toml"), log: filepath.Join(dir, name+".log")}
	if err := os.WriteFile(n.cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	n.cmd = exec.Command(env.bin, "serve", "-config", n.cfg, "-listen", n.addr())
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := startLocked(n.cmd); err != nil {
		t.Fatalf("start nobounce %s: %v", name, err)
	}
	n.done = make(chan error, 1)
	go func() { n.done <- n.cmd.Wait() }()
	t.Cleanup(n.stop)
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-n.done:
			n.done <- err
			t.Fatalf("nobounce %s exited at start (%v):\n%s", name, err, tail(n.log, 20))
		default:
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			c.Close()
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("nobounce %s does not listen on %s after 15 s:\n%s", name, n.addr(), tail(n.log, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *nobounceProc) stop() {
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(10 * time.Second):
		n.cmd.Process.Kill()
		<-n.done
	}
	n.cmd = nil
}

// backendConfig is a nobounce configuration that asks one spam backend
// ("spamd" or "rspamd") besides the shared clamd, with extra lines for its
// table.
func backendConfig(s *spamServers, backend string, extra ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[clamd]\naddresses = [%q]\n\n", "unix:"+env.sock)
	switch backend {
	case "spamd":
		fmt.Fprintf(&b, "[spamd]\naddresses = [%q]\n", s.spamdAddr())
	case "rspamd":
		fmt.Fprintf(&b, "[rspamd]\nurls = [%q]\n", s.rspamdURL())
	default:
		panic("unknown backend " + backend)
	}
	for _, l := range extra {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// spamMTAs is the Postfix and Sendmail of the spam tests, pointing at one
// nobounce port (restarted with another configuration per backend).
type spamMTAs struct {
	nbPort int
	mtas   []*mta

	mu       sync.Mutex
	accepted map[*mta][]string
	refused  map[*mta][]string
}

var (
	spamMTAOnce sync.Once
	spamMTA     *spamMTAs
	spamMTAErr  error
)

func spamMTABed(t *testing.T) *spamMTAs {
	t.Helper()
	s := spam(t)
	spamMTAOnce.Do(func() {
		b := &spamMTAs{nbPort: freePort(), accepted: map[*mta][]string{}, refused: map[*mta][]string{}}
		pf := &mta{name: "postfix", dir: filepath.Join(s.dir, "postfix"), smtpPort: freePort()}
		if err := env.script("postfix.sh", "start", pf.dir, strconv.Itoa(pf.smtpPort), fmt.Sprintf("inet:127.0.0.1:%d", b.nbPort)); err != nil {
			spamMTAErr = err
			return
		}
		b.mtas = append(b.mtas, pf)
		sm := &mta{name: "sendmail", dir: filepath.Join(s.dir, "sendmail"), smtpPort: freePort(), sinkPort: freePort()}
		if err := env.script("sendmail.sh", "start", sm.dir, strconv.Itoa(sm.smtpPort), fmt.Sprintf("inet:%d@127.0.0.1", b.nbPort), strconv.Itoa(sm.sinkPort)); err != nil {
			spamMTAErr = err
			return
		}
		b.mtas = append(b.mtas, sm)
		spamMTA = b
	})
	if spamMTAErr != nil {
		t.Fatalf("spam MTAs: %v", spamMTAErr)
	}
	return spamMTA
}

func (b *spamMTAs) record(m *mta, tok string, accepted bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if accepted {
		b.accepted[m] = append(b.accepted[m], tok)
	} else {
		b.refused[m] = append(b.refused[m], tok)
	}
}

// gtube is SpamAssassin's test string (rspamd knows it too), in two
// halves so that this file is no test message itself.
var gtube = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST" + "-EMAIL*C.34X"

// spamHeaderValues returns the values of nobounce's X-Spam-* headers.
func spamHeaderValues(s *storedMsg) map[string][]string {
	out := map[string][]string{}
	for _, h := range []string{"X-Spam-Flag", "X-Spam-Status", "X-Spam-Score", "X-Spam-Level"} {
		if v := s.values(h); len(v) > 0 {
			out[h] = v
		}
	}
	return out
}

// TestSpamThroughMTAs: for each backend, through real Postfix and real
// Sendmail: GTUBE is refused with 550 5.7.1 at the end of DATA; a clean
// message is delivered with X-Spam-Status: No; forged X-Spam-* headers are
// gone; with the backend stopped the client gets 451 4.7.1; nothing
// bounces.
func TestSpamThroughMTAs(t *testing.T) {
	s := spam(t)
	b := spamMTABed(t)
	for _, backend := range []string{"spamd", "rspamd"} {
		t.Run(backend, func(t *testing.T) {
			nb := startNobounce(t, "mta-"+backend, b.nbPort, backendConfig(s, backend))
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("nobounce %s log (last lines):\n%s", backend, tail(nb.log, 20))
				}
			})
			for _, m := range b.mtas {
				t.Run(m.name+"/gtube", func(t *testing.T) {
					tok := token("gtube")
					tr := swaks(t, m, "--header", "Subject: gtube "+tok, "--body", "Hello,\n\n"+gtube+"\n")
					requireCode(t, dataReply(tr), "550 5.7.1", tr)
					b.record(m, tok, false)
				})
				t.Run(m.name+"/ham", func(t *testing.T) {
					tok := token("ham")
					header, msg := cleanMessage(tok)
					c := dialSMTP(t, m)
					reply := c.send(sender, recipient, msg)
					c.quit()
					requireCode(t, reply, "250", c.tr.String())
					b.record(m, tok, true)
					got := findDelivered(m, tok, 20*time.Second)
					if len(got) != 1 {
						t.Fatalf("delivered %d copies, want 1", len(got))
					}
					checkClean(t, got[0], header, msg)
					h := spamHeaderValues(got[0])
					if st := h["X-Spam-Status"]; len(st) != 1 || !strings.HasPrefix(st[0], "No, score=") || !strings.Contains(st[0], "scanner="+backend) {
						t.Errorf("X-Spam-Status = %q, want one \"No, score=... scanner=%s\"", st, backend)
					}
					if f := h["X-Spam-Flag"]; len(f) != 0 {
						t.Errorf("X-Spam-Flag = %q on a clean message", f)
					}
				})
				t.Run(m.name+"/forged", func(t *testing.T) {
					// Forged X-Spam-* fields, two of some, in any case: none
					// may reach the mailbox; only nobounce's own are there.
					// The scanners do see them: rspamd scores an incoming
					// "X-Spam-Flag: YES" (SPAM_FLAG, +5), SpamAssassin ignores
					// it, so the verdict may differ by backend.
					tok := token("forged")
					header, msg := cleanMessage(tok,
						"X-Spam-Flag: YES",
						"X-Spam-Status: Yes, score=99.0 required=5.0 tests=FORGED",
						"x-spam-score: 99.0",
						"X-Spam-Level: ********************",
						"x-spam-flag: yes")
					c := dialSMTP(t, m)
					reply := c.send(sender, recipient, msg)
					c.quit()
					requireCode(t, reply, "250", c.tr.String())
					b.record(m, tok, true)
					got := findDelivered(m, tok, 20*time.Second)
					if len(got) != 1 {
						t.Fatalf("delivered %d copies, want 1", len(got))
					}
					h := spamHeaderValues(got[0])
					st := h["X-Spam-Status"]
					if len(st) != 1 || !strings.Contains(st[0], "scanner="+backend) || strings.Contains(st[0], "FORGED") {
						t.Fatalf("X-Spam-Status = %q, want only nobounce's", st)
					}
					score := spamScoreRE.FindStringSubmatch(st[0])
					yes := strings.HasPrefix(st[0], "Yes,")
					if backend == "spamd" && yes {
						t.Errorf("spamd said spam: %q", st[0])
					}
					if f := h["X-Spam-Flag"]; yes && (len(f) != 1 || f[0] != "YES") || !yes && len(f) != 0 {
						t.Errorf("X-Spam-Flag = %q with X-Spam-Status %q: a forged one is left", f, st[0])
					}
					if sc := h["X-Spam-Score"]; score == nil || len(sc) != 1 || sc[0] != score[1] {
						t.Errorf("X-Spam-Score = %q with X-Spam-Status %q: a forged one is left", sc, st[0])
					}
					if lv := h["X-Spam-Level"]; len(lv) > 1 || len(lv) == 1 && len(lv[0]) == 20 {
						t.Errorf("X-Spam-Level = %q: the forged one is left", lv)
					}
					var kept []string
					for _, l := range header {
						if !strings.HasPrefix(strings.ToLower(l), "x-spam-") {
							kept = append(kept, l)
						}
					}
					checkClean(t, got[0], kept, msg)
					t.Logf("%s: %s", backend, st[0])
					if t.Failed() {
						t.Logf("delivered header:\n%s", strings.Join(got[0].header, "\n"))
					}
				})
			}
			t.Run("down", func(t *testing.T) {
				dir := s.spamdDir
				start := []string{"start", s.spamdDir, strconv.Itoa(s.spamdPort)}
				if backend == "rspamd" {
					dir = s.rspamdDir
					start = []string{"start", s.rspamdDir, strconv.Itoa(s.rspamdPort)}
				}
				if err := env.script(backend+".sh", "stop", dir); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if err := env.script(backend+".sh", start...); err != nil {
						t.Errorf("restarting %s: %v", backend, err)
					}
				})
				for _, m := range b.mtas {
					tok := token("down")
					tr := swaks(t, m, "--header", "Subject: "+backend+" down "+tok)
					requireCode(t, dataReply(tr), "451 4.7.1", tr)
					b.record(m, tok, false)
				}
			})
		})
	}
	t.Run("no bounce", func(t *testing.T) { b.checkNoBounce(t) })
}

// checkNoBounce: the MTAs' queues are empty, every accepted message was
// delivered once, no refused one at all, and nothing looks like a DSN.
func (b *spamMTAs) checkNoBounce(t *testing.T) {
	for _, m := range b.mtas {
		t.Run(m.name, func(t *testing.T) {
			var n string
			err := waitFor(30*time.Second, func() bool {
				var err error
				n, err = env.scriptOutput(m.name+".sh", "queue", m.dir)
				return err == nil && n == "0"
			})
			if err != nil {
				t.Errorf("%s queue not empty after 30 s: %s message(s)", m.name, n)
			}
			b.mu.Lock()
			acc, ref := b.accepted[m], b.refused[m]
			b.mu.Unlock()
			t.Logf("%d messages accepted, %d refused", len(acc), len(ref))
			checkDelivered(t, m, acc, ref)
			files := mailFiles(m)
			for _, f := range files {
				s, err := readStored(f)
				if err != nil {
					t.Error(err)
					continue
				}
				if why := looksLikeDSN(s); why != "" {
					t.Errorf("%s looks like a bounce (%s):\n%s", f, why, strings.Join(s.header, "\n"))
				}
			}
			if len(files) != len(acc) {
				t.Errorf("%s holds %d delivered messages, want the %d accepted ones", m.name, len(files), len(acc))
			}
			if m.name == "postfix" {
				log, err := os.ReadFile(filepath.Join(m.dir, "log", "maillog"))
				if err != nil {
					t.Fatal(err)
				}
				for _, line := range strings.Split(string(log), "\n") {
					if postfixBounceRE.MatchString(line) {
						t.Errorf("postfix log: %s", line)
					}
				}
			}
		})
	}
}

// runCmd runs a command with a time limit and returns its stdout.
func runCmd(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, int, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(string(stdin))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out, ee.ExitCode(), nil
	}
	if err != nil {
		return out, -1, fmt.Errorf("%s: %v: %s", name, err, stderr.String())
	}
	return out, 0, nil
}
