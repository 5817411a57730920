package milter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/nobounce/nobounce/batv"
	"github.com/nobounce/nobounce/config"
	"github.com/nobounce/nobounce/dnsbl"
	"github.com/nobounce/nobounce/recipient"
)

// RecipientSettings are the envelope checks, answered during the SMTP
// dialogue so that nothing is accepted and bounced later:
//
//   - MAIL FROM: a bounce (null sender) from a client listed in a
//     backscatter blocklist gets 550 5.7.1 (Blocklist);
//   - RCPT TO, in this order: BATV (a bounce to a BATV domain must be
//     addressed to a valid signed return path, else 550 5.7.1), policy
//     groups (452 4.5.3 for a recipient of another group than the
//     transaction's first), the recipient check (550 5.1.1 unknown user,
//     451 4.4.3 can't verify now);
//   - end of an accepted message: BATV rewrites, with the envelope changes
//     of the milter protocol: the sender of mail from our own users is
//     signed (ChangeFrom), the recipient of a valid signed bounce is
//     unsigned (DeleteRecipient + AddRecipient).
//
// Each part is off when nil. Per-message state is none: what the checks need
// of the message so far (the sender, the recipients accepted, the client)
// is in the session's scan.Envelope, which session.go keeps per message and
// resets at every MAIL FROM; the group of the transaction is the group of
// its first accepted recipient, and the recipients to unsign are the
// accepted ones that carry a tag.
type RecipientSettings struct {
	Checker   *recipient.Checker
	Groups    *recipient.Groups
	Blocklist *dnsbl.Checker
	BATV      *BATVSettings
}

