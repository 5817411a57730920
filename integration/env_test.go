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
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// env is the test bed shared by every test: one clamd, one nobounce, and
// one instance of each MTA pointing at that nobounce.
var env *testbed

type testbed struct {
	repo    string // repository root
	root    string // work folder for this run
	bin     string // the nobounce binary built for this run
	clamd   string // clamd.sh's folder
	sock    string // clamd's socket
	nbAddr  string // nobounce's milter socket, Postfix notation
	nbPort  int
	nbLog   string
	nbCmd   *exec.Cmd
	nbDone  chan error // nobounce's exit
	watch   *exec.Cmd  // stops everything if the test binary dies
	mtas    []*mta
	failed  bool
	stopped bool
}

// mta is one running MTA of the test bed.
type mta struct {
	name     string // "postfix" or "sendmail"
	dir      string
	smtpPort int
	sinkPort int // Sendmail's relay target; 0 for Postfix
}

func (m *mta) addr() string { return "127.0.0.1:" + strconv.Itoa(m.smtpPort) }

func TestMain(m *testing.M) {
	code := run(m)
	os.Exit(code)
}

func run(m *testing.M) int {
	start := time.Now()
	var err error
	env, err = setup()
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: setting up the test bed: %v\n", err)
		if env != nil {
			env.failed = true
			env.teardown()
		}
		return 1
	}
	fmt.Fprintf(os.Stderr, "integration: test bed up in %s (work folder %s)\n",
		time.Since(start).Round(time.Millisecond), env.root)
	code := m.Run()
	if code != 0 {
		env.failed = true
	}
	env.teardown()
	return code
}

func setup() (*testbed, error) {
	repo, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("the test bed needs root: Postfix, Sendmail and their delivery users")
	}
	for _, p := range []string{"/usr/sbin/clamd", "/usr/sbin/postfix", "/usr/bin/swaks", "/usr/bin/m4"} {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%s is missing: run `bash testbed/install.sh` first", p)
		}
	}
	// Under /tmp and searchable by all: Postfix's daemons, the virtual
	// delivery agent and smtp-sink run as other users and must reach it.
	root, err := os.MkdirTemp("/tmp", "nobounce-it-")
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(root, 0o755); err != nil {
		return nil, err
	}
	tb := &testbed{repo: repo, root: root}
	tb.bin = filepath.Join(root, "bin", "nobounce")
	tb.clamd = filepath.Join(root, "clamd")
	tb.sock = filepath.Join(tb.clamd, "clamd.sock")
	tb.nbLog = filepath.Join(root, "nobounce.log")

	build := exec.Command("go", "build", "-o", tb.bin, "./cmd/nobounce")
	build.Dir = repo
	if out, err := build.CombinedOutput(); err != nil {
		return tb, fmt.Errorf("go build ./cmd/nobounce: %v\n%s", err, out)
	}
	if err := tb.startWatchdog(); err != nil {
		return tb, err
	}
	if err := tb.script("clamd.sh", "start", tb.clamd); err != nil {
		return tb, err
	}
	if err := tb.startNobounce(); err != nil {
		return tb, err
	}
	pf := &mta{name: "postfix", dir: filepath.Join(root, "postfix"), smtpPort: freePort()}
	if err := tb.script("postfix.sh", "start", pf.dir, strconv.Itoa(pf.smtpPort), tb.nbAddr); err != nil {
		return tb, err
	}
	tb.mtas = append(tb.mtas, pf)
	sm := &mta{name: "sendmail", dir: filepath.Join(root, "sendmail"), smtpPort: freePort(), sinkPort: freePort()}
	// Sendmail writes inet sockets PORT@HOST.
	smMilter := fmt.Sprintf("inet:%d@127.0.0.1", tb.nbPort)
	if err := tb.script("sendmail.sh", "start", sm.dir, strconv.Itoa(sm.smtpPort), smMilter, strconv.Itoa(sm.sinkPort)); err != nil {
		return tb, err
	}
	tb.mtas = append(tb.mtas, sm)
	return tb, nil
}

