// Package recipient answers, at RCPT TO, whether a recipient of one of the
// local domains exists, so that mail for unknown users is refused during
// the SMTP dialogue (RFC 5321 §3.3: 550 at RCPT) instead of being accepted
// and bounced later to a sender who is most likely forged.
//
// Two sources answer:
//
//   - a list file of addresses, "@domain" wildcards and "!address"
//     exceptions (List), reloaded when it changes;
//   - an SMTP callout to the domain's backend (the server that holds the
//     mailboxes): EHLO, MAIL FROM:<>, RCPT TO, QUIT (Callout). 2xx means
//     the address exists, 5xx that it does not, 4xx or no answer that we
//     can't tell.
//
// Callout answers are cached (Cache): "exists" for 7 days and "unknown" for
// 4 hours by default, "can't tell" never. A backend that accepts every
// address (a catch-all, or a server that accepts first and bounces later)
// makes callouts meaningless: each domain's backend is probed once a day
// with a random local part, and when it accepts that, the domain falls back
// to the list or is accepted unchecked (Checker.Check).
//
// Replies follow RFC 5321 and RFC 3463: 550 5.1.1 (bad destination mailbox
// address) for an unknown user, 451 4.4.3 (directory server failure) when
// the backend can't be asked, 452 4.5.3 (too many recipients) for a
// recipient of another policy group (Groups; DESIGN.md decision 2).
package recipient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nobounce/nobounce/sockaddr"
)

// Status is what a source knows about an address.
type Status int

const (
	Unsure  Status = iota // can't tell: no answer, a 4xx, or not covered
	Exists                // the address exists (2xx to RCPT TO, or listed)
	Unknown               // no such address (5xx to RCPT TO, or not listed)
)

func (s Status) String() string {
	switch s {
	case Exists:
		return "exists"
	case Unknown:
		return "unknown"
	}
	return "unsure"
}

// Reason says how a Result was reached; the values are stable, for logs and
// metric labels.
type Reason string

const (
	ReasonNotLocal         Reason = "not-local"           // not one of the local domains: not checked
	ReasonUnchecked        Reason = "unchecked"           // a local domain no source speaks for
	ReasonListed           Reason = "list"                // the list says it exists
	ReasonNotListed        Reason = "list-unknown"        // the list covers the domain and not the address
	ReasonCallout          Reason = "callout"             // the backend accepted it just now
	ReasonCalloutUnknown   Reason = "callout-unknown"     // the backend refused it just now
	ReasonCached           Reason = "cached"              // the backend accepted it earlier
	ReasonCachedUnknown    Reason = "cached-unknown"      // the backend refused it earlier
	ReasonCatchAll         Reason = "catch-all"           // the backend accepts every address and no list covers the domain
	ReasonUnverified       Reason = "unverified"          // the backend could not be asked: 451 4.4.3
	ReasonUnverifiedAccept Reason = "unverified-accepted" // the same, with fail-open: accepted
	ReasonOtherGroup       Reason = "other-group"         // another policy group than the transaction's: 452 4.5.3
)

// Result is the answer to one recipient. Code 0 accepts it; otherwise
// Code, Enhanced and Text are the SMTP reply.
type Result struct {
	Status   Status
	Reason   Reason
	Code     int
	Enhanced string
	Text     string
	Backend  string // the backend asked or whose answer was cached, for logs
	Detail   string // the backend's reply or error, for logs
}

// Accept reports whether the recipient is accepted.
func (r Result) Accept() bool { return r.Code == 0 }

// Reply renders a refusal as "550 5.1.1 text"; "" for an acceptance.
func (r Result) Reply() string {
	if r.Accept() {
		return ""
	}
	return fmt.Sprintf("%d %s %s", r.Code, r.Enhanced, r.Text)
}

// Event is something worth counting, reported to Options.Event.
type Event string

const (
	EventCallout       Event = "callout"        // an SMTP connection to a backend
	EventCalloutFailed Event = "callout-failed" // a callout that could not tell
	EventCatchAll      Event = "catch-all"      // a backend accepted the random probe
)

