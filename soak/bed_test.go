//go:build soak

// Package soak is nobounce's soak and fault suite: real Postfix, real clamd,
// the nobounce binary, thousands of SMTP sessions on loopback. Run it with
// `make soak` (or `make soak-short`, the CI-sized version), which is
// testbed/soak.sh:
//
//	go test -tags soak -count=1 -timeout 60m -v ./soak/
//
// Scale: SOAK_SHORT=1 shrinks every scenario. SOAK_CORPUS names a folder of
// real messages (testbed/corpus.sh); without it the messages are made up.
// The work folder is removed unless a test failed (SOAK_KEEP=1 keeps it).
package soak

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bed is the test bed every scenario shares.
type bed struct {
	repo, root string
	nbBin      string
	benchBin   string
	clamdDir   string
	clamdSock  string
	pfDir      string
	smtpAddr   string
	nbPort     int
	metrics    string
	conf       string // nobounce's config file
	tmp        string // nobounce's TMPDIR: where its spool files go
	nb         *exec.Cmd
	nbDone     chan error
	nbLog      string
	corpus     [][]byte
	short      bool
}

var tb *bed

func TestMain(m *testing.M) {
	var err error
	tb, err = setup()
	code := 1
	if err != nil {
		fmt.Fprintf(os.Stderr, "soak: setting up: %v\n", err)
	} else {
		code = m.Run()
	}
	if tb != nil {
		tb.teardown(code != 0 || err != nil)
	}
	os.Exit(code)
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func run(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func setup() (*bed, error) {
	repo, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "nobounce-soak.")
	if err != nil {
		return nil, err
	}
	os.Chmod(root, 0o755) // Postfix's users reach the folders inside
	b := &bed{repo: repo, root: root, short: os.Getenv("SOAK_SHORT") != ""}
	b.nbBin = filepath.Join(root, "nobounce")
	b.benchBin = filepath.Join(root, "nobounce-bench")
	for bin, pkg := range map[string]string{b.nbBin: "./cmd/nobounce", b.benchBin: "./cmd/nobounce-bench"} {
		cmd := exec.Command("go", "build", "-o", bin, pkg)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	if dir := os.Getenv("SOAK_CORPUS"); dir != "" {
		if b.corpus, err = loadCorpus(dir); err != nil {
			return b, err
		}
	}
	b.clamdDir = filepath.Join(root, "clamd")
	b.clamdSock = filepath.Join(b.clamdDir, "clamd.sock")
	if err := b.clamd("start"); err != nil {
		return b, err
	}
	b.tmp = filepath.Join(root, "nbtmp")
	os.MkdirAll(b.tmp, 0o700)
	b.nbPort = freePort()
	b.metrics = fmt.Sprintf("127.0.0.1:%d", freePort())
	b.conf = filepath.Join(root, "nobounce.toml")
	if err := b.writeConfig("tempfail", "Virus found: {virus}"); err != nil {
		return b, err
	}
	if err := b.startNobounce(); err != nil {
		return b, err
	}
	b.pfDir = filepath.Join(root, "postfix")
	port := freePort()
	b.smtpAddr = fmt.Sprintf("127.0.0.1:%d", port)
	if err := run("bash", filepath.Join(repo, "testbed/postfix.sh"), "start", b.pfDir, strconv.Itoa(port),
		fmt.Sprintf("inet:127.0.0.1:%d", b.nbPort)); err != nil {
		return b, err
	}
	// 200 concurrent SMTP sessions need 200 smtpd processes (default 100).
	etc := filepath.Join(b.pfDir, "etc")
	if err := run("postconf", "-c", etc, "-e", "default_process_limit = 300"); err != nil {
		return b, err
	}
	if err := run("postfix", "-c", etc, "reload"); err != nil {
		return b, err
	}
	time.Sleep(time.Second)
	return b, nil
}

func (b *bed) clamd(cmd string) error {
	return run("bash", filepath.Join(b.repo, "testbed/clamd.sh"), cmd, b.clamdDir)
}

func (b *bed) clamdPID() int {
	raw, _ := os.ReadFile(filepath.Join(b.clamdDir, "clamd.pid"))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
	return pid
}

// writeConfig writes nobounce's configuration: clamd with short timeouts so
// that a hung clamd shows within the run.
func (b *bed) writeConfig(onError, reply string) error {
	conf := fmt.Sprintf(`listen = "inet:127.0.0.1:%d"
max_sessions = 500
drain_timeout = "30s"
metrics_listen = %q
log_level = "info"

[clamd]
addresses = ["unix:%s"]
timeout = "5s"
connect_timeout = "5s"
on_error = %q
reply = %q
`, b.nbPort, b.metrics, b.clamdSock, onError, reply)
	tmp := b.conf + ".new"
	if err := os.WriteFile(tmp, []byte(conf), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, b.conf)
}

func (b *bed) startNobounce() error {
	b.nbLog = filepath.Join(b.root, "nobounce.log")
	logf, err := os.OpenFile(b.nbLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(b.nbBin, "serve", "-config", b.conf)
	cmd.Env = append(os.Environ(), "TMPDIR="+b.tmp)
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	logf.Close()
	b.nb = cmd
	b.nbDone = make(chan error, 1)
	go func() { b.nbDone <- cmd.Wait() }()
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", b.nbPort)); err == nil {
			c.Close()
			return nil
		}
	}
	return fmt.Errorf("nobounce did not listen on %d", b.nbPort)
}

// stopNobounce sends SIGTERM and waits for the exit; it returns how long
// the drain took and the exit error.
func (b *bed) stopNobounce() (time.Duration, error) {
	if b.nb == nil {
		return 0, nil
	}
	t0 := time.Now()
	b.nb.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-b.nbDone:
		b.nb = nil
		return time.Since(t0), err
	case <-time.After(60 * time.Second):
		b.nb.Process.Kill()
		<-b.nbDone
		b.nb = nil
		return time.Since(t0), fmt.Errorf("nobounce did not stop within 60 s of SIGTERM")
	}
}

