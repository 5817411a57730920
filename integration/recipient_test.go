//go:build integration

package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nobounce/nobounce/batv"
)

// The recipient tests run their own programs beside the shared test bed:
// Postfix backends that treat unknown users in each way `nobounce check`
// tells apart (C3 rejects at RCPT, C2 after DATA, a catch-all accepts
// everything), a gateway Postfix relaying to them that accepts every
// recipient of their domains, a dnsmasq for the blocklist, a Sendmail, and
// one nobounce configured for all of it. Everything listens on 127.0.0.1
// and is stopped when TestRecipientFeature ends.

// pfInstance is one Postfix of testbed/backend.sh.
type pfInstance struct {
	dir    string
	port   int
	domain string
}

func (p *pfInstance) mta() *mta { return &mta{name: "postfix", dir: p.dir, smtpPort: p.port} }

// rcptBed is what TestRecipientFeature runs.
type rcptBed struct {
	root            string
	c3, c2, ca, c1  *pfInstance // backends: example.test, c2.test, catchall.test, c1.test
	gw              *pfInstance // the gateway
	sinkPort        int
	dnsPort         int
	nbPort          int
	nbAddr          string
	nbLog           string
	nbConfig        string
	nbCmd           *exec.Cmd
	nbDone          chan error
	verifyFlags     []string
	keys            []batv.Key
	nbConfigDefault string
}

const batvKeys = `keys = ["1=integration secret", "0=older secret"]`

func TestRecipientFeature(t *testing.T) {
	b := startRcptBed(t)
	t.Run("callouts and cache", b.testCallouts)
	t.Run("catch-all backend", b.testCatchAll)
	t.Run("C2 backend falls back to the list", b.testC2)
	t.Run("policy groups", b.testGroups)
	t.Run("gateway DSNs without and with nobounce", b.testGatewayDSNs)
	t.Run("BATV end to end", b.testBATV)
	t.Run("BATV outbound with Sendmail", b.testBATVSendmail)
	t.Run("nobounce check", b.testCheck)
	t.Run("null-sender blocklist", b.testBlocklist)
	if b, err := os.ReadFile(b.nbLog); err == nil && bytes.Contains(b, []byte("panic")) {
		t.Errorf("nobounce's log mentions a panic")
	}
}

