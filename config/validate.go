package config

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nobounce/nobounce/sockaddr"
	"github.com/nobounce/nobounce/verdict"
)

// MTATimeout is when the MTAs give up waiting for a milter's reply at the
// end of a message: Postfix milter_content_timeout (300s) and Sendmail
// T=E:5m. eom_timeout must stay below it.
const MTATimeout = 300 * time.Second

// maxReply keeps a reply text, before {virus} is filled in, well inside
// RFC 5321's 512-octet reply line (§4.5.3.1.5).
const maxReply = 400

// Validate checks every value and reports every problem at once, as an
// Errors without file or line (use it after overriding values, e.g. from
// command-line flags; Parse and Load validate by themselves).
func (c *Config) Validate() error {
	var errs Errors
	c.validate(func(key, msg string) { errs = append(errs, &Error{Key: key, Msg: msg}) })
	return errs.orNil()
}

// validate reports each problem as the dotted key and a message.
func (c *Config) validate(report func(key, msg string)) {
	bad := func(key, format string, args ...any) { report(key, fmt.Sprintf(format, args...)) }
	enum := func(key, v string, allowed []string) {
		if !slices.Contains(allowed, v) {
			bad(key, "unknown value %q (want one of: %s)", v, strings.Join(allowed, ", "))
		}
	}
	positive := func(key string, d Duration) {
		if d.Duration <= 0 {
			bad(key, "must be more than 0s, got %v", d.Duration)
		}
	}

	if _, err := sockaddr.Parse(c.Listen); err != nil {
		bad("listen", "%v", err)
	}
	if _, err := parseSocketMode(c.SocketMode); err != nil {
		bad("socket_mode", "%v", err)
	}
	if strings.ContainsFunc(c.SocketGroup, func(r rune) bool { return r <= ' ' || r == ':' || r >= 0x7f }) {
		bad("socket_group", "bad group name %q", c.SocketGroup)
	}
	if c.MaxSessions <= 0 {
		bad("max_sessions", "must be more than 0, got %d", c.MaxSessions)
	}
	positive("read_timeout", c.ReadTimeout)
	positive("write_timeout", c.WriteTimeout)
	if c.DrainTimeout.Duration < 0 {
		bad("drain_timeout", "must not be negative, got %v", c.DrainTimeout.Duration)
	}
	positive("eom_timeout", c.EOMTimeout)
	if c.EOMTimeout.Duration >= MTATimeout {
		bad("eom_timeout", "must be below %v, got %v: Postfix (milter_content_timeout) and Sendmail (T=E:5m) give up on the milter at %v, and their default action would answer instead of nobounce",
			MTATimeout, c.EOMTimeout.Duration, MTATimeout)
	}
	enum("log_level", c.LogLevel, LogLevels)
	enum("log_format", c.LogFormat, LogFormats)
	if c.MetricsListen != "" {
		if _, port, err := net.SplitHostPort(c.MetricsListen); err != nil {
			bad("metrics_listen", "want host:port such as \"127.0.0.1:9329\": %v", err)
		} else if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			bad("metrics_listen", "bad port %q", port)
		}
	}

	if c.Scan.MaxSize <= 0 {
		bad("scan.max_size", "must be more than 0 bytes, got %d", int64(c.Scan.MaxSize))
	}
	enum("scan.oversize", c.Scan.Oversize, Oversizes)
	for i, n := range c.Scan.SpamSkipNetworks {
		if _, err := parseNetwork(n); err != nil {
			bad("scan.spam_skip_networks", "element %d: %v", i+1, err)
		}
	}

	seen := make(map[sockaddr.Addr]bool)
	for i, a := range c.Clamd.Addresses {
		addr, err := sockaddr.Parse(a)
		switch {
		case err != nil:
			bad("clamd.addresses", "element %d: %v", i+1, err)
		case seen[addr]:
			bad("clamd.addresses", "element %d: %q is listed twice", i+1, a)
		}
		seen[addr] = true
	}
	positive("clamd.timeout", c.Clamd.Timeout)
	positive("clamd.connect_timeout", c.Clamd.ConnectTimeout)
	enum("clamd.on_error", c.Clamd.OnError, OnErrors)
	if msg := checkReply(c.Clamd.Reply); msg != "" {
		bad("clamd.reply", "%s", msg)
	}

	c.Spamd.validate(bad)
	c.Rspamd.validate(bad)
	c.MIME.validate(bad)
	c.Recipient.validate(bad)
	c.BATV.validate(bad)
	c.Blocklist.validate(bad)

	for _, h := range []struct{ key, name string }{{"headers.scanned", c.Headers.Scanned}, {"headers.status", c.Headers.Status}} {
		if h.name != "" && !verdict.ValidHeaderName(h.name) {
			bad(h.key, "%q is not a header field name (RFC 5322 §3.6.8: printable ASCII without spaces or ':'; \"\" adds none)", h.name)
		}
	}
	if c.Headers.Scanned != "" && strings.EqualFold(c.Headers.Scanned, c.Headers.Status) {
		bad("headers.status", "%q is also headers.scanned", c.Headers.Status)
	}
}

// checkReply explains what is wrong with a reply text, or returns "".
func checkReply(s string) string {
	switch {
	case strings.TrimSpace(s) == "":
		return "empty: a reply must say something"
	case strings.ContainsAny(s, "\r\n"):
		return "contains a line break: a reply is one line"
	case strings.Contains(s, "%"):
		return "contains '%', which Postfix and Sendmail read as a format directive (it would be sent as \"" + verdict.PercentReplacement + "\")"
	case len(s) > maxReply:
		return fmt.Sprintf("longer than %d bytes: an SMTP reply line is at most 512 (RFC 5321 §4.5.3.1.5)", maxReply)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return fmt.Sprintf("byte %d is not printable ASCII (%#x): replies are 7-bit", i+1, s[i])
		}
	}
	return ""
}
