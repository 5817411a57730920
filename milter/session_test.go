package milter

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/verdict"
)

// recScanner is a scanner whose answer the test sets: it records the bytes
// it was fed, and answers Infected when they contain its marker.
type recScanner struct {
	name   string // "" is "rec"
	marker string
	fail   error

	mu   sync.Mutex
	seen []string // one entry per finished message
	open int      // jobs begun and not yet finished or aborted
}

func (r *recScanner) Name() string {
	if r.name == "" {
		return "rec"
	}
	return r.name
}

func (r *recScanner) Begin(ctx context.Context, env *scan.Envelope) scan.Job {
	r.mu.Lock()
	r.open++
	r.mu.Unlock()
	return &recJob{s: r}
}

type recJob struct {
	s    *recScanner
	buf  bytes.Buffer
	done bool
}

func (j *recJob) Write(p []byte) (int, error) { return j.buf.Write(p) }

func (j *recJob) Finish(ctx context.Context) scan.Result {
	j.end()
	j.s.mu.Lock()
	j.s.seen = append(j.s.seen, j.buf.String())
	j.s.mu.Unlock()
	switch {
	case j.s.fail != nil:
		return scan.Result{Scanner: j.s.Name(), Status: scan.Failed, Err: j.s.fail}
	case j.s.marker != "" && strings.Contains(j.buf.String(), j.s.marker):
		return scan.Result{Scanner: j.s.Name(), Status: scan.Infected, Threat: "Test.Virus"}
	}
	return scan.Result{Scanner: j.s.Name(), Status: scan.Clean}
}

func (j *recJob) Abort() { j.end() }

func (j *recJob) end() {
	if j.done {
		return
	}
	j.done = true
	j.s.mu.Lock()
	j.s.open--
	j.s.mu.Unlock()
}

func (r *recScanner) openJobs() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.open
}

// startServer runs a Server on a loopback port and returns a milter client
// that offers what Postfix offers.
func startServer(t *testing.T, o Options, st *Settings) (*Server, *gomilter.Client) {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv := NewServer(o, st)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	})
	c := gomilter.NewClientWithOptions("tcp", ln.Addr().String(), gomilter.ClientOptions{
		ReadTimeout:  5 * time.Second,
		WriteTimeout: 5 * time.Second,
		ActionMask:   gomilter.OptAddHeader | gomilter.OptChangeHeader, // version 2 masks only: go-milter downgrades only then
	})
	return srv, c
}

func settings(sc ...scan.Scanner) *Settings {
	return &Settings{
		Scanners:   sc,
		OnError:    map[string]verdict.OnError{},
		Policy:     verdict.DefaultPolicy(),
		Scan:       scan.Options{MaxSize: 1 << 20},
		EOMTimeout: 5 * time.Second,
	}
}

type msg struct {
	from    string
	rcpts   []string
	headers [][2]string
	body    []string // chunks
}

// send runs one transaction on an open session and returns the end-of-message
// action and the modifications asked for.
func send(t *testing.T, s *gomilter.ClientSession, m msg) (*gomilter.Action, []gomilter.ModifyAction) {
	t.Helper()
	mustContinue(t, "MAIL", func() (*gomilter.Action, error) { return s.Mail(m.from, nil) })
	for _, r := range m.rcpts {
		mustContinue(t, "RCPT", func() (*gomilter.Action, error) { return s.Rcpt(r, nil) })
	}
	for _, h := range m.headers {
		mustContinue(t, "HEADER", func() (*gomilter.Action, error) { return s.HeaderField(h[0], h[1]) })
	}
	mustContinue(t, "EOH", s.HeaderEnd)
	for _, c := range m.body {
		mustContinue(t, "BODY", func() (*gomilter.Action, error) { return s.BodyChunk([]byte(c)) })
	}
	mods, act, err := s.End()
	if err != nil {
		t.Fatalf("EOB: %v", err)
	}
	return act, mods
}

func mustContinue(t *testing.T, stage string, f func() (*gomilter.Action, error)) {
	t.Helper()
	act, err := f()
	if err != nil {
		t.Fatalf("%s: %v", stage, err)
	}
	if act.Code != gomilter.ActContinue {
		t.Fatalf("%s: got action %c %d %q, want continue", stage, act.Code, act.SMTPCode, act.SMTPText)
	}
}

func connect(t *testing.T, c *gomilter.Client) *gomilter.ClientSession {
	t.Helper()
	s, err := c.Session()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	mustContinue(t, "CONNECT", func() (*gomilter.Action, error) {
		return s.Conn("client.example", gomilter.FamilyInet, 4321, "192.0.2.7")
	})
	mustContinue(t, "HELO", func() (*gomilter.Action, error) { return s.Helo("client.example") })
	return s
}

