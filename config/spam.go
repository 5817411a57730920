package config

import (
	"math"
	"slices"
	"strings"
	"time"

	"github.com/nobounce/nobounce/scan/rspamd"
	"github.com/nobounce/nobounce/sockaddr"
	"github.com/nobounce/nobounce/verdict"
)

// Spamd is the [spamd] table: SpamAssassin's spamd, asked at the end of
// each message (SPAMC/1.5). Spam scanning is opt-in: with no address there
// is no spamd.
type Spamd struct {
	// Addresses of spamd servers, tried in order: "inet:127.0.0.1:783",
	// "unix:/run/spamd.sock". [] means no spamd. Default [].
	Addresses []string `toml:"addresses"`
	// Timeout bounds the scan at the end of the message, from the final
	// "." to spamd's answer, failover included. spamd takes about a second
	// on a large message. Default "60s".
	Timeout Duration `toml:"timeout"`
	// ConnectTimeout bounds connecting to one spamd. Default "5s".
	ConnectTimeout Duration `toml:"connect_timeout"`
	// MaxSize is the largest message sent to spamd; a larger one is not
	// spam-scanned ("X-Spam-Status: No, not scanned: too large"), and the
	// virus scan still runs. Same units as [scan] max_size. Default "1MiB".
	MaxSize Size `toml:"max_size"`
	// User is sent to spamd (SPAMC's User:) to choose whose preferences
	// apply; "" sends none. Default "".
	User string `toml:"user"`
	// TagAt is the score from which a message is delivered marked as spam
	// (X-Spam-Flag: YES); 0 means spamd's own required score (5 unless
	// spamd is configured otherwise); inf never tags. Default 0.
	TagAt float64 `toml:"tag_at"`
	// RejectAt is the score from which a message is refused with 550
	// 5.7.1; inf never rejects. Default 10.0.
	RejectAt float64 `toml:"reject_at"`
	// OnError is what a failed spam scan does to the message: tempfail
	// (451 4.7.1, the client retries) or accept ("X-Spam-Status: No, not
	// scanned: spamd error"). Default "tempfail".
	OnError string `toml:"on_error"`
	// ReceivedHeader puts in front of the message spamd gets the Received
	// field the MTA will add (the MTA does not show its own to milters):
	// the only way to tell SpamAssassin the client's address, HELO and
	// reverse name, for its relay, HELO and rDNS rules. Default true.
	ReceivedHeader bool `toml:"received_header"`
}

func defaultSpamd() Spamd {
	return Spamd{
		Addresses:      []string{},
		Timeout:        Duration{60 * time.Second},
		ConnectTimeout: Duration{5 * time.Second},
		MaxSize:        1 * MiB,
		User:           "",
		TagAt:          0,
		RejectAt:       10,
		OnError:        "tempfail",
		ReceivedHeader: true,
	}
}

func (x Spamd) validate(bad func(key, format string, args ...any)) {
	seen := make(map[sockaddr.Addr]bool)
	for i, a := range x.Addresses {
		addr, err := sockaddr.Parse(a)
		switch {
		case err != nil:
			bad("spamd.addresses", "element %d: %v", i+1, err)
		case seen[addr]:
			bad("spamd.addresses", "element %d: %q is listed twice", i+1, a)
		}
		seen[addr] = true
	}
	validateCommon(bad, "spamd", x.Timeout, x.ConnectTimeout, x.MaxSize, x.OnError)
	if x.User != "" && (strings.TrimSpace(x.User) != x.User || len(x.User) > 256 ||
		strings.ContainsFunc(x.User, func(r rune) bool { return r < 0x20 || r == 0x7f })) {
		bad("spamd.user", "%q: want printable characters without leading or trailing space, at most 256 bytes", x.User)
	}
	if math.IsNaN(x.TagAt) || x.TagAt < 0 {
		bad("spamd.tag_at", "must be 0 (spamd's required score) or more, got %v", x.TagAt)
	}
	if math.IsNaN(x.RejectAt) || x.RejectAt <= 0 {
		bad("spamd.reject_at", "must be more than 0 (inf never rejects), got %v", x.RejectAt)
	}
}

// OnErrorPolicy maps on_error onto the verdict's; anything but "accept" is
// tempfail.
func (x Spamd) OnErrorPolicy() verdict.OnError { return onErrorPolicy(x.OnError) }