// Options configure a Checker.
type Options struct {
	// Domains are the local domains; only their recipients are checked.
	// Every domain of Backends is local too.
	Domains []string
	// Backends maps a domain to the SMTP server that holds its mailboxes.
	Backends map[string]sockaddr.Addr
	// List, when not nil, is the list file.
	List *List
	// Cache keeps callout answers; nil makes one with DefaultCacheOptions.
	Cache *Cache
	// Helo is the name callouts greet backends with; "" = "localhost".
	Helo string
	// ConnectTimeout bounds connecting to a backend; Timeout the whole
	// callout. 0 = 5s and 20s. Keep Timeout below the MTA's milter
	// command timeout (Postfix milter_command_timeout 30s, Sendmail T=R).
	ConnectTimeout, Timeout time.Duration
	// FailOpen accepts recipients that can't be verified instead of
	// answering 451 4.4.3.
	FailOpen bool
	// CatchAllCheck probes each backend with a random address (once per
	// Cache's CatchAll period) before trusting its answers.
	CatchAllCheck bool
	// Event, when set, is told of each Event with the domain concerned
	// (for metrics); it must not block.
	Event  func(e Event, domain string)
	Logger *slog.Logger
}

// Checker answers recipients. It is safe for concurrent use.
type Checker struct {
	opts     Options
	local    map[string]bool
	backends map[string]sockaddr.Addr
	cache    *Cache
	log      *slog.Logger

	mu       sync.Mutex
	inflight map[string]*flight // one callout per address at a time
}

type flight struct {
	done       chan struct{}
	ans, probe Answer
}

// New makes a Checker.
func New(o Options) *Checker {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Cache == nil {
		o.Cache = NewCache(DefaultCacheOptions)
	}
	if o.Event == nil {
		o.Event = func(Event, string) {}
	}
	if o.Helo == "" {
		o.Helo = "localhost"
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = 5 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 20 * time.Second
	}
	c := &Checker{opts: o, local: map[string]bool{}, backends: map[string]sockaddr.Addr{},
		cache: o.Cache, log: o.Logger, inflight: map[string]*flight{}}
	for _, d := range o.Domains {
		c.local[strings.ToLower(d)] = true
	}
	for d, a := range o.Backends {
		c.local[strings.ToLower(d)] = true
		c.backends[strings.ToLower(d)] = a
	}
	return c
}

// IsLocal reports whether addr belongs to one of the local domains.
func (c *Checker) IsLocal(addr string) bool {
	local, domain, ok := splitAddr(addr)
	return ok && local != "" && c.local[strings.ToLower(domain)]
}

// Cache is the checker's callout cache.
func (c *Checker) Cache() *Cache { return c.cache }

// Check answers for one recipient, an address without angle brackets.
//
// For a local domain with a backend, the callout's answer (or the cached
// one) decides, unless the backend is a catch-all or can't tell: then the
// list decides when it covers the domain. A catch-all without a list is
// accepted; can't tell without a list is 451 4.4.3, or accepted with
// FailOpen. A local domain that no source speaks for is accepted.
func (c *Checker) Check(ctx context.Context, rcpt string) Result {
	if !c.IsLocal(rcpt) {
		return Result{Status: Exists, Reason: ReasonNotLocal}
	}
	_, domain, _ := splitAddr(rcpt)
	domain = strings.ToLower(domain)

	var fallback Result // why the list (or nothing) has to decide
	if be, ok := c.backends[domain]; ok {
		r := c.viaBackend(ctx, be, rcpt, domain)
		if r.Status != Unsure {
			return r
		}
		fallback = r
	}
	if c.opts.List != nil {
		switch c.opts.List.Lookup(rcpt) {
		case Exists:
			return Result{Status: Exists, Reason: ReasonListed, Detail: fallback.Detail}
		case Unknown:
			return unknownResult(rcpt, ReasonNotListed, Reply{}, false)
		}
	}
	switch fallback.Reason {
	case ReasonCatchAll:
		return fallback
	case ReasonUnverified:
		if c.opts.FailOpen {
			fallback.Reason = ReasonUnverifiedAccept
			fallback.Code, fallback.Enhanced, fallback.Text = 0, "", ""
		}
		return fallback
	}
	return Result{Status: Exists, Reason: ReasonUnchecked}
}