func replyOf(a *gomilter.Action) string {
	switch a.Code {
	case gomilter.ActReplyCode:
		return strings.TrimSpace(strconv.Itoa(a.SMTPCode) + " " + a.SMTPText)
	case gomilter.ActContinue, gomilter.ActAccept:
		return "accept"
	}
	return "action " + string(rune(a.Code))
}

var clean = msg{
	from:    "sender@remote.test",
	rcpts:   []string{"alice@example.test"},
	headers: [][2]string{{"Subject", "hello"}, {"From", "Sender <sender@remote.test>"}},
	body:    []string{"line one\r\n", "line two\r\n"},
}

func TestSessionSeveralMessagesOneConnection(t *testing.T) {
	sc := &recScanner{marker: "VIRUS-MARKER"}
	_, c := startServer(t, Options{}, settings(sc))
	s := connect(t, c)

	virus := clean
	virus.body = []string{"carrying VIRUS-", "MARKER split across chunks\r\n"}

	tests := []struct {
		name string
		m    msg
		want string
	}{
		{"clean", clean, "accept"},
		{"virus", virus, "550 5.7.1 Virus found: Test.Virus"},
		{"clean again", clean, "accept"},
		{"virus again", virus, "550 5.7.1 Virus found: Test.Virus"},
	}
	for _, tt := range tests {
		act, mods := send(t, s, tt.m)
		if got := replyOf(act); got != tt.want {
			t.Errorf("%s: reply %q, want %q", tt.name, got, tt.want)
		}
		if tt.want == "accept" && !hasHeader(mods, "X-Virus-Status", "Clean") {
			t.Errorf("%s: no X-Virus-Status: Clean added; mods %+v", tt.name, mods)
		}
		if tt.want != "accept" && len(mods) != 0 {
			t.Errorf("%s: rejected message got modifications %+v", tt.name, mods)
		}
	}
	wantWire := "Subject: hello\r\nFrom: Sender <sender@remote.test>\r\n\r\nline one\r\nline two\r\n"
	if len(sc.seen) != 4 || sc.seen[0] != wantWire || sc.seen[2] != wantWire {
		t.Errorf("scanner saw %q, want wire form %q", sc.seen, wantWire)
	}
	if n := sc.openJobs(); n != 0 {
		t.Errorf("%d scan jobs left open", n)
	}
}

func hasHeader(mods []gomilter.ModifyAction, name, value string) bool {
	for _, m := range mods {
		if m.Code == gomilter.ActAddHeader && m.HeaderName == name && m.HeaderValue == value {
			return true
		}
	}
	return false
}

func TestSessionAbortAndRset(t *testing.T) {
	sc := &recScanner{marker: "VIRUS-MARKER"}
	_, c := startServer(t, Options{}, settings(sc))
	s := connect(t, c)

	// Abort in the middle of the body: the scan is abandoned...
	mustContinue(t, "MAIL", func() (*gomilter.Action, error) { return s.Mail("a@remote.test", nil) })
	mustContinue(t, "RCPT", func() (*gomilter.Action, error) { return s.Rcpt("alice@example.test", nil) })
	mustContinue(t, "HEADER", func() (*gomilter.Action, error) { return s.HeaderField("Subject", "first") })
	mustContinue(t, "EOH", s.HeaderEnd)
	mustContinue(t, "BODY", func() (*gomilter.Action, error) { return s.BodyChunk([]byte("VIRUS-MARKER half")) })
	if err := s.Abort(); err != nil {
		t.Fatal(err)
	}
	// ...and RSET after the envelope only (an abort before any header).
	mustContinue(t, "MAIL", func() (*gomilter.Action, error) { return s.Mail("b@remote.test", nil) })
	mustContinue(t, "RCPT", func() (*gomilter.Action, error) { return s.Rcpt("bob@example.test", nil) })
	if err := s.Abort(); err != nil {
		t.Fatal(err)
	}
	// The next message is judged on its own bytes only.
	act, _ := send(t, s, clean)
	if got := replyOf(act); got != "accept" {
		t.Fatalf("message after abort: %q, want accept", got)
	}
	if len(sc.seen) != 1 || strings.Contains(sc.seen[0], "first") || strings.Contains(sc.seen[0], "VIRUS") {
		t.Errorf("scanner saw %q: the aborted message leaked into the next", sc.seen)
	}
	if n := sc.openJobs(); n != 0 {
		t.Errorf("%d scan jobs left open after abort", n)
	}
}