// Rspamd is the [rspamd] table: rspamd's HTTP API (POST /checkv2 to its
// normal worker), asked at the end of each message. Opt-in: with no URL
// there is no rspamd.
type Rspamd struct {
	// URLs of rspamd's normal worker, tried in order, e.g.
	// "http://127.0.0.1:11333" (/checkv2 is appended). [] means no rspamd.
	// Default [].
	URLs []string `toml:"urls"`
	// Password, when not "", is sent in rspamd's Password header. Default "".
	Password string `toml:"password"`
	// Timeout bounds the scan at the end of the message, from the final
	// "." to rspamd's answer, failover included. Default "60s".
	Timeout Duration `toml:"timeout"`
	// ConnectTimeout bounds connecting to one rspamd. Default "5s".
	ConnectTimeout Duration `toml:"connect_timeout"`
	// MaxSize is the largest message sent to rspamd; a larger one is not
	// spam-scanned ("X-Spam-Status: No, not scanned: too large"), and the
	// virus scan still runs. rspamd copes with big messages (its own
	// limit, max_message, is 50 MiB). Default "10MiB".
	MaxSize Size `toml:"max_size"`
	// TagAt, when more than 0, is the score from which a message is
	// delivered marked as spam, instead of rspamd's "add header" and
	// "rewrite subject" actions. 0 leaves it to rspamd. Default 0.
	TagAt float64 `toml:"tag_at"`
	// RejectAt, when more than 0, is the score from which a message is
	// refused with 550 5.7.1, instead of rspamd's "reject" action. 0
	// leaves it to rspamd. Neither threshold overrides an action an rspamd
	// pre-filter forced (GTUBE, settings, force_actions) nor "soft reject"
	// (451 4.7.1). rspamd's "greylist" action is accepted, as rspamd's own
	// milter does. Default 0.
	RejectAt float64 `toml:"reject_at"`
	// OnError is what a failed spam scan does to the message: tempfail
	// (451 4.7.1) or accept ("X-Spam-Status: No, not scanned: rspamd
	// error"). Default "tempfail".
	OnError string `toml:"on_error"`
	// RewriteSubject, when rspamd's action is "rewrite subject", replaces
	// the message's Subject with the one rspamd proposes; otherwise such a
	// message is only tagged. Default false.
	RewriteSubject bool `toml:"rewrite_subject"`
}

func defaultRspamd() Rspamd {
	return Rspamd{
		URLs:           []string{},
		Password:       "",
		Timeout:        Duration{60 * time.Second},
		ConnectTimeout: Duration{5 * time.Second},
		MaxSize:        10 * MiB,
		TagAt:          0,
		RejectAt:       0,
		OnError:        "tempfail",
		RewriteSubject: false,
	}
}

func (x Rspamd) validate(bad func(key, format string, args ...any)) {
	seen := make(map[string]bool)
	for i, u := range x.URLs {
		parsed, err := rspamd.ParseURL(u)
		switch {
		case err != nil:
			bad("rspamd.urls", "element %d: %v", i+1, err)
		case seen[strings.TrimSuffix(parsed.String(), "/")]:
			bad("rspamd.urls", "element %d: %q is listed twice", i+1, u)
		default:
			seen[strings.TrimSuffix(parsed.String(), "/")] = true
		}
	}
	if strings.ContainsAny(x.Password, "\r\n\x00") {
		bad("rspamd.password", "contains a line break or NUL")
	}
	validateCommon(bad, "rspamd", x.Timeout, x.ConnectTimeout, x.MaxSize, x.OnError)
	for _, th := range []struct {
		key string
		v   float64
	}{{"rspamd.tag_at", x.TagAt}, {"rspamd.reject_at", x.RejectAt}} {
		if math.IsNaN(th.v) || th.v < 0 {
			bad(th.key, "must be 0 (rspamd's action decides) or more, got %v", th.v)
		}
	}
}

// OnErrorPolicy maps on_error onto the verdict's; anything but "accept" is
// tempfail.
func (x Rspamd) OnErrorPolicy() verdict.OnError { return onErrorPolicy(x.OnError) }

// validateCommon checks the keys every spam scanner has.
func validateCommon(bad func(key, format string, args ...any), table string, timeout, connect Duration, maxSize Size, onError string) {
	if timeout.Duration <= 0 {
		bad(table+".timeout", "must be more than 0s, got %v", timeout.Duration)
	}
	if connect.Duration <= 0 {
		bad(table+".connect_timeout", "must be more than 0s, got %v", connect.Duration)
	}
	if maxSize <= 0 {
		bad(table+".max_size", "must be more than 0 bytes, got %d", int64(maxSize))
	}
	if !slices.Contains(OnErrors, onError) {
		bad(table+".on_error", "unknown value %q (want one of: %s)", onError, strings.Join(OnErrors, ", "))
	}
}

func onErrorPolicy(s string) verdict.OnError {
	if s == "accept" {
		return verdict.OnErrorAccept
	}
	return verdict.OnErrorTempFail
}