func (b *bed) teardown(failed bool) {
	if b.nb != nil {
		b.stopNobounce()
	}
	if b.pfDir != "" {
		run("bash", filepath.Join(b.repo, "testbed/postfix.sh"), "stop", b.pfDir)
	}
	if b.clamdDir != "" {
		if pid := b.clamdPID(); pid > 0 {
			syscall.Kill(pid, syscall.SIGCONT)
		}
		b.clamd("stop")
	}
	if failed || os.Getenv("SOAK_KEEP") != "" {
		fmt.Fprintf(os.Stderr, "soak: work folder kept: %s\n", b.root)
		return
	}
	os.RemoveAll(b.root)
}

// --- what nobounce holds -----------------------------------------------------

// holdings is what the nobounce process holds at one moment.
type holdings struct {
	threads, fds, spool, sessions int
}

func (h holdings) String() string {
	return fmt.Sprintf("threads %d, fds %d, spool files %d, sessions %d", h.threads, h.fds, h.spool, h.sessions)
}

func (b *bed) holdings() holdings {
	var h holdings
	pid := b.nb.Process.Pid
	if raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(l, "Threads:"); ok {
				h.threads, _ = strconv.Atoi(strings.TrimSpace(v))
			}
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid)); err == nil {
		h.fds = len(ents)
	}
	filepath.WalkDir(b.tmp, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			h.spool++
		}
		return nil
	})
	h.sessions = int(b.metric("nobounce_milter_sessions"))
	return h
}

// metric reads one unlabelled value from /metrics (-1 when unreadable).
func (b *bed) metric(name string) float64 {
	// No keep-alive: an idle connection would be one more fd of nobounce's.
	c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + b.metrics + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return -1
}

// --- what Postfix did ------------------------------------------------------------

// waitQueue waits until Postfix's queue is empty.
func (b *bed) waitQueue(t *testing.T, limit time.Duration) {
	t.Helper()
	for end := time.Now().Add(limit); ; time.Sleep(200 * time.Millisecond) {
		out, err := exec.Command("bash", filepath.Join(b.repo, "testbed/postfix.sh"), "queue", b.pfDir).Output()
		if err == nil && strings.TrimSpace(string(out)) == "0" {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("Postfix's queue still holds %s messages after %s", strings.TrimSpace(string(out)), limit)
		}
	}
}

// delivered is one message found in a maildir.
type delivered struct {
	id, virusStatus, file string
	fromDaemon            bool
}