func TestSessionRecipientsAllPassed(t *testing.T) {
	// The MTA refused a recipient before asking us about the next ones (no
	// SMFIC_RCPT for it): later recipients are answered on their own.
	sc := &recScanner{}
	_, c := startServer(t, Options{}, settings(sc))
	s := connect(t, c)
	m := clean
	m.rcpts = []string{"alice@example.test", "bob@example.test", "postmaster@example.test"}
	act, _ := send(t, s, m)
	if got := replyOf(act); got != "accept" {
		t.Fatalf("reply %q, want accept", got)
	}
}

func TestSessionScannerFailure(t *testing.T) {
	tests := []struct {
		name    string
		onError verdict.OnError
		want    string
		status  string
	}{
		{"tempfail by default", verdict.OnErrorTempFail, "451 4.7.1", ""},
		{"accept when configured", verdict.OnErrorAccept, "accept", "Not scanned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := &recScanner{fail: errors.New("clamd unix:/x: connection refused")}
			st := settings(sc)
			st.OnError["rec"] = tt.onError
			_, c := startServer(t, Options{}, st)
			s := connect(t, c)
			act, mods := send(t, s, clean)
			got := replyOf(act)
			if !strings.HasPrefix(got, tt.want) {
				t.Fatalf("reply %q, want %q...", got, tt.want)
			}
			if tt.status != "" {
				found := false
				for _, m := range mods {
					if m.HeaderName == "X-Virus-Status" && strings.Contains(m.HeaderValue, tt.status) {
						found = true
					}
				}
				if !found {
					t.Errorf("no X-Virus-Status %q header in %+v", tt.status, mods)
				}
			}
		})
	}
}

func TestSessionRemovesForgedHeaders(t *testing.T) {
	sc := &recScanner{}
	_, c := startServer(t, Options{}, settings(sc))
	s := connect(t, c)
	m := clean
	m.headers = [][2]string{
		{"X-Virus-Status", "Infected (forged)"},
		{"Subject", "hi"},
		{"x-virus-status", "second forged copy"},
	}
	act, mods := send(t, s, m)
	if replyOf(act) != "accept" {
		t.Fatalf("reply %q", replyOf(act))
	}
	var deleted []uint32
	for _, md := range mods {
		if md.Code == gomilter.ActChangeHeader && strings.EqualFold(md.HeaderName, "X-Virus-Status") && md.HeaderValue == "" {
			deleted = append(deleted, md.HeaderIndex)
		}
	}
	// Highest index first, so that the first deletion doesn't renumber the second.
	if len(deleted) != 2 || deleted[0] != 2 || deleted[1] != 1 {
		t.Errorf("deleted X-Virus-Status indexes %v, want [2 1]", deleted)
	}
	if !hasHeader(mods, "X-Virus-Status", "Clean") {
		t.Errorf("our own X-Virus-Status missing: %+v", mods)
	}
}

func TestSessionOversize(t *testing.T) {
	tests := []struct {
		policy verdict.OversizePolicy
		want   string
	}{
		{verdict.OversizeReject, "552 5.3.4"},
		{verdict.OversizeTempFail, "451 4.7.1"},
		{verdict.OversizeAccept, "accept"},
	}
	for _, tt := range tests {
		sc := &recScanner{}
		st := settings(sc)
		st.Scan.MaxSize = 100
		st.Policy.Oversize = tt.policy
		_, c := startServer(t, Options{}, st)
		s := connect(t, c)
		m := clean
		m.body = []string{strings.Repeat("x", 80) + "\r\n", strings.Repeat("y", 80) + "\r\n"}
		act, _ := send(t, s, m)
		if got := replyOf(act); !strings.HasPrefix(got, tt.want) {
			t.Errorf("oversize policy %v: reply %q, want %q", tt.policy, got, tt.want)
		}
		if n := sc.openJobs(); n != 0 {
			t.Errorf("%d scan jobs left open", n)
		}
	}
}

func TestServerSessionLimit(t *testing.T) {
	sc := &recScanner{}
	srv, c := startServer(t, Options{MaxSessions: 1}, settings(sc))
	connect(t, c)
	s2, err := c.Session()
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	act, err := s2.Conn("other.example", gomilter.FamilyInet, 1, "192.0.2.8")
	if err != nil {
		t.Fatal(err)
	}
	if got := replyOf(act); !strings.HasPrefix(got, "421 4.3.2") {
		t.Fatalf("second session over the limit: %q, want 421 4.3.2", got)
	}
	if n := srv.Sessions(); n != 2 {
		t.Errorf("Sessions() = %d, want 2", n)
	}
}