func startRcptBed(t *testing.T) *rcptBed {
	t.Helper()
	b := &rcptBed{root: filepath.Join(env.root, "rcpt")}
	if err := os.MkdirAll(b.root, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(b.root, 0o755)
	b.keys = []batv.Key{{Number: 1, Secret: []byte("integration secret")}, {Number: 0, Secret: []byte("older secret")}}
	b.startWatchdog(t)
	b.startDNS(t)

	b.c3 = b.backend(t, "c3", "c3", "example.test")
	b.c2 = b.backend(t, "c2", "c2", "c2.test")
	b.ca = b.backend(t, "catchall", "catchall", "catchall.test")
	b.c1 = b.backend(t, "c1", "c1", "c1.test")

	// The list covers c2.test only: the fallback when its backend turns out
	// to accept any address.
	list := filepath.Join(b.root, "recipients")
	if err := os.WriteFile(list, []byte("# c2.test users\nalice@c2.test\nbob@c2.test\npostmaster@c2.test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b.nbPort = freePort()
	b.nbAddr = fmt.Sprintf("inet:127.0.0.1:%d", b.nbPort)
	b.nbLog = filepath.Join(b.root, "nobounce.log")
	b.nbConfig = filepath.Join(b.root, "nobounce.toml")
	// Short cache lifetimes, so that expiry can be seen.
	b.nbConfigDefault = fmt.Sprintf(`log_level = "debug"
[recipient]
domains = ["example.test", "c2.test", "catchall.test"]
list = %q
helo_name = "gateway.nobounce.test"
timeout = "10s"
positive_ttl = "6s"
negative_ttl = "6s"
groups = ["c2.test=partners"]
[batv]
domains = ["example.test"]
%s
networks = ["127.0.0.0/8"]
`, list, batvKeys)
	// The callout backends come from -verify flags, which replace the
	// file's recipient.verify (here empty).
	b.verifyFlags = []string{
		"-verify", fmt.Sprintf("example.test=inet:127.0.0.1:%d", b.c3.port),
		"-verify", fmt.Sprintf("c2.test=127.0.0.1:%d", b.c2.port),
		"-verify", fmt.Sprintf("catchall.test=inet:%d@127.0.0.1", b.ca.port),
	}
	b.writeConfig(t, "[]", b.dnsServer())
	b.startNobounce(t)

	b.sinkPort = freePort()
	b.gw = &pfInstance{dir: filepath.Join(b.root, "gateway"), port: freePort()}
	b.register(b.gw.dir)
	if err := env.script("backend.sh", "gateway", b.gw.dir, strconv.Itoa(b.gw.port), b.nbAddr, strconv.Itoa(b.sinkPort),
		"example.test="+strconv.Itoa(b.c3.port), "c2.test="+strconv.Itoa(b.c2.port), "catchall.test="+strconv.Itoa(b.ca.port)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("nobounce log (last lines):\n%s", tail(b.nbLog, 30))
			t.Logf("gateway log (last lines):\n%s", tail(filepath.Join(b.gw.dir, "log", "maillog"), 20))
		}
	})
	return b
}

// register adds a folder to what the watchdog stops.
func (b *rcptBed) register(dir string) {
	f, err := os.OpenFile(filepath.Join(b.root, "stop.list"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err == nil {
		fmt.Fprintln(f, dir)
		f.Close()
	}
}

// rcptWatchdog stops every Postfix and Sendmail of stop.list when it gets
// SIGTERM: from the test's cleanup, or from the kernel when the test binary
// dies (Pdeathsig).
const rcptWatchdog = `
root=$1 testbed=$2
cleanup() {
	trap '' TERM INT
	if [[ -f $root/stop.list ]]; then
		while read -r dir; do
			if [[ -f $dir/sendmail.mc ]]; then
				bash "$testbed/sendmail.sh" stop "$dir"
			else
				bash "$testbed/backend.sh" stop "$dir"
			fi
		done <"$root/stop.list"
	fi
	exit 0
}
trap cleanup TERM INT
echo ready
exec 1>&2
while :; do sleep 1 & wait $!; done
`

func (b *rcptBed) startWatchdog(t *testing.T) {
	cmd := exec.Command("bash", "-c", rcptWatchdog, "rcpt-watchdog", b.root, filepath.Join(env.repo, "testbed"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := startLocked(cmd); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(90 * time.Second):
			t.Error("the recipient tests' watchdog did not stop everything within 90 s")
			cmd.Process.Kill()
		}
	})
}

// startDNS runs dnsmasq: 127.0.0.1 is listed in bl.test, nothing is in
// clean.test (NXDOMAIN).
func (b *rcptBed) startDNS(t *testing.T) {
	b.dnsPort = freePort()
	logf, err := os.Create(filepath.Join(b.root, "dnsmasq.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/sbin/dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--pid-file",
		"--port="+strconv.Itoa(b.dnsPort), "--listen-address=127.0.0.1", "--bind-interfaces",
		"--no-resolv", "--no-hosts", "--log-queries", "--log-facility=-",
		"--address=/1.0.0.127.bl.test/127.0.0.2", "--local=/bl.test/", "--local=/clean.test/")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := startLocked(cmd); err != nil {
		t.Fatalf("dnsmasq: %v", err)
	}
	logf.Close()
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	if err := waitFor(10*time.Second, func() bool {
		out, err := exec.Command("dig", "+short", "+time=1", "+tries=1", "-p", strconv.Itoa(b.dnsPort), "@127.0.0.1", "1.0.0.127.bl.test").Output()
		if err != nil { // no dig: the UDP socket being bound will do
			c, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(b.dnsPort))
			if err == nil {
				c.Close()
				return false
			}
			return true
		}
		return strings.TrimSpace(string(out)) == "127.0.0.2"
	}); err != nil {
		t.Fatalf("dnsmasq does not answer:\n%s", tail(filepath.Join(b.root, "dnsmasq.log"), 20))
	}
}

func (b *rcptBed) backend(t *testing.T, name, mode, domain string) *pfInstance {
	t.Helper()
	p := &pfInstance{dir: filepath.Join(b.root, name), port: freePort(), domain: domain}
	b.register(p.dir)
	if err := env.script("backend.sh", "start", p.dir, mode, strconv.Itoa(p.port), domain); err != nil {
		t.Fatal(err)
	}
	return p
}

func (b *rcptBed) dnsServer() string { return "127.0.0.1:" + strconv.Itoa(b.dnsPort) }

// writeConfig writes nobounce's configuration with these blocklist zones
// (a TOML array) and DNS server.
func (b *rcptBed) writeConfig(t *testing.T, zones, server string) {
	t.Helper()
	conf := b.nbConfigDefault + fmt.Sprintf("[blocklist]\nzones = %s\nserver = %q\ntimeout = \"1s\"\n", zones, server)
	if err := os.WriteFile(b.nbConfig, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (b *rcptBed) startNobounce(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(b.nbLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "-config", b.nbConfig, "-listen", b.nbAddr, "-clamd", "unix:" + env.sock}, b.verifyFlags...)
	cmd := exec.Command(env.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := startLocked(cmd); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	b.nbCmd = cmd
	b.nbDone = make(chan error, 1)
	go func() { b.nbDone <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.nbDone:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
	})
	if err := waitFor(15*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", b.nbPort), time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}); err != nil {
		t.Fatalf("nobounce does not listen:\n%s", tail(b.nbLog, 20))
	}
}

// reload rewrites the blocklist part of the configuration and sends
// SIGHUP; it returns once nobounce says it reloaded.
func (b *rcptBed) reload(t *testing.T, zones, server string) {
	t.Helper()
	before := strings.Count(readFile(b.nbLog), "msg=reloaded")
	b.writeConfig(t, zones, server)
	b.nbCmd.Process.Signal(syscall.SIGHUP)
	if err := waitFor(10*time.Second, func() bool { return strings.Count(readFile(b.nbLog), "msg=reloaded") > before }); err != nil {
		t.Fatalf("nobounce did not reload:\n%s", tail(b.nbLog, 10))
	}
}

func readFile(p string) string {
	data, _ := os.ReadFile(p)
	return string(data)
}

// count runs testbed/backend.sh WHAT DIR and returns the number it prints.
func count(t *testing.T, what string, p *pfInstance) int {
	t.Helper()
	out, err := env.scriptOutput("backend.sh", what, p.dir)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(out)
	if err != nil {
		t.Fatalf("backend.sh %s: %q", what, out)
	}
	return n
}

// step is one SMTP command and the reply wanted (the start of it).
type rcptStep struct {
	cmd  string
	want string
}

func runSteps(t *testing.T, c *smtpConn, steps []rcptStep) {
	t.Helper()
	for _, s := range steps {
		code, text := c.cmd(s.cmd)
		if got := fmt.Sprintf("%d %s", code, text); !strings.HasPrefix(got, s.want) {
			t.Errorf("%s: got %q, want %q...", s.cmd, got, s.want)
		}
	}
}

const unknownC3 = "550 5.1.1 <nobody@example.test>: Recipient address rejected: User unknown in virtual mailbox table"

// Callouts to a backend that rejects unknown users at RCPT TO, through the
// gateway: the right answers, each address asked once within the cache
// lifetime (the backend's own log counts the connections), and asked again
// after it.
func (b *rcptBed) testCallouts(t *testing.T) {
	before := count(t, "connections", b.c3)
	c := dialSMTP(t, b.gw.mta())
	runSteps(t, c, []rcptStep{
		{"MAIL FROM:<sender@remote.test>", "250"},
		{"RCPT TO:<alice@example.test>", "250"},
		{"RCPT TO:<nobody@example.test>", unknownC3},
	})
	if n := count(t, "connections", b.c3) - before; n != 2 {
		t.Errorf("backend saw %d callouts, want 2 (alice with the catch-all probe, then nobody)", n)
	}
	start := time.Now()
	runSteps(t, c, []rcptStep{
		{"RCPT TO:<alice@example.test>", "250"},
		{"RCPT TO:<ALICE@example.test>", "250"},
		{"RCPT TO:<nobody@example.test>", unknownC3 + " (previously cached response)"},
		{"RSET", "250"},
	})
	if n := count(t, "connections", b.c3) - before; n != 2 {
		t.Errorf("backend saw %d callouts after the repeats, want still 2 (cached)", n)
	}
	c.quit()
	// After the 6 s lifetime both answers are asked for again.
	time.Sleep(time.Until(start.Add(6500 * time.Millisecond)))
	c = dialSMTP(t, b.gw.mta())
	runSteps(t, c, []rcptStep{
		{"MAIL FROM:<sender@remote.test>", "250"},
		{"RCPT TO:<alice@example.test>", "250"},
		{"RCPT TO:<nobody@example.test>", unknownC3},
		{"RSET", "250"},
	})
	c.quit()
	if n := count(t, "connections", b.c3) - before; n != 4 {
		t.Errorf("backend saw %d callouts after expiry, want 4", n)
	}
	// Every callout greeted with the configured name and a null sender.
	log := readFile(filepath.Join(b.c3.dir, "log", "maillog"))
	if !strings.Contains(log, "helo=<gateway.nobounce.test>") {
		t.Errorf("the backend's log has no callout with helo=<gateway.nobounce.test>")
	}
}

// A backend that accepts any address: the probe finds it out, nobounce
// warns once and accepts (no list covers catchall.test), without asking the
// backend again.
func (b *rcptBed) testCatchAll(t *testing.T) {
	before := count(t, "connections", b.ca)
	c := dialSMTP(t, b.gw.mta())
	runSteps(t, c, []rcptStep{
		{"MAIL FROM:<sender@remote.test>", "250"},
		{"RCPT TO:<nobody@catchall.test>", "250"},
		{"RCPT TO:<somebody@catchall.test>", "250"},
		{"RCPT TO:<alice@catchall.test>", "250"},
		{"RSET", "250"},
	})
	c.quit()
	if n := count(t, "connections", b.ca) - before; n != 1 {
		t.Errorf("catch-all backend saw %d callouts, want 1 (the probe and the first address)", n)
	}
	warns := regexp.MustCompile(`level=WARN .*accepts any address.* domain=catchall.test`).FindAllString(readFile(b.nbLog), -1)
	if len(warns) != 1 {
		t.Errorf("%d catch-all warnings for catchall.test, want 1", len(warns))
	}
}

// A backend that rejects unknown users only after DATA accepts the probe
// at RCPT TO: a catch-all as far as callouts go, so the list decides.
func (b *rcptBed) testC2(t *testing.T) {
	c := dialSMTP(t, b.gw.mta())
	runSteps(t, c, []rcptStep{
		{"MAIL FROM:<sender@remote.test>", "250"},
		{"RCPT TO:<nobody@c2.test>", "550 5.1.1 <nobody@c2.test>: Recipient address rejected: User unknown"},
		{"RCPT TO:<alice@c2.test>", "250"},
		{"RSET", "250"},
	})
	c.quit()
	if !regexp.MustCompile(`accepts any address.* domain=c2.test`).MatchString(readFile(b.nbLog)) {
		t.Errorf("no catch-all warning for c2.test")
	}
}

// One transaction, recipients of two policy groups: the one of another
// group than the first accepted recipient's gets 452 4.5.3, the message
// goes to the others, and the client sends it again on its own.
func (b *rcptBed) testGroups(t *testing.T) {
	tok := token("groups")
	msg := "From: " + sender + "\r\nSubject: " + tok + "\r\n\r\nhello\r\n.\r\n"
	c := dialSMTP(t, b.gw.mta())
	runSteps(t, c, []rcptStep{
		{"MAIL FROM:<" + sender + ">", "250"},
		{"RCPT TO:<alice@example.test>", "250"},
		{"RCPT TO:<alice@c2.test>", "452 4.5.3 <alice@c2.test>: Too many recipients: this one has another delivery policy, send it in a separate transaction"},
		{"RCPT TO:<bob@example.test>", "250"},
		{"DATA", "354"},
	})
	c.c.Write([]byte(msg))
	if code, text := c.reply(); code != 250 {
		t.Fatalf("end of DATA: %d %s", code, text)
	}
	// The retry, as a client does it after 452.
	runSteps(t, c, []rcptStep{
		{"MAIL FROM:<" + sender + ">", "250"},
		{"RCPT TO:<alice@c2.test>", "250"},
		{"DATA", "354"},
	})
	c.c.Write([]byte(msg))
	if code, text := c.reply(); code != 250 {
		t.Fatalf("end of DATA of the retry: %d %s", code, text)
	}
	c.quit()
	for _, x := range []struct {
		p    *pfInstance
		user string
	}{{b.c3, "alice"}, {b.c3, "bob"}, {b.c2, "alice"}} {
		var n int
		waitFor(20*time.Second, func() bool {
			n = 0
			for _, m := range findDelivered(x.p.mta(), tok, 0) {
				if strings.Contains(m.path, "/"+x.user+"/") {
					n++
				}
			}
			return n > 0
		})
		if n != 1 {
			t.Errorf("%s@%s got the message %d times, want once", x.user, x.p.domain, n)
		}
	}
}

// sinkDSNs lists the gateway sink's messages that are bounces.
func (b *rcptBed) sinkDSNs(t *testing.T) []*storedMsg {
	t.Helper()
	var dsns []*storedMsg
	for _, f := range b.sinkFiles() {
		s, err := readStored(f)
		if err != nil {
			t.Fatal(err)
		}
		if looksLikeDSN(s) != "" {
			dsns = append(dsns, s)
		}
	}
	return dsns
}

func (b *rcptBed) sinkFiles() []string {
	var files []string
	filepath.WalkDir(filepath.Join(b.gw.dir, "sink", "msg"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	return files
}

// The gateway accepts every recipient of example.test. Without nobounce,
// mail for unknown users is accepted, refused by the backend, and bounced
// by the gateway to the (here: innocent) sender. With nobounce, the same
// mail is refused at RCPT TO and nobody bounces anything.
func (b *rcptBed) testGatewayDSNs(t *testing.T) {
	const n = 3
	send := func(tok string) (rcptReply string) {
		c := dialSMTP(t, b.gw.mta())
		defer c.quit()
		c.expect(250, "MAIL FROM:<"+sender+">")
		code, text := c.cmd("RCPT TO:<" + tok + "@example.test>")
		if code != 250 {
			c.cmd("RSET")
			return fmt.Sprintf("%d %s", code, text)
		}
		c.expect(354, "DATA")
		c.c.Write([]byte("From: " + sender + "\r\nTo: " + tok + "@example.test\r\nSubject: " + tok + "\r\n\r\nhello\r\n.\r\n"))
		if code, text := c.reply(); code != 250 {
			t.Fatalf("end of DATA: %d %s", code, text)
		}
		return "250"
	}

	// Baseline: the gateway without nobounce.
	if err := env.script("backend.sh", "milter", b.gw.dir, "none"); err != nil {
		t.Fatal(err)
	}
	gwBefore, sinkBefore := count(t, "dsns", b.gw), len(b.sinkDSNs(t))
	for i := 0; i < n; i++ {
		if r := send(token("nobody")); r != "250" {
			t.Fatalf("without nobounce the gateway answered %q, want 250 (it accepts every recipient)", r)
		}
	}
	var baseline []*storedMsg
	waitFor(30*time.Second, func() bool {
		baseline = b.sinkDSNs(t)[sinkBefore:]
		return len(baseline) >= n
	})
	gwBaseline := count(t, "dsns", b.gw) - gwBefore
	if len(baseline) != n || gwBaseline != n {
		t.Fatalf("baseline: %d DSNs reached the sender, the gateway logged %d; want %d each", len(baseline), gwBaseline, n)
	}
	t.Logf("baseline without nobounce: %d messages for unknown users gave %d DSNs to the sender; the first:\n%s",
		n, len(baseline), dsnExcerpt(baseline[0]))

	// The same with nobounce.
	if err := env.script("backend.sh", "milter", b.gw.dir, b.nbAddr); err != nil {
		t.Fatal(err)
	}
	gwBefore, sinkBefore = count(t, "dsns", b.gw), len(b.sinkDSNs(t))
	c3Before := count(t, "dsns", b.c3)
	for i := 0; i < n; i++ {
		tok := token("nobody")
		r := send(tok)
		if want := "550 5.1.1 <" + tok + "@example.test>: Recipient address rejected: User unknown"; !strings.HasPrefix(r, want) {
			t.Errorf("with nobounce: %q, want %q", r, want)
		}
	}
	time.Sleep(3 * time.Second) // a bounce, if any, would be out by now
	got := len(b.sinkDSNs(t)) - sinkBefore
	gwGot, c3Got := count(t, "dsns", b.gw)-gwBefore, count(t, "dsns", b.c3)-c3Before
	if got != 0 || gwGot != 0 || c3Got != 0 {
		t.Errorf("with nobounce: %d DSNs at the sender, %d logged by the gateway, %d by the backend; want none", got, gwGot, c3Got)
	}
	t.Logf("DSNs for %d messages to unknown users: %d without nobounce, %d with nobounce", n, len(baseline), got)
}

func dsnExcerpt(s *storedMsg) string {
	var lines []string
	for _, h := range s.header {
		l := strings.ToLower(h)
		if strings.HasPrefix(l, "x-mail-args") || strings.HasPrefix(l, "x-rcpt-args") || strings.HasPrefix(l, "from:") ||
			strings.HasPrefix(l, "subject:") || strings.HasPrefix(l, "content-type:") {
			lines = append(lines, "  "+strings.ReplaceAll(h, "\n", " "))
		}
	}
	for _, l := range strings.Split(string(s.body), "\n") {
		if strings.HasPrefix(l, "Final-Recipient:") || strings.HasPrefix(l, "Status:") || strings.HasPrefix(l, "Diagnostic-Code:") {
			lines = append(lines, "  "+l)
		}
	}
	return strings.Join(lines, "\n")
}

// sinkMessage waits for the gateway's sink to hold a message with tok.
func (b *rcptBed) sinkMessage(t *testing.T, dir, tok string) *storedMsg {
	t.Helper()
	var found *storedMsg
	waitFor(20*time.Second, func() bool {
		var files []string
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files = append(files, p)
			}
			return nil
		})
		for _, f := range files {
			if data, err := os.ReadFile(f); err == nil && bytes.Contains(data, []byte(tok)) {
				found, _ = readStored(f)
				return found != nil
			}
		}
		return false
	})
	if found == nil {
		t.Fatalf("no message with %s reached the sink", tok)
	}
	return found
}

// mailArgsAddr is the address of smtp-sink's X-Mail-Args header.
func mailArgsAddr(t *testing.T, s *storedMsg) string {
	t.Helper()
	v := s.values("X-Mail-Args")
	if len(v) != 1 || !strings.HasPrefix(v[0], "<") || !strings.Contains(v[0], ">") {
		t.Fatalf("X-Mail-Args %q", v)
	}
	return v[0][1:strings.IndexByte(v[0], '>')]
}

// BATV end to end: mail from our user leaves with a signed return path; a
// bounce to it reaches the user, unsigned again; a bounce to the plain or an
// expired address is refused at RCPT TO. Nothing bounces.
func (b *rcptBed) testBATV(t *testing.T) {
	signer, err := batv.New(b.keys, 7)
	if err != nil {
		t.Fatal(err)
	}
	// Outbound, from a client in batv.networks.
	tok := token("outbound")
	c := dialSMTP(t, b.gw.mta())
	reply := c.send("alice@example.test", "bob@remote.test",
		[]byte("From: alice@example.test\r\nTo: bob@remote.test\r\nSubject: "+tok+"\r\n\r\nhello\r\n"))
	c.quit()
	if !strings.HasPrefix(reply, "250") {
		t.Fatalf("outbound: %q", reply)
	}
	out := b.sinkMessage(t, filepath.Join(b.gw.dir, "sink", "msg"), tok)
	signed := mailArgsAddr(t, out)
	plain, err := signer.Verify(signed, time.Now())
	if err != nil || plain != "alice@example.test" || !strings.HasPrefix(signed, "prvs=1") {
		t.Fatalf("the return path reached the sink as %q: verify %q, %v", signed, plain, err)
	}
	t.Logf("outbound return path signed by Postfix + nobounce: %s", signed)

	// The bounce to it is delivered to alice, to her plain address.
	tok = token("signed-bounce")
	c = dialSMTP(t, b.gw.mta())
	reply = c.send("", signed, []byte("From: MAILER-DAEMON@remote.test\r\nTo: "+signed+"\r\nSubject: "+tok+
		"\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"))
	c.quit()
	if !strings.HasPrefix(reply, "250") {
		t.Fatalf("signed bounce: %q", reply)
	}
	got := findDelivered(b.c3.mta(), tok, 20*time.Second)
	if len(got) != 1 || !strings.Contains(got[0].path, "/example.test/alice/") {
		t.Fatalf("the signed bounce was delivered %d times (%v), want once to alice", len(got), got)
	}
	if v := got[0].values("X-Original-To"); len(v) == 1 && strings.Contains(v[0], "prvs=") {
		t.Errorf("the backend got the signed recipient: X-Original-To %q", v)
	}

	// Unsigned and expired bounces are refused at RCPT TO.
	expired := signer.Sign("alice@example.test", time.Now().AddDate(0, 0, -9))
	c = dialSMTP(t, b.gw.mta())
	runSteps(t, c, []rcptStep{
		{"MAIL FROM:<>", "250"},
		{"RCPT TO:<alice@example.test>", "550 5.7.1 <alice@example.test>: This address never sent the message you are bouncing"},
		{"RCPT TO:<" + expired + ">", "550 5.7.1 <" + expired + ">: This address never sent the message you are answering: its BATV signature has expired"},
		{"RCPT TO:<prvs=1000abcdef=alice@example.test>", "550 5.7.1"},
		{"RCPT TO:<postmaster@example.test>", "250"}, // exempt
		{"RSET", "250"},
	})
	c.quit()
	time.Sleep(2 * time.Second)
	for _, m := range findDelivered(b.c3.mta(), "Undelivered", 0) {
		t.Errorf("a bounce was delivered: %s", m.path)
	}
}

// ChangeFrom with Sendmail: the same nobounce signs the return path of mail
// relayed by a Sendmail.
func (b *rcptBed) testBATVSendmail(t *testing.T) {
	sm := &mta{name: "sendmail", dir: filepath.Join(b.root, "sendmail"), smtpPort: freePort(), sinkPort: freePort()}
	b.register(sm.dir)
	if err := env.script("sendmail.sh", "start", sm.dir, strconv.Itoa(sm.smtpPort), fmt.Sprintf("inet:%d@127.0.0.1", b.nbPort), strconv.Itoa(sm.sinkPort)); err != nil {
		t.Fatal(err)
	}
	defer env.script("sendmail.sh", "stop", sm.dir)
	tok := token("sendmail-outbound")
	c := dialSMTP(t, sm)
	reply := c.send("alice@example.test", "bob@remote.test",
		[]byte("From: alice@example.test\r\nTo: bob@remote.test\r\nSubject: "+tok+"\r\n\r\nhello\r\n"))
	c.quit()
	if !strings.HasPrefix(reply, "250") {
		t.Fatalf("Sendmail answered %q", reply)
	}
	out := b.sinkMessage(t, filepath.Join(sm.dir, "sink", "msg"), tok)
	signed := mailArgsAddr(t, out)
	signer, _ := batv.New(b.keys, 7)
	if plain, err := signer.Verify(signed, time.Now()); err != nil || plain != "alice@example.test" {
		t.Fatalf("Sendmail relayed with the return path %q: %q, %v", signed, plain, err)
	}
	t.Logf("outbound return path signed by Sendmail + nobounce: %s", signed)
	// And Sendmail refuses an unsigned bounce at RCPT TO with our reply
	// (after its own "<address>... ").
	c = dialSMTP(t, sm)
	c.expect(250, "MAIL FROM:<>")
	code, text := c.cmd("RCPT TO:<alice@example.test>")
	if code != 550 || !strings.HasPrefix(text, "5.7.1 ") || !strings.Contains(text, "This address never sent the message you are bouncing") {
		t.Errorf("Sendmail answered the unsigned bounce %d %s", code, text)
	}
	c.quit()
}

// checkRun runs `nobounce check` and returns its exit status and output.
func checkRun(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(env.bin, append([]string{"check"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

// `nobounce check` classifies each backend, and the gateway with and
// without nobounce.
func (b *rcptBed) testCheck(t *testing.T) {
	addr := func(p *pfInstance) string { return "127.0.0.1:" + strconv.Itoa(p.port) }
	tests := []struct {
		name   string
		args   []string
		class  string
		status int
	}{
		{"C3 backend", []string{"--domain", "example.test", addr(b.c3)}, "C3", 0},
		{"C3 backend, --data", []string{"--data", "--domain", "example.test", addr(b.c3)}, "C3", 0},
		{"C2 backend", []string{"--data", "--domain", "c2.test", addr(b.c2)}, "C2", 2},
		{"C2 backend without --data", []string{"--domain", "c2.test", addr(b.c2)}, "C1", 1},
		{"C1 backend (bounces later)", []string{"--data", "--domain", "c1.test", addr(b.c1)}, "C1", 1},
		{"catch-all backend", []string{"--data", "--domain", "catchall.test", addr(b.ca)}, "C1", 1},
		{"gateway with nobounce (list)", []string{"--data", "--domain", "c2.test", addr(b.gw)}, "C3", 0},
		{"gateway with nobounce (callout)", []string{"--domain", "example.test", addr(b.gw)}, "C3", 0},
		{"wrong domain", []string{"--domain", "elsewhere.test", addr(b.c3)}, "could not tell", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := checkRun(t, tt.args...)
			if code != tt.status || !strings.Contains(out, "class:      "+tt.class+":") {
				t.Errorf("exit %d, want %d with class %s:\n%s", code, tt.status, tt.class, out)
			}
		})
	}
	// The gateway without nobounce accepts unknown users and bounces them.
	if err := env.script("backend.sh", "milter", b.gw.dir, "none"); err != nil {
		t.Fatal(err)
	}
	code, out := checkRun(t, "--json", "--data", "--domain", "example.test", addr(b.gw))
	if err := env.script("backend.sh", "milter", b.gw.dir, b.nbAddr); err != nil {
		t.Fatal(err)
	}
	var r struct {
		Class      string   `json:"class"`
		ProbeRcpt  string   `json:"probe_rcpt"`
		ProbeData  string   `json:"probe_data"`
		Transcript []string `json:"transcript"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if code != 1 || r.Class != "C1" || !strings.HasPrefix(r.ProbeRcpt, "250") || !strings.HasPrefix(r.ProbeData, "250") {
		t.Errorf("gateway without nobounce: exit %d, %+v", code, r)
	}
	code, out = checkRun(t, "--domain", "c2.test", addr(b.gw))
	t.Logf("nobounce check of the gateway with nobounce (exit %d):\n%s", code, out)
}

// Bounces from a client listed in a blocklist are refused at MAIL FROM; an
// unlisted client and a DNS server that does not answer let them through.
// Each configuration comes with a SIGHUP reload.
func (b *rcptBed) testBlocklist(t *testing.T) {
	// A UDP port that takes queries and never answers.
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	defer b.reload(t, "[]", b.dnsServer())
	tests := []struct {
		name   string
		zones  string
		server string
		steps  []rcptStep
	}{
		{"listed", `["bl.test"]`, b.dnsServer(), []rcptStep{
			{"MAIL FROM:<>", "550 5.7.1 Bounces from 127.0.0.1 are refused: it is listed in bl.test"},
			{"MAIL FROM:<sender@remote.test>", "250"}, // not a bounce: not looked up
			{"RSET", "250"},
		}},
		{"unlisted", `["clean.test"]`, b.dnsServer(), []rcptStep{
			{"MAIL FROM:<>", "250"},
			{"RCPT TO:<postmaster@example.test>", "250"},
			{"RSET", "250"},
		}},
		{"DNS down", `["bl.test"]`, silent.LocalAddr().String(), []rcptStep{
			{"MAIL FROM:<>", "250"},
			{"RSET", "250"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b.reload(t, tt.zones, tt.server)
			c := dialSMTP(t, b.gw.mta())
			defer c.quit()
			start := time.Now()
			runSteps(t, c, tt.steps)
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v with a 1s blocklist timeout", d)
			}
		})
	}
	if !strings.Contains(readFile(b.nbLog), "blocklist lookup failed: letting the bounce through") {
		t.Errorf("no warning about the failed lookup in nobounce's log")
	}
	if !strings.Contains(readFile(filepath.Join(b.root, "dnsmasq.log")), "1.0.0.127.bl.test") {
		t.Errorf("dnsmasq never saw the query for 1.0.0.127.bl.test")
	}
}
