package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"
)

// The serve tests run the real binary: signals, the socket and the exit
// status are what a postmaster's init system sees.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nobounce-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "nobounce")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	return binPath
}

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// endOfMessage sends one small message over a new milter session and
// returns the reply at the final ".".
func endOfMessage(t *testing.T, sock string) string {
	t.Helper()
	c := gomilter.NewClientWithOptions("unix", sock, gomilter.ClientOptions{
		ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		ActionMask: gomilter.OptAddHeader | gomilter.OptChangeHeader,
	})
	s, err := c.Session()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, f := range []func() (*gomilter.Action, error){
		func() (*gomilter.Action, error) { return s.Conn("c.example", gomilter.FamilyInet, 1, "192.0.2.1") },
		func() (*gomilter.Action, error) { return s.Mail("a@remote.test", nil) },
		func() (*gomilter.Action, error) { return s.Rcpt("b@example.test", nil) },
		func() (*gomilter.Action, error) { return s.HeaderField("Subject", "x") },
		s.HeaderEnd,
		func() (*gomilter.Action, error) { return s.BodyChunk([]byte("hello\r\n")) },
	} {
		if _, err := f(); err != nil {
			t.Fatal(err)
		}
	}
	_, act, err := s.End()
	if err != nil {
		t.Fatal(err)
	}
	if act.Code == gomilter.ActReplyCode {
		return act.SMTPText
	}
	return "accept"
}

func TestServeReloadAndStop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := binary(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "milter.sock")
	cfg := filepath.Join(dir, "nobounce.toml")
	// clamd is unreachable: the default policy answers 451.
	write := func(s string) {
		if err := os.WriteFile(cfg, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("[clamd]\naddresses = [\"unix:" + dir + "/no-clamd.sock\"]\n")
	var logs logBuf
	cmd := exec.Command(bin, "serve", "-config", cfg, "--listen", "unix:"+sock)
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFor(t, "the socket", func() bool {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm()&0o002 != 0 {
		t.Errorf("socket mode %v (%v): world-writable by default", fi.Mode(), err)
	}
	if got := endOfMessage(t, sock); !strings.HasPrefix(got, "4.7.1") {
		t.Fatalf("clamd down: reply %q, want 451 4.7.1", got)
	}

	// A broken file is refused and the running configuration stays.
	write("[clamd]\non_error = \"whatever\"\n")
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the failed reload", func() bool { return strings.Contains(logs.String(), "reload failed") })
	if got := endOfMessage(t, sock); !strings.HasPrefix(got, "4.7.1") {
		t.Fatalf("after a bad reload: reply %q, want the old policy's 451 4.7.1", got)
	}

	// A good one takes effect for the next message.
	write("[clamd]\naddresses = [\"unix:" + dir + "/no-clamd.sock\"]\non_error = \"accept\"\n")
	cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the reload", func() bool { return strings.Contains(logs.String(), "msg=reloaded") })
	if got := endOfMessage(t, sock); got != "accept" {
		t.Fatalf("after reload with on_error=accept: reply %q, want accept", got)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("still running 15 s after SIGTERM\n%s", logs.String())
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
	if n := strings.Count(logs.String(), "msg=verdict"); n != 3 {
		t.Errorf("%d verdict lines, want one per message (3):\n%s", n, logs.String())
	}
}

func TestServeMetricsAndHealth(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := binary(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "milter.sock")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := l.Addr().String()
	l.Close()
	cfg := filepath.Join(dir, "nobounce.toml")
	os.WriteFile(cfg, []byte("metrics_listen = \""+httpAddr+"\"\n[clamd]\naddresses = [\"unix:"+dir+"/no-clamd.sock\"]\n"), 0o644)
	var logs logBuf
	cmd := exec.Command(bin, "serve", "-config", cfg, "-listen", "unix:"+sock)
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() }()
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor(t, "the HTTP server", func() bool { code, _ := get("/metrics"); return code == 200 })

	code, body := get("/healthz")
	if code != 503 || !strings.Contains(body, "clamd unix:"+dir+"/no-clamd.sock: down") {
		t.Errorf("/healthz with clamd down: %d %q", code, body)
	}
	if got := endOfMessage(t, sock); !strings.HasPrefix(got, "4.7.1") {
		t.Fatalf("reply %q", got)
	}
	_, body = get("/metrics")
	for _, want := range []string{
		`nobounce_milter_verdicts_total{action="tempfail",reason="scan-error"} 1`,
		`nobounce_scan_errors_total{scanner="clamd"} 1`,
		`nobounce_scan_duration_seconds_count{scanner="clamd"} 1`,
		"# TYPE nobounce_milter_sessions gauge",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}
