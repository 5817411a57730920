package milter

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"strings"
	"sync/atomic"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/verdict"
)

// maxHeaderBytes bounds the header block kept until the end of headers.
// Postfix's header_size_limit is 100 KiB per header; a larger block is abuse,
// and it is treated like a message over the scan size limit.
const maxHeaderBytes = 1 << 20

// state is where a Session is in the milter conversation.
type state int32

const (
	stateIdle     state = iota // connected; no message under way
	stateEnvelope              // MAIL FROM seen: recipients and headers arrive
	stateBody                  // end of headers seen: the scan stream is open
)

// Session follows one MTA connection: one SMTP client, several messages.
// go-milter calls its methods from the connection's single goroutine; only
// state is read from elsewhere (by the server while draining).
type Session struct {
	srv    *Server
	id     uint64
	log    *slog.Logger
	state  atomic.Int32
	refuse bool // over the session limit: every stage answers 421

	// connection: kept across messages
	client     net.IP
	clientName string
	helo       string
	connMacros map[string]string

	// message: reset by reset()
	msg message
}

// message is the per-message state. reset() replaces it whole, so nothing of
// one message can leak into the next.
type message struct {
	settings *Settings
	started  time.Time
	env      scan.Envelope
	macros   map[string]string
	header   bytes.Buffer   // header block in wire form, until the stream opens
	tooBig   bool           // header block over maxHeaderBytes
	ours     map[string]int // our header names (lower case) → copies received
	subjects int            // Subject headers received
	stream   *scan.Stream
	cancel   context.CancelFunc
}

func (s *Session) setState(st state) { s.state.Store(int32(st)) }

// inMessage reports whether a message is under way; a draining server leaves
// such sessions alone until they finish it.
func (s *Session) inMessage() bool { return state(s.state.Load()) != stateIdle }

// mergeMacros keeps every macro the MTA has sent: go-milter hands each
// callback only the latest packet's map.
func (s *Session) mergeMacros(m *gomilter.Modifier) {
	if m == nil || len(m.Macros) == 0 {
		return
	}
	dst := s.connMacros
	if s.msg.macros != nil {
		dst = s.msg.macros
	}
	for k, v := range m.Macros {
		dst[strings.Trim(k, "{}")] = v
	}
}

func (s *Session) macro(name string) string {
	if v, ok := s.msg.macros[name]; ok {
		return v
	}
	return s.connMacros[name]
}

// reset ends whatever message was under way and releases what it held.
func (s *Session) reset() {
	if s.msg.stream != nil {
		s.msg.stream.Abort()
	}
	if s.msg.cancel != nil {
		s.msg.cancel()
	}
	s.msg = message{}
	s.setState(stateIdle)
}

// begin starts a message at MAIL FROM, or at any later stage whose
// predecessors the MTA did not send us.
func (s *Session) begin() {
	if s.msg.settings != nil {
		return
	}
	s.msg = message{
		settings: s.srv.Settings(),
		started:  time.Now(),
		macros:   map[string]string{},
		ours:     map[string]int{},
	}
	s.msg.env = scan.Envelope{ClientAddr: ipString(s.client), ClientName: s.clientName, Helo: s.helo}
	s.setState(stateEnvelope)
}

func ipString(ip net.IP) string {
	if ip == nil {
		return ""
	}
	return ip.String()
}

// Connect: a new SMTP client.
func (s *Session) Connect(host, family string, port uint16, addr net.IP, m *gomilter.Modifier) (gomilter.Response, error) {
	s.mergeMacros(m)
	s.client, s.clientName = addr, host
	if s.refuse {
		// A custom reply, not a bare tempfail: see the package comment.
		return reply(421, "4.3.2", "Too many concurrent sessions, try again later"), nil
	}
	return gomilter.RespContinue, nil
}

// Helo: the client's HELO/EHLO name; it may come more than once.
func (s *Session) Helo(name string, m *gomilter.Modifier) (gomilter.Response, error) {
	s.mergeMacros(m)
	s.helo = name
	if s.refuse {
		return reply(421, "4.3.2", "Too many concurrent sessions, try again later"), nil
	}
	return gomilter.RespContinue, nil
}

// MailFrom starts a message. "" is the null sender: a bounce.
func (s *Session) MailFrom(from string, m *gomilter.Modifier) (gomilter.Response, error) {
	if s.msg.settings != nil {
		// A new MAIL FROM without an abort for the last one.
		s.reset()
	}
	s.begin()
	s.mergeMacros(m)
	if s.refuse {
		return reply(421, "4.3.2", "Too many concurrent sessions, try again later"), nil
	}
	s.msg.env.From = from
	s.msg.env.Helo = s.helo
	s.msg.env.AuthUser = s.macro("auth_authen")
	s.msg.env.MTAName = s.macro("j")
	if resp := s.mailDecision(from, m); resp != nil {
		return resp, nil
	}
	return gomilter.RespContinue, nil
}

