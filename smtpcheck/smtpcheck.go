// Package smtpcheck audits how an SMTP server treats mail for a user that
// does not exist: the first cause of backscatter. It is the logic of
// `nobounce check`.
//
// The check connects, says EHLO, and in one transaction with the null
// sender (MAIL FROM:<>, as a bounce would come, so that nothing can ever be
// sent back) asks for postmaster of the domain (RFC 5321 §4.5.1: every
// domain has one; a server that refuses it is not the domain's server) and
// for a random local part no one has. The class follows:
//
//	C3  the unknown user is refused at RCPT TO: the client's own server
//	    tells its user; nothing is ever bounced.
//	C2  accepted at RCPT TO, refused after DATA (only known with Data):
//	    no backscatter from this server itself, but a relay in front of it
//	    bounces, and every message is transferred before it is refused.
//	C1  accepted: the server bounces it later, to a sender that is usually
//	    forged (backscatter), or it is a catch-all.
//
// With Data, a tiny message with the null sender goes to the unknown user
// to tell C2 from C1; it can only bounce to the null sender, which is
// never delivered.
package smtpcheck

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nobounce/nobounce/recipient"
	"github.com/nobounce/nobounce/sockaddr"
)

// Class is the verdict on a server.
type Class string

// Classes. Unknown means the check could not tell (see Report.Error).
const (
	C3      Class = "C3"
	C2      Class = "C2"
	C1      Class = "C1"
	Unknown Class = "unknown"
)

// Options say what to check and how.
type Options struct {
	Addr   sockaddr.Addr // the server
	Domain string        // the domain whose users it receives mail for
	Helo   string        // the EHLO name; "" = "localhost"
	// Data sends a tiny null-sender message to the unknown user when it
	// is accepted at RCPT TO, to tell C2 from C1.
	Data bool
	// ConnectTimeout bounds connecting; Timeout the whole check. 0 = 10s
	// and 60s.
	ConnectTimeout, Timeout time.Duration
	// Trace, when set, sees the dialogue: ">" lines sent, "<" received.
	Trace func(dir, line string)
	// Probe is the unknown local part; "" = a random one. (For tests.)
	Probe string
}

// Report is the result, also printed as JSON by `nobounce check --json`.
type Report struct {
	Class      Class    `json:"class"`
	Server     string   `json:"server"`
	Domain     string   `json:"domain"`
	Greeting   string   `json:"greeting,omitempty"`
	Postmaster string   `json:"postmaster_rcpt,omitempty"` // reply to RCPT TO:<postmaster@domain>
	Probe      string   `json:"probe"`                     // the unknown address
	ProbeRcpt  string   `json:"probe_rcpt,omitempty"`      // reply to RCPT TO:<probe>
	DataTested bool     `json:"data_tested"`
	ProbeData  string   `json:"probe_data,omitempty"` // reply to the end of DATA (or to DATA)
	Summary    string   `json:"summary"`
	Advice     []string `json:"advice"`
	Error      string   `json:"error,omitempty"`
	// Transcript is the SMTP dialogue, one line each, "> " sent, "< "
	// received.
	Transcript []string `json:"transcript"`
}

// ParseServer reads HOST[:PORT] (port 25 by default), or a socket address
// as MTAs write them (inet:host:port).
func ParseServer(s string) (sockaddr.Addr, error) {
	bad := fmt.Errorf("server %q: want HOST or HOST:PORT", s)
	if s == "" {
		return sockaddr.Addr{}, bad
	}
	if ip := net.ParseIP(strings.Trim(s, "[]")); ip != nil && !strings.Contains(strings.TrimPrefix(s, "["), "]:") {
		return sockaddr.Addr{Network: "tcp", Address: net.JoinHostPort(ip.String(), "25")}, nil
	}
	if host, port, err := net.SplitHostPort(s); err == nil && validHost(host) && host != "inet" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return sockaddr.Addr{}, bad
		}
		return sockaddr.Addr{Network: "tcp", Address: net.JoinHostPort(host, port)}, nil
	}
	if !strings.Contains(s, ":") && validHost(s) {
		return sockaddr.Addr{Network: "tcp", Address: net.JoinHostPort(s, "25")}, nil
	}
	a, err := sockaddr.Parse(s)
	if err != nil || a.Network != "tcp" {
		return sockaddr.Addr{}, bad
	}
	if host, _, err := net.SplitHostPort(a.Address); err != nil || !validHost(host) {
		return sockaddr.Addr{}, bad
	}
	return a, nil
}