// viaBackend asks the domain's backend, or the cache. A Result with Status
// Unsure and a Reason (catch-all, unverified) leaves the decision to the
// list.
func (c *Checker) viaBackend(ctx context.Context, be sockaddr.Addr, rcpt, domain string) Result {
	caKey := be.String() + " @" + domain
	catchAll, known := false, false
	if c.opts.CatchAllCheck {
		catchAll, known = c.cache.catchAllState(caKey)
		if catchAll {
			return Result{Status: Unsure, Reason: ReasonCatchAll, Backend: be.String(), Detail: "backend accepts any address"}
		}
	}
	key := be.String() + " " + strings.ToLower(rcpt)
	if st, e, ok := c.cache.get(key); ok {
		if st == Unknown {
			r := unknownResult(rcpt, ReasonCachedUnknown, e.reply, true)
			r.Backend, r.Detail = be.String(), e.reply.String()
			return r
		}
		return Result{Status: Exists, Reason: ReasonCached, Backend: be.String()}
	}

	var probe string
	if c.opts.CatchAllCheck && !known {
		probe = randomLocal() + "@" + domain
	}
	ans, probeAns := c.ask(ctx, be, key, rcpt, probe)
	if probeAns.Reply.Code != 0 {
		switch probeAns.Status {
		case Exists:
			c.cache.setCatchAll(caKey, true)
			c.opts.Event(EventCatchAll, domain)
			c.log.Warn("recipient callout: the backend accepts any address of the domain (catch-all, or it bounces later); "+
				"its answers mean nothing, so the domain falls back to the list or is accepted unchecked",
				"domain", domain, "backend", be.String(), "probe", probe, "reply", probeAns.Reply.String(),
				"recheck_after", c.cache.opts.CatchAll.String())
			return Result{Status: Unsure, Reason: ReasonCatchAll, Backend: be.String(), Detail: "backend accepted " + probe}
		case Unknown:
			c.cache.setCatchAll(caKey, false)
		}
	}
	switch ans.Status {
	case Exists:
		c.cache.put(key, Exists, ans.Reply)
		return Result{Status: Exists, Reason: ReasonCallout, Backend: be.String(), Detail: ans.Reply.String()}
	case Unknown:
		c.cache.put(key, Unknown, ans.Reply)
		r := unknownResult(rcpt, ReasonCalloutUnknown, ans.Reply, false)
		r.Backend, r.Detail = be.String(), ans.Reply.String()
		return r
	}
	c.opts.Event(EventCalloutFailed, domain)
	detail := ans.Reply.String()
	if ans.Err != nil {
		detail = ans.Err.Error()
	}
	c.log.Warn("recipient callout could not tell", "rcpt", rcpt, "backend", be.String(), "detail", detail)
	return Result{Status: Unsure, Reason: ReasonUnverified, Code: 451, Enhanced: "4.4.3",
		Text:    "<" + rcpt + ">: Recipient address verification failed, try again later",
		Backend: be.String(), Detail: detail}
}