// RcptTo: one recipient, answered now (recipient.go): a recipient refused
// here never reaches the message, so nothing about it can bounce later.
func (s *Session) RcptTo(rcpt string, m *gomilter.Modifier) (gomilter.Response, error) {
	s.begin()
	s.mergeMacros(m)
	if resp := s.rcptDecision(rcpt, m); resp != nil {
		return resp, nil
	}
	s.msg.env.Rcpts = append(s.msg.env.Rcpts, rcpt)
	return gomilter.RespContinue, nil
}

// Header: one header field, kept in wire form until the headers end.
func (s *Session) Header(name, value string, m *gomilter.Modifier) (gomilter.Response, error) {
	s.begin()
	s.mergeMacros(m)
	lname := strings.ToLower(name)
	if lname == "subject" {
		s.msg.subjects++
	}
	for _, own := range verdict.HeaderNames(s.msg.settings.Policy) {
		if lname == strings.ToLower(own) {
			s.msg.ours[lname]++
		}
	}
	if s.msg.stream != nil {
		// A header after the end of headers breaks the protocol; keep it
		// out of the scan rather than pretend it was in the header block.
		s.log.Warn("header after end of headers ignored", "header", name)
		return gomilter.RespContinue, nil
	}
	if s.msg.tooBig {
		return gomilter.RespContinue, nil
	}
	if s.msg.header.Len()+len(name)+len(value)+4 > maxHeaderBytes {
		s.msg.tooBig = true
		s.msg.header = bytes.Buffer{}
		return gomilter.RespContinue, nil
	}
	s.msg.header.WriteString(name)
	s.msg.header.WriteString(": ")
	writeCRLF(&s.msg.header, value)
	s.msg.header.WriteString("\r\n")
	return gomilter.RespContinue, nil
}

// writeCRLF writes a header value whose continuation lines the MTA passed
// with LF or CRLF, with CRLF as on the wire.
func writeCRLF(b *bytes.Buffer, v string) {
	for {
		i := strings.IndexByte(v, '\n')
		if i < 0 {
			b.WriteString(v)
			return
		}
		b.WriteString(strings.TrimSuffix(v[:i], "\r"))
		b.WriteString("\r\n")
		v = v[i+1:]
	}
}

// Headers: the header block is complete; every scanner starts now and gets
// the header block at once.
func (s *Session) Headers(_ textproto.MIMEHeader, m *gomilter.Modifier) (gomilter.Response, error) {
	s.begin()
	s.mergeMacros(m)
	s.open()
	return gomilter.RespContinue, nil
}

func (s *Session) open() {
	if s.msg.stream != nil {
		return
	}
	st := s.msg.settings
	s.msg.env.QueueID = s.macro("i")
	ctx, cancel := context.WithCancel(context.Background())
	s.msg.cancel = cancel
	s.msg.stream = scan.Open(ctx, st.scanners(&s.msg.env), &s.msg.env, st.Scan)
	if s.msg.tooBig {
		s.msg.stream.MarkOversize()
	}
	s.msg.header.WriteString("\r\n")
	s.msg.stream.Write(s.msg.header.Bytes())
	s.msg.header = bytes.Buffer{}
	s.setState(stateBody)
}

// BodyChunk: the next piece of the body, straight into every scanner.
func (s *Session) BodyChunk(chunk []byte, m *gomilter.Modifier) (gomilter.Response, error) {
	s.begin()
	s.mergeMacros(m)
	s.open()
	s.msg.stream.Write(chunk)
	return gomilter.RespContinue, nil
}

// Body: the final "." — wait for every scanner, decide, answer.
func (s *Session) Body(m *gomilter.Modifier) (gomilter.Response, error) {
	s.begin()
	s.mergeMacros(m)
	s.open()
	defer s.reset()
	msg := &s.msg
	if q := s.macro("i"); q != "" {
		msg.env.QueueID = q
	}
	st := msg.settings

	eom := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), st.EOMTimeout)
	defer cancel()
	results := msg.stream.Finish(ctx)
	oversize := msg.stream.Oversize() || msg.tooBig
	v := st.Decide(results, oversize)

	var resp gomilter.Response = gomilter.RespContinue
	var modErr error
	switch v.Action {
	case verdict.Accept, verdict.Tag:
		modErr = s.rewriteHeaders(m, v.Headers)
		if modErr == nil && st.NewSubject != nil {
			modErr = s.rewriteSubject(m, st.NewSubject, results)
		}
		if modErr == nil {
			modErr = s.envelopeEdits(m)
		}
		if modErr != nil {
			// The MTA went away or refused a change: nothing is accepted
			// without the headers that say what we found.
			v = verdict.Verdict{Action: verdict.TempFail, Code: 451, Enhanced: "4.7.1",
				Text: "Local error in content filter, try again later", Reason: v.Reason, Scanner: v.Scanner}
			resp = reply(v.Code, v.Enhanced, v.Text)
		}
	default:
		resp = reply(v.Code, v.Enhanced, v.Text)
	}
	s.logVerdict(v, results, oversize, time.Since(eom), modErr)
	s.srv.metrics.observe(v, results)
	return resp, nil
}