// startNobounce runs `nobounce serve` with the example configuration, the
// listen socket and clamd given by flags, and waits until it listens.
func (tb *testbed) startNobounce() error {
	tb.nbPort = freePort()
	tb.nbAddr = fmt.Sprintf("inet:127.0.0.1:%d", tb.nbPort)
	logf, err := os.OpenFile(tb.nbLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(tb.bin, "serve",
		"-config", filepath.Join(tb.repo, "examples", "nobounce.toml"),
		"-listen", tb.nbAddr,
		"-clamd", "unix:"+tb.sock)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := startLocked(cmd); err != nil {
		return fmt.Errorf("start nobounce: %v", err)
	}
	tb.nbCmd = cmd
	tb.nbDone = make(chan error, 1)
	go func() { tb.nbDone <- cmd.Wait() }()
	if err := os.WriteFile(filepath.Join(tb.root, "nobounce.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		return err
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case err := <-tb.nbDone:
			tb.nbCmd = nil
			return fmt.Errorf("nobounce exited at start (%v):\n%s", err, tail(tb.nbLog, 20))
		default:
		}
		if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", tb.nbPort), time.Second); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nobounce does not listen on %s after 15 s:\n%s", tb.nbAddr, tail(tb.nbLog, 20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// nobounceRunning reports whether nobounce is still up (it must not die
// during the run).
func (tb *testbed) nobounceRunning() bool {
	select {
	case err := <-tb.nbDone:
		tb.nbDone <- err
		return false
	default:
		return true
	}
}

// watchdogScript stops every program of the test bed when it gets SIGTERM:
// from teardown at the end of a run, or from the kernel (Pdeathsig) when the
// test binary dies without a teardown (go test -timeout, a crash, a kill).
const watchdogScript = `
root=$1 testbed=$2
cleanup() {
	trap '' TERM INT
	if [[ -s $root/nobounce.pid ]]; then
		pid=$(cat "$root/nobounce.pid")
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null
	fi
	[[ -d $root/sendmail ]] && bash "$testbed/sendmail.sh" stop "$root/sendmail"
	[[ -d $root/postfix ]] && bash "$testbed/postfix.sh" stop "$root/postfix"
	[[ -d $root/clamd ]] && bash "$testbed/clamd.sh" stop "$root/clamd"
	exit 0
}
trap cleanup TERM INT
echo ready
exec 1>&2
while :; do sleep 1 & wait $!; done
`

func (tb *testbed) startWatchdog() error {
	cmd := exec.Command("bash", "-c", watchdogScript, "watchdog", tb.root, filepath.Join(tb.repo, "testbed"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = os.Stderr
	if err := startLocked(cmd); err != nil {
		return fmt.Errorf("start watchdog: %v", err)
	}
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil {
		return fmt.Errorf("watchdog did not start: %v", err)
	}
	tb.watch = cmd
	return nil
}

// teardown stops everything, then removes the work folder unless a test
// failed or NOBOUNCE_KEEP is set.
func (tb *testbed) teardown() {
	if tb.stopped {
		return
	}
	tb.stopped = true
	runExtraTeardowns()
	if tb.watch != nil {
		tb.watch.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- tb.watch.Wait() }()
		select {
		case <-done:
		case <-time.After(90 * time.Second):
			fmt.Fprintln(os.Stderr, "integration: the watchdog did not stop everything within 90 s")
			tb.watch.Process.Kill()
			tb.failed = true
		}
	}
	if tb.nbCmd != nil {
		select {
		case err := <-tb.nbDone:
			if err != nil {
				fmt.Fprintf(os.Stderr, "integration: nobounce exited with %v after SIGTERM\n", err)
			}
		case <-time.After(5 * time.Second):
			tb.nbCmd.Process.Kill()
		}
	}
	if tb.failed || os.Getenv("NOBOUNCE_KEEP") != "" {
		fmt.Fprintf(os.Stderr, "integration: work folder kept: %s (nobounce log: %s)\n", tb.root, tb.nbLog)
		return
	}
	os.RemoveAll(tb.root)
}

// script runs testbed/NAME with ARGS and returns its output in the error.
func (tb *testbed) script(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(tb.repo, "testbed", name)}, args...)...)
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("testbed/%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// scriptOutput is script returning the output.
func (tb *testbed) scriptOutput(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append([]string{filepath.Join(tb.repo, "testbed", name)}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("testbed/%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// that it has not returned before.
func freePort() int {
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if !portsGiven[port] {
			portsGiven[port] = true
			return port
		}
	}
}

var portsGiven = map[int]bool{}

// Pdeathsig is delivered when the thread that started the child exits, so
// children are started from one goroutine locked to a thread that never
// exits.
var (
	starts  = make(chan *exec.Cmd)
	started = make(chan error)
)

func init() {
	go func() {
		runtime.LockOSThread()
		for cmd := range starts {
			started <- cmd.Start()
		}
	}()
}

func startLocked(cmd *exec.Cmd) error {
	starts <- cmd
	return <-started
}

// tail returns the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logsOnFailure adds the tails of the logs to a failed test's output.
func logsOnFailure(t *testing.T, m *mta) {
	t.Helper()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		t.Logf("nobounce log (last lines):\n%s", tail(env.nbLog, 15))
		if m != nil && m.name == "postfix" {
			t.Logf("postfix log (last lines):\n%s", tail(filepath.Join(m.dir, "log", "maillog"), 15))
		}
	})
}

var errTimeout = errors.New("timed out")

// waitFor polls cond every 100 ms until it returns true or d has passed.
func waitFor(d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return nil
		}
		if time.Now().After(deadline) {
			return errTimeout
		}
		time.Sleep(100 * time.Millisecond)
	}
}