// ask runs one callout for rcpt (and the probe first, when given), or
// joins a callout for the same address already under way and gets its
// answers.
func (c *Checker) ask(ctx context.Context, be sockaddr.Addr, key, rcpt, probe string) (Answer, Answer) {
	c.mu.Lock()
	if f, ok := c.inflight[key]; ok {
		c.mu.Unlock()
		select {
		case <-f.done:
			return f.ans, f.probe
		case <-ctx.Done():
			return Answer{Err: ctx.Err()}, Answer{}
		}
	}
	f := &flight{done: make(chan struct{})}
	c.inflight[key] = f
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.inflight, key)
		c.mu.Unlock()
		close(f.done)
	}()

	ctx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	rcpts := []string{rcpt}
	if probe != "" {
		rcpts = []string{probe, rcpt}
	}
	_, domain, _ := splitAddr(rcpt)
	c.opts.Event(EventCallout, strings.ToLower(domain))
	answers := Callout(ctx, be, c.opts.Helo, c.opts.ConnectTimeout, rcpts)
	f.ans = answers[len(answers)-1]
	if probe != "" {
		f.probe = answers[0]
	}
	return f.ans, f.probe
}

// unknownResult is the 550 5.1.1 for an unknown recipient. The backend's
// own text is kept when it has one; cached answers say so.
func unknownResult(rcpt string, why Reason, rep Reply, cached bool) Result {
	text := strings.TrimSpace(rep.Text())
	if text == "" {
		text = "<" + rcpt + ">: Recipient address rejected: User unknown"
	}
	enh := "5.1.1"
	if strings.HasPrefix(rep.Enhanced, "5.1.") {
		enh = rep.Enhanced
	}
	if cached {
		text += " (previously cached response)"
	}
	return Result{Status: Unknown, Reason: why, Code: 550, Enhanced: enh, Text: text}
}

// randomLocal is a local part no one has: the catch-all probe.
func randomLocal() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "nobounce-probe-" + hex.EncodeToString(b)
}

// Answer is a backend's answer about one address.
type Answer struct {
	Status Status
	Reply  Reply // the reply to RCPT TO, or to the command that ended the dialogue
	Err    error // the network or protocol error, if any
}

// Callout asks an SMTP server about each address in turn, in one session:
// greeting, EHLO (HELO if refused), MAIL FROM:<>, one RCPT TO per address,
// QUIT. The dialogue is bounded by ctx; connecting by connectTimeout. An
// address the dialogue did not get to, or that got a 4xx, is Unsure.
func Callout(ctx context.Context, addr sockaddr.Addr, helo string, connectTimeout time.Duration, rcpts []string) []Answer {
	ans := make([]Answer, len(rcpts))
	fail := func(from int, rep Reply, err error) []Answer {
		for i := from; i < len(ans); i++ {
			ans[i] = Answer{Status: Unsure, Reply: rep, Err: err}
		}
		return ans
	}
	cl, greet, err := Dial(ctx, addr, connectTimeout, nil)
	if err != nil {
		return fail(0, greet, fmt.Errorf("callout to %s: %w", addr, err))
	}
	ok := false
	defer func() {
		if ok {
			cl.Quit()
		} else {
			cl.Close()
		}
	}()
	rep, err := cl.Hello(ctx, helo)
	if err != nil || rep.Class() != 2 {
		return fail(0, rep, calloutErr(addr, "EHLO", rep, err))
	}
	rep, err = cl.Cmd(ctx, "MAIL FROM:<>")
	if err != nil || rep.Class() != 2 {
		return fail(0, rep, calloutErr(addr, "MAIL FROM:<>", rep, err))
	}
	for i, r := range rcpts {
		rep, err := cl.Cmd(ctx, "RCPT TO:<"+r+">")
		if err != nil || rep.Code == 421 {
			return fail(i, rep, calloutErr(addr, "RCPT TO", rep, err))
		}
		switch rep.Class() {
		case 2:
			ans[i] = Answer{Status: Exists, Reply: rep}
		case 5:
			ans[i] = Answer{Status: Unknown, Reply: rep}
		default:
			ans[i] = Answer{Status: Unsure, Reply: rep}
		}
	}
	ok = true
	return ans
}

func calloutErr(addr sockaddr.Addr, cmd string, rep Reply, err error) error {
	if err != nil {
		return fmt.Errorf("callout to %s: %s: %w", addr, cmd, err)
	}
	return fmt.Errorf("callout to %s: %s: %s", addr, cmd, rep)
}