// rewriteHeaders removes incoming copies of the headers nobounce owns, then
// adds ours. Copies are deleted from the last to the first so that the
// indexes (1-based, counted per name, as both MTAs count them) stay valid.
func (s *Session) rewriteHeaders(m *gomilter.Modifier, add []verdict.Header) error {
	for _, own := range verdict.HeaderNames(s.msg.settings.Policy) {
		for i := s.msg.ours[strings.ToLower(own)]; i >= 1; i-- {
			if err := m.ChangeHeader(i, own, ""); err != nil {
				return fmt.Errorf("remove header %s[%d]: %w", own, i, err)
			}
		}
		s.msg.ours[strings.ToLower(own)] = 0
	}
	for _, h := range add {
		if err := m.AddHeader(h.Name, fold(h.Name, h.Value)); err != nil {
			return fmt.Errorf("add header %s: %w", h.Name, err)
		}
	}
	return nil
}

// rewriteSubject replaces the first Subject (or adds one) when a scanner
// proposes a new one and the configuration asks for it.
func (s *Session) rewriteSubject(m *gomilter.Modifier, propose func([]scan.Result) (string, bool), results []scan.Result) error {
	subj, ok := propose(results)
	if !ok {
		return nil
	}
	subj = verdict.Sanitize(subj, 900)
	if subj == "" {
		return nil
	}
	if s.msg.subjects > 0 {
		if err := m.ChangeHeader(1, "Subject", fold("Subject", subj)); err != nil {
			return fmt.Errorf("rewrite Subject: %w", err)
		}
		return nil
	}
	if err := m.AddHeader("Subject", fold("Subject", subj)); err != nil {
		return fmt.Errorf("add Subject: %w", err)
	}
	return nil
}

// Abort: the MTA dropped the message (RSET, a rejection, a lost client).
func (s *Session) Abort(m *gomilter.Modifier) error {
	if s.msg.settings != nil && s.msg.stream != nil {
		s.log.Debug("message aborted", "queue_id", s.macro("i"), "size", s.msg.stream.Size())
	}
	s.reset()
	return nil
}

// close is called by the server when the connection ends.
func (s *Session) close() { s.reset() }

// reply builds a custom SMFIR_REPLYCODE answer. The text is sanitized again
// here: whatever reaches the wire passes this one door.
func reply(code int, enhanced, text string) gomilter.Response {
	return gomilter.NewResponseStr(byte(gomilter.ActReplyCode),
		fmt.Sprintf("%d %s %s", code, enhanced, verdict.Sanitize(text, 400)))
}

func (s *Session) logVerdict(v verdict.Verdict, results []scan.Result, oversize bool, wait time.Duration, modErr error) {
	msg := &s.msg
	attrs := []any{
		"queue_id", msg.env.QueueID,
		"client", msg.env.ClientAddr,
		"helo", msg.env.Helo,
		"from", msg.env.From,
		"rcpts", len(msg.env.Rcpts),
		"size", msg.stream.Size(),
		"action", v.Action.String(),
		"reason", string(v.Reason),
		"reply", fmt.Sprintf("%d %s", v.Code, v.Enhanced),
	}
	if v.Threat != "" {
		attrs = append(attrs, "threat", v.Threat)
	}
	if v.Rule != "" {
		attrs = append(attrs, "rule", v.Rule)
	}
	if oversize {
		attrs = append(attrs, "oversize", true)
	}
	for _, r := range results {
		attrs = append(attrs, r.Scanner+"_ms", r.Elapsed.Milliseconds())
		if r.Spam != nil {
			attrs = append(attrs, r.Scanner+"_score", r.Spam.Score)
		}
		if r.Skipped != "" {
			attrs = append(attrs, r.Scanner+"_skipped", r.Skipped)
		}
		if r.Err != nil {
			attrs = append(attrs, r.Scanner+"_error", r.Err.Error())
		}
	}
	if modErr != nil {
		attrs = append(attrs, "error", modErr.Error())
	}
	attrs = append(attrs, "eom_ms", wait.Milliseconds(), "total_ms", time.Since(msg.started).Milliseconds())
	level := slog.LevelInfo
	if v.Action == verdict.TempFail {
		level = slog.LevelWarn
	}
	s.log.Log(context.Background(), level, "verdict", attrs...)
}