// mailbox reads every message delivered to user since the last call
// (messages read are moved out of the way).
func (b *bed) mailbox(user string) []delivered {
	var out []delivered
	base := filepath.Join(b.pfDir, "mail", "example.test", user)
	seen := filepath.Join(b.root, "seen", user)
	os.MkdirAll(seen, 0o755)
	for _, sub := range []string{"new", "cur"} {
		ents, _ := os.ReadDir(filepath.Join(base, sub))
		for _, e := range ents {
			p := filepath.Join(base, sub, e.Name())
			raw, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			d := delivered{file: e.Name()}
			hdr, _, _ := bytes.Cut(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")), []byte("\n\n"))
			for _, l := range strings.Split(string(hdr), "\n") {
				if v, ok := strings.CutPrefix(l, "X-Soak-Id: "); ok {
					d.id = strings.TrimSpace(v)
				}
				if v, ok := strings.CutPrefix(l, "X-Virus-Status: "); ok {
					d.virusStatus = strings.TrimSpace(v)
				}
				if strings.HasPrefix(l, "Return-Path: <>") {
					d.fromDaemon = true // Postfix's own DSN (null sender)
				}
			}
			out = append(out, d)
			os.Rename(p, filepath.Join(seen, e.Name()))
		}
	}
	return out
}

// dsns counts the non-delivery notifications Postfix made (its log) and
// the bounces delivered to any test mailbox.
func (b *bed) dsns() int {
	raw, _ := os.ReadFile(filepath.Join(b.pfDir, "log", "maillog"))
	return bytes.Count(raw, []byte("sender non-delivery notification")) + bytes.Count(raw, []byte("status=bounced"))
}

// --- messages --------------------------------------------------------------------

func loadCorpus(dir string) ([][]byte, error) {
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasSuffix(p, ".txt") {
			files = append(files, p)
		}
		return nil
	})
	if len(files) == 0 {
		return nil, fmt.Errorf("SOAK_CORPUS %s: no .txt messages", dir)
	}
	sort.Strings(files)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
	var out [][]byte
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		raw = bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
		if bytes.HasPrefix(raw, []byte("From ")) {
			_, raw, _ = bytes.Cut(raw, []byte("\n"))
		}
		out = append(out, raw)
	}
	return out, nil
}

func eicar() string {
	return `X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR` + `-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`
}

// msg is one message the suite sends.
type msg struct {
	id    string
	virus bool
	data  []byte // LF line ends; net/smtp writes CRLF and dot-stuffs
}

// messages makes messages; every virusEvery-th carries the EICAR string.
type messages struct {
	b          *bed
	prefix     string
	n          int
	virusEvery int
}

func (g *messages) next() msg {
	g.n++
	id := fmt.Sprintf("%s-%d", g.prefix, g.n)
	var body []byte
	if len(g.b.corpus) > 0 {
		body = g.b.corpus[g.n%len(g.b.corpus)]
	} else {
		body = []byte(fmt.Sprintf("Subject: soak %s\n\n%s\n", id, strings.Repeat("made-up text for the soak suite\n", 128)))
	}
	var w bytes.Buffer
	fmt.Fprintf(&w, "X-Soak-Id: %s\nMessage-ID: <%s@soak.test>\n", id, id)
	w.Write(body)
	m := msg{id: id}
	if g.virusEvery > 0 && g.n%g.virusEvery == 0 {
		if !bytes.HasSuffix(body, []byte("\n")) {
			w.WriteString("\n")
		}
		w.WriteString(eicar() + "\n")
		m.virus = true
	}
	m.data = w.Bytes()
	return m
}

// --- SMTP load ----------------------------------------------------------------

// result is what happened to one message.
type result struct {
	msg
	code  int    // the answer to the final "."; or to an earlier command (stage says which)
	stage string // "DATA-END" for the answer to ".", else MAIL, RCPT, DATA, CONNECT
	err   error  // the session broke without an answer
	tMail time.Time
	tDot  time.Time
	tEnd  time.Time
}

func (r result) accepted() bool { return r.err == nil && r.stage == "DATA-END" && r.code == 250 }

// load sends messages from gen with sessions concurrent SMTP sessions of
// perConn messages each, until count messages were sent (count > 0) or ctx
// ends.
func load(ctx context.Context, addr string, sessions, perConn, count int, gen *messages) []result {
	jobs := make(chan msg)
	go func() {
		defer close(jobs)
		for i := 0; count <= 0 || i < count; i++ {
			m := gen.next()
			select {
			case jobs <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	results := make(chan result, 1024)
	done := make(chan struct{})
	for w := 0; w < sessions; w++ {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				var batch []msg
				for len(batch) < perConn {
					m, ok := <-jobs
					if !ok {
						break
					}
					batch = append(batch, m)
				}
				if len(batch) == 0 {
					return
				}
				for _, r := range session(addr, batch) {
					results <- r
				}
			}
		}()
	}
	go func() {
		for w := 0; w < sessions; w++ {
			<-done
		}
		close(results)
	}()
	var out []result
	for r := range results {
		out = append(out, r)
	}
	return out
}