func TestServerDrain(t *testing.T) {
	sc := &recScanner{}
	srv, c := startServer(t, Options{}, settings(sc))
	idle := connect(t, c)
	busy := connect(t, c)
	mustContinue(t, "MAIL", func() (*gomilter.Action, error) { return busy.Mail("a@remote.test", nil) })
	mustContinue(t, "RCPT", func() (*gomilter.Action, error) { return busy.Rcpt("alice@example.test", nil) })
	mustContinue(t, "HEADER", func() (*gomilter.Action, error) { return busy.HeaderField("Subject", "x") })
	mustContinue(t, "EOH", busy.HeaderEnd)

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- srv.Shutdown(ctx)
	}()
	for !srv.draining.Load() {
		time.Sleep(time.Millisecond)
	}
	// The idle connection is closed promptly...
	if _, err := idle.Mail("late@remote.test", nil); err == nil {
		t.Error("idle connection still answered after shutdown began")
	}
	// ...while the message under way finishes with a real verdict.
	mustContinue(t, "BODY", func() (*gomilter.Action, error) { return busy.BodyChunk([]byte("body\r\n")) })
	_, act, err := busy.End()
	if err != nil {
		t.Fatalf("EOB during drain: %v", err)
	}
	if replyOf(act) != "accept" {
		t.Fatalf("EOB during drain: %q", replyOf(act))
	}
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestServerReadDeadline(t *testing.T) {
	sc := &recScanner{}
	srv, c := startServer(t, Options{ReadTimeout: 200 * time.Millisecond}, settings(sc))
	connect(t, c)
	deadline := time.Now().Add(5 * time.Second)
	for srv.Sessions() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("an idle MTA connection outlived the read timeout")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSessionSpamSkip(t *testing.T) {
	spam := &recScanner{}
	virus := &recScanner{name: "virus"}
	st := settings(spam, virus)
	st.Roles = map[string]verdict.Role{"rec": verdict.RoleSpam}
	st.Policy.SpamHeaders = true
	st.SpamSkipAuthenticated = true
	st.SpamSkipNetworks = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}
	_, c := startServer(t, Options{}, st)

	tests := []struct {
		name, client, auth string
		skipped            bool
		status             string
	}{
		{"stranger", "192.0.2.7", "", false, "No, score="},
		{"authenticated", "192.0.2.7", "carol", true, "No, not scanned: authenticated sender"},
		{"trusted network", "198.51.100.9", "", true, "No, not scanned: trusted network"},
	}
	for _, tt := range tests {
		spam.seen, virus.seen = nil, nil
		s, err := c.Session()
		if err != nil {
			t.Fatal(err)
		}
		mustContinue(t, "CONNECT", func() (*gomilter.Action, error) { return s.Conn("h", gomilter.FamilyInet, 1, tt.client) })
		if tt.auth != "" {
			s.Macros(gomilter.CodeMail, "{auth_authen}", tt.auth)
		}
		_, mods := send(t, s, clean)
		s.Close()
		if got := len(spam.seen) == 0; got != tt.skipped {
			t.Errorf("%s: spam scanner skipped = %v, want %v", tt.name, got, tt.skipped)
		}
		if len(virus.seen) != 1 {
			t.Errorf("%s: the virus scanner must always run", tt.name)
		}
		found := false
		for _, m := range mods {
			found = found || (m.HeaderName == "X-Spam-Status" && strings.HasPrefix(m.HeaderValue, tt.status))
		}
		if !found && tt.skipped {
			t.Errorf("%s: no X-Spam-Status %q in %+v", tt.name, tt.status, mods)
		}
	}
}

func TestSessionRewriteSubject(t *testing.T) {
	st := settings(&recScanner{})
	st.NewSubject = func(rs []scan.Result) (string, bool) { return "[SPAM] hello\r\n%s", true }
	_, c := startServer(t, Options{}, st)
	s := connect(t, c)
	_, mods := send(t, s, clean) // has a Subject
	m2 := clean
	m2.headers = [][2]string{{"From", "x@remote.test"}} // has none
	_, mods2 := send(t, s, m2)
	changed := false
	for _, m := range mods {
		changed = changed || (m.Code == gomilter.ActChangeHeader && m.HeaderName == "Subject" && m.HeaderIndex == 1 && m.HeaderValue == "[SPAM] hello pcts")
	}
	added := false
	for _, m := range mods2 {
		added = added || (m.Code == gomilter.ActAddHeader && m.HeaderName == "Subject" && m.HeaderValue == "[SPAM] hello pcts")
	}
	if !changed || !added {
		t.Errorf("subject not rewritten (sanitized): with a Subject %+v; without %+v", mods, mods2)
	}
}