// BATVSettings are the BATV part of RecipientSettings.
type BATVSettings struct {
	Signer  *batv.Signer
	Domains map[string]bool // lower case
	// SignAuthenticated signs mail of SMTP-authenticated senders; Networks
	// lists the clients whose mail is signed in any case.
	SignAuthenticated bool
	Networks          []netip.Prefix
	// Exempt are the local parts (lower case) that take bounces without a
	// tag, such as postmaster.
	Exempt map[string]bool
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

func (b *BATVSettings) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

// ours reports whether addr belongs to one of the BATV domains.
func (b *BATVSettings) ours(addr string) bool {
	i := strings.LastIndexByte(addr, '@')
	return i >= 0 && b.Domains[strings.ToLower(addr[i+1:])]
}

func (b *BATVSettings) exempt(addr string) bool {
	i := strings.LastIndexByte(addr, '@')
	return i >= 0 && b.Exempt[strings.ToLower(addr[:i])]
}

// trusted reports whether the message's sender gets a signed return path.
func (b *BATVSettings) trusted(client, authUser string) bool {
	if b.SignAuthenticated && authUser != "" {
		return true
	}
	a, err := netip.ParseAddr(client)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range b.Networks {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Timeouts of the checks answered at MAIL FROM and RCPT TO, as a last
// bound: the checks have their own, shorter ones (config keeps them below
// the MTAs' 30s milter command timeout).
const envelopeCheckTimeout = 28 * time.Second

// mailDecision answers MAIL FROM; nil lets the transaction go on. A bounce
// from a client in a blocklist is refused. Authenticated clients are not
// looked up, and a failed lookup lets the mail through.
func (s *Session) mailDecision(from string, m *gomilter.Modifier) gomilter.Response {
	rs := &s.msg.settings.Recipient
	if from != "" || rs.Blocklist == nil || s.client == nil || s.msg.env.AuthUser != "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), envelopeCheckTimeout)
	defer cancel()
	start := time.Now()
	l, listed, err := rs.Blocklist.Lookup(ctx, s.client)
	if err != nil {
		s.srv.metrics.blocklistErrors.Inc()
		s.log.Warn("blocklist lookup failed: letting the bounce through", "client", ipString(s.client), "error", err.Error(),
			"ms", time.Since(start).Milliseconds())
	}
	if !listed {
		return nil
	}
	s.srv.metrics.blocklisted.Inc(l.Zone)
	text := fmt.Sprintf("Bounces from %s are refused: it is listed in %s (a list of servers that send backscatter)", ipString(s.client), l.Zone)
	s.log.Info("bounce refused at MAIL FROM", "client", ipString(s.client), "zone", l.Zone, "answer", l.Answer.String())
	return reply(550, "5.7.1", text)
}

// rcptDecision answers RCPT TO; nil accepts the recipient.
func (s *Session) rcptDecision(rcpt string, m *gomilter.Modifier) gomilter.Response {
	rs := &s.msg.settings.Recipient
	env := &s.msg.env
	plain := rcpt

	// BATV: a tagged address of ours is verified whoever the sender (an
	// autoresponder answers the return path too); an untagged one refuses
	// bounces only.
	if b := rs.BATV; b != nil && b.ours(rcpt) {
		switch {
		case batv.IsSigned(rcpt):
			p, err := b.Signer.Verify(rcpt, b.now())
			if err != nil {
				why := "no valid BATV signature"
				switch {
				case errors.Is(err, batv.ErrExpired):
					why = "its BATV signature has expired"
				case errors.Is(err, batv.ErrBadHash), errors.Is(err, batv.ErrUnknownKey):
					why = "its BATV signature is not ours"
				}
				s.srv.metrics.batv.Inc("refused")
				s.log.Info("rcpt refused", "rcpt", rcpt, "from", env.From, "reason", "batv-invalid", "error", err.Error())
				return reply(550, "5.7.1", "<"+rcpt+">: This address never sent the message you are answering: "+why)
			}
			s.srv.metrics.batv.Inc("verified")
			plain = p
		case env.From == "" && !b.exempt(rcpt):
			s.srv.metrics.batv.Inc("refused")
			s.log.Info("rcpt refused", "rcpt", rcpt, "from", "<>", "reason", "batv-missing")
			return reply(550, "5.7.1", "<"+rcpt+">: This address never sent the message you are bouncing: "+
				"its mail carries a BATV signature and this bounce has none")
		}
	}

	if rs.Groups != nil && len(env.Rcpts) > 0 {
		if g, first := rs.Groups.Of(plain), rs.Groups.Of(batv.Strip(env.Rcpts[0])); g != first {
			r := recipient.OtherGroup(rcpt)
			s.srv.metrics.checks.Inc("tempfail", string(r.Reason))
			s.log.Info("rcpt deferred", "rcpt", rcpt, "reason", r.Reason, "group", g, "transaction_group", first)
			return reply(r.Code, r.Enhanced, r.Text)
		}
	}

	if rs.Checker == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), envelopeCheckTimeout)
	defer cancel()
	start := time.Now()
	r := rs.Checker.Check(ctx, plain)
	attrs := []any{"rcpt", plain, "reason", r.Reason, "ms", time.Since(start).Milliseconds()}
	if r.Backend != "" {
		attrs = append(attrs, "backend", r.Backend)
	}
	if r.Detail != "" {
		attrs = append(attrs, "detail", r.Detail)
	}
	if r.Accept() {
		s.srv.metrics.checks.Inc("accept", string(r.Reason))
		if r.Reason != recipient.ReasonNotLocal {
			s.log.Debug("rcpt accepted", attrs...)
		}
		return nil
	}
	result := "reject"
	if r.Code/100 == 4 {
		result = "tempfail"
	}
	s.srv.metrics.checks.Inc(result, string(r.Reason))
	s.log.Info("rcpt refused", append(attrs, "reply", fmt.Sprintf("%d %s", r.Code, r.Enhanced))...)
	return reply(r.Code, r.Enhanced, r.Text)
}

// envelopeEdits applies envelope changes to an accepted message at the end
// of the message: the recipients of a signed bounce lose their tag (they
// were verified at RCPT TO), and the sender of our own users' mail gets one.
func (s *Session) envelopeEdits(m *gomilter.Modifier) error {
	b := s.msg.settings.Recipient.BATV
	if b == nil {
		return nil
	}
	env := &s.msg.env
	for _, r := range env.Rcpts {
		if !b.ours(r) || !batv.IsSigned(r) {
			continue
		}
		plain := batv.Strip(r)
		if plain == r {
			continue
		}
		if err := m.DeleteRecipient(r); err != nil {
			return fmt.Errorf("BATV: delete recipient %s: %w", r, err)
		}
		if err := m.AddRecipient(plain); err != nil {
			return fmt.Errorf("BATV: add recipient %s: %w", plain, err)
		}
		s.log.Debug("BATV: recipient unsigned", "rcpt", r, "to", plain)
	}
	if env.From == "" || !b.ours(env.From) || batv.IsSigned(env.From) || !b.trusted(env.ClientAddr, env.AuthUser) {
		return nil
	}
	signed := b.Signer.Sign(env.From, b.now())
	if signed == env.From {
		return nil
	}
	if err := m.ChangeFrom("<" + signed + ">"); err != nil {
		return fmt.Errorf("BATV: change sender to %s: %w", signed, err)
	}
	s.srv.metrics.batv.Inc("signed")
	s.log.Debug("BATV: sender signed", "from", env.From, "to", signed)
	return nil
}

// BuildRecipient turns a valid configuration into RecipientSettings. The
// recipient list is read now (an unreadable or bad file is an error, so a
// reload with it keeps the running settings). The callout cache is shared
// by every build with the same cache options, so that a reload keeps what
// was learnt.
func BuildRecipient(cfg config.Config, logger *slog.Logger, m *Metrics, caches *RecipientCaches) (RecipientSettings, error) {
	var rs RecipientSettings
	if m == nil {
		m = NewMetrics(nil)
	}
	if caches == nil {
		caches = &RecipientCaches{}
	}
	if logger == nil {
		logger = slog.Default()
	}
	rc := cfg.Recipient
	backends := rc.Backends()
	if len(rc.Domains) > 0 || len(backends) > 0 || rc.List != "" {
		var list *recipient.List
		if rc.List != "" {
			var err error
			if list, err = recipient.LoadList(rc.List, logger); err != nil {
				return rs, err
			}
		}
		helo := rc.HeloName
		if helo == "" {
			helo, _ = os.Hostname()
		}
		rs.Checker = recipient.New(recipient.Options{
			Domains:  rc.Domains,
			Backends: backends,
			List:     list,
			Cache: caches.get(recipient.CacheOptions{Size: rc.CacheSize, Positive: rc.PositiveTTL.Duration,
				Negative: rc.NegativeTTL.Duration, CatchAll: rc.CatchAllTTL.Duration}),
			Helo:           helo,
			ConnectTimeout: rc.ConnectTimeout.Duration,
			Timeout:        rc.Timeout.Duration,
			FailOpen:       rc.FailOpen(),
			CatchAllCheck:  rc.CatchAllCheck,
			Event:          func(e recipient.Event, _ string) { m.events.Inc(string(e)) },
			Logger:         logger.With("component", "recipient"),
		})
	}
	if g := rc.GroupMap(); len(g) > 0 {
		rs.Groups = recipient.NewGroups(g)
	}
	if bl := cfg.Blocklist; len(bl.Zones) > 0 {
		c, err := dnsbl.New(dnsbl.Options{Zones: bl.Zones, Server: bl.Server, Timeout: bl.Timeout.Duration})
		if err != nil {
			return rs, err
		}
		rs.Blocklist = c
	}
	if bc := cfg.BATV; len(bc.Domains) > 0 {
		signer, err := batv.New(bc.ParsedKeys(), bc.LifetimeDays)
		if err != nil {
			return rs, err
		}
		b := &BATVSettings{Signer: signer, Domains: map[string]bool{}, SignAuthenticated: bc.SignAuthenticated,
			Networks: bc.ParsedNetworks(), Exempt: map[string]bool{}}
		for _, d := range bc.Domains {
			b.Domains[strings.ToLower(d)] = true
		}
		for _, e := range bc.Exempt {
			b.Exempt[strings.ToLower(e)] = true
		}
		rs.BATV = b
	}
	return rs, nil
}

// RecipientCaches keeps one recipient.Cache per set of cache options for
// the life of the process, so that a reload keeps what was learnt (each
// cache owns a goroutine; see recipient.NewCache). The zero value is ready.
type RecipientCaches struct {
	mu sync.Mutex
	m  map[recipient.CacheOptions]*recipient.Cache
}

func (c *RecipientCaches) get(o recipient.CacheOptions) *recipient.Cache {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[recipient.CacheOptions]*recipient.Cache{}
	}
	if rc := c.m[o]; rc != nil {
		return rc
	}
	rc := recipient.NewCache(o)
	c.m[o] = rc
	return rc
}