// validHost accepts an IP address or a host name.
func validHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 253 || strings.HasPrefix(h, ".") || strings.HasPrefix(h, "-") || strings.Contains(h, "..") {
		return false
	}
	return !strings.ContainsFunc(h, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_')
	})
}

// Run checks the server. It always returns a Report; Class Unknown with
// Error set when the check could not tell.
func Run(ctx context.Context, o Options) Report {
	if o.Helo == "" {
		o.Helo = "localhost"
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	if o.Probe == "" {
		b := make([]byte, 6)
		rand.Read(b)
		o.Probe = "nobounce-check-" + hex.EncodeToString(b)
	}
	r := Report{Class: Unknown, Server: o.Addr.Address, Domain: o.Domain, Probe: o.Probe + "@" + o.Domain}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var tr []string
	trace := o.Trace
	o.Trace = func(dir, line string) {
		tr = append(tr, dir+" "+line)
		if trace != nil {
			trace(dir, line)
		}
	}
	r = run(ctx, o, r) // returns after QUIT
	r.Transcript = tr
	return r
}

func run(ctx context.Context, o Options, r Report) Report {
	c, greet, err := recipient.Dial(ctx, o.Addr, o.ConnectTimeout, o.Trace)
	r.Greeting = replyText(greet)
	if err != nil {
		return r.unknown("cannot talk to the server: %v", err)
	}
	defer c.Quit()
	step := func(cmd string) (recipient.Reply, error) { return c.Cmd(ctx, cmd) }

	if rep, err := c.Hello(ctx, o.Helo); err != nil || rep.Class() != 2 {
		return r.unknown("EHLO and HELO refused: %s", errText(rep, err))
	}
	if rep, err := step("MAIL FROM:<>"); err != nil || rep.Class() != 2 {
		return r.unknown("the null sender is refused (%s): bounces cannot reach this server at all, "+
			"which RFC 5321 §4.5.5 forbids; the check needs it", errText(rep, err))
	}
	pm, err := step("RCPT TO:<postmaster@" + o.Domain + ">")
	if err != nil {
		return r.unknown("RCPT TO postmaster: %v", err)
	}
	r.Postmaster = pm.String()
	probe, err := step("RCPT TO:<" + r.Probe + ">")
	if err != nil {
		return r.unknown("RCPT TO the unknown user: %v", err)
	}
	r.ProbeRcpt = probe.String()
	step("RSET")

	switch {
	case pm.Class() == 4 || probe.Class() == 4:
		return r.unknown("a temporary failure (4xx) at RCPT TO: greylisting or a busy server; try again in a few minutes")
	case pm.Class() != 2:
		return r.unknown("postmaster@%s is refused (%s): this is not a server for %s, or it refuses the null sender per recipient",
			o.Domain, pm, o.Domain)
	case probe.Class() == 5:
		return r.classify(C3)
	case probe.Class() != 2:
		return r.unknown("odd answer to RCPT TO: %s", probe)
	case !o.Data:
		return r.classify(C1)
	}

	r.DataTested = true
	if rep, err := step("MAIL FROM:<>"); err != nil || rep.Class() != 2 {
		return r.unknown("MAIL FROM:<> for the test message: %s", errText(rep, err))
	}
	if rep, err := step("RCPT TO:<" + r.Probe + ">"); err != nil || rep.Class() != 2 {
		return r.unknown("RCPT TO for the test message: %s", errText(rep, err))
	}
	rep, err := c.Data(ctx, testMessage(o.Helo, r.Probe))
	if err != nil {
		return r.unknown("DATA: %v", err)
	}
	r.ProbeData = rep.String()
	switch rep.Class() {
	case 5:
		return r.classify(C2)
	case 2:
		return r.classify(C1)
	}
	return r.unknown("a temporary failure after DATA (%s); try again later", rep)
}

func replyText(r recipient.Reply) string {
	if r.Code == 0 {
		return ""
	}
	return r.String()
}

func errText(rep recipient.Reply, err error) string {
	if err != nil {
		return err.Error()
	}
	return rep.String()
}

func (r Report) unknown(format string, args ...any) Report {
	r.Class = Unknown
	r.Error = fmt.Sprintf(format, args...)
	r.Summary = "could not tell: " + r.Error
	r.Advice = []string{"Check that HOST and --domain name a server that receives mail for the domain, then run the check again."}
	return r
}

func (r Report) classify(c Class) Report {
	r.Class = c
	d := r.Domain
	switch c {
	case C3:
		r.Summary = "mail for a user that does not exist is refused at RCPT TO: no backscatter"
		r.Advice = []string{"Nothing to change: the sending server tells its own user, and nothing is bounced to a forged sender."}
	case C2:
		r.Summary = "mail for a user that does not exist is accepted at RCPT TO and refused only after DATA"
		r.Advice = []string{
			"This server itself sends no bounce, but every such message is transferred before it is refused, " +
				"and a relay or gateway in front of it that accepted the recipient has to bounce it: backscatter.",
			"Refuse unknown users at RCPT TO. Postfix: keep smtpd_reject_unlisted_recipient = yes and list the users " +
				"(local_recipient_maps, virtual_mailbox_maps, relay_recipient_maps); Exchange: turn on recipient filtering; " +
				"Domino: \"verify that local domain recipients exist\".",
			"Or run nobounce in front: [recipient] domains = [\"" + d + "\"] with a list file, so unknown users get 550 5.1.1 at RCPT TO.",
		}
	case C1:
		r.Summary = "mail for a user that does not exist is accepted"
		if !r.DataTested {
			r.Summary += " at RCPT TO (without --data, refusal after DATA (C2) cannot be told from acceptance (C1))"
		}
		r.Advice = []string{
			"Either this server bounces such mail later, to a sender that is usually forged (backscatter, which gets " +
				"the server listed, e.g. in ips.backscatterer.org), or it is a catch-all that delivers it somewhere.",
			"Refuse unknown users at RCPT TO. Postfix gateway: relay_recipient_maps with the users of " + d +
				" (or reject_unverified_recipient); Exchange: recipient filtering; Domino: \"verify that local domain recipients exist\".",
			"Or run nobounce in front of it: [recipient] verify = [\"" + d + "=inet:BACKEND:25\"] asks the server that holds " +
				"the mailboxes during the dialogue and answers 550 5.1.1 for unknown users (a catch-all backend needs a list file instead).",
		}
	}
	return r
}

// testMessage is the tiny message sent with Data.
func testMessage(helo, to string) string {
	return strings.Join([]string{
		"From: nobounce check <MAILER-DAEMON@" + helo + ">",
		"To: <" + to + ">",
		"Subject: nobounce check: test message for a user that does not exist",
		"Date: " + time.Now().UTC().Format(time.RFC1123Z),
		"Message-ID: <" + strings.TrimPrefix(strings.SplitN(to, "@", 2)[0], "nobounce-check-") + ".check@nobounce.invalid>",
		"Auto-Submitted: auto-generated",
		"",
		"This message tests whether this server accepts mail for a user that does",
		"not exist. It was sent with a null sender, so no bounce can come of it.",
		"It may be deleted.",
		"",
	}, "\r\n")
}
