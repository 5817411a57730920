// Package config reads nobounce's TOML configuration file into a validated
// Config with defaults.
//
// Parsing is strict: an unknown key, a value of the wrong type or out of
// range is an error, and every problem is reported at once, each with the
// file name and line ("nobounce.toml:12: clamd.on_error: ..."), so
// "nobounce config check FILE" shows the whole list. A key that is missing
// keeps its default; the defaults are documented next to each field and in
// examples/nobounce.toml, which must parse to exactly Default().
//
// Keys are matched exactly (lower case with underscores), unlike the TOML
// library's own decoder, which also accepts "Listen" for "listen".
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"time"

	"github.com/nobounce/nobounce/verdict"
)

// Config is the whole configuration.
type Config struct {
	// Listen is the milter socket the MTA connects to: "unix:/path" or
	// "local:/path", "inet:host:port" or "inet:port@host" (see package
	// sockaddr). A missing host means 127.0.0.1, never all interfaces.
	// Default "inet:127.0.0.1:10029".
	Listen string `toml:"listen"`
	// SocketMode is the permission of a unix socket, in octal. World-writable
	// (o+w) is an error: anyone on the host could then talk to the milter.
	// Ignored for inet sockets. Default "0660".
	SocketMode string `toml:"socket_mode"`
	// SocketGroup is the group given to a unix socket, e.g. "postfix"; ""
	// keeps the group of the process. Default "".
	SocketGroup string `toml:"socket_group"`
	// MaxSessions caps concurrent MTA connections; the SMTP client of one more
	// is answered 421 4.3.2 and retries later.
	// Must be > 0. Default 200.
	MaxSessions int `toml:"max_sessions"`
	// ReadTimeout is how long to wait for the MTA's next milter command,
	// including between messages of one SMTP session. Default "10m".
	ReadTimeout Duration `toml:"read_timeout"`
	// WriteTimeout bounds each write to the MTA. Default "30s".
	WriteTimeout Duration `toml:"write_timeout"`
	// DrainTimeout is how long SIGTERM waits for messages in flight before
	// closing their connections (the MTA then applies its own
	// milter_default_action). "0s" stops at once. Default "30s".
	DrainTimeout Duration `toml:"drain_timeout"`
	// EOMTimeout bounds the time from the end of a message (".") to
	// nobounce's reply; when it runs out the reply is 451 4.7.1. It must be
	// below the MTAs' own limit, 300s (Postfix milter_content_timeout,
	// Sendmail T=E:5m), so the reply is nobounce's and not the MTA's
	// default. Default "240s".
	EOMTimeout Duration `toml:"eom_timeout"`
	// LogLevel is one of debug, info, warn, error. Default "info".
	LogLevel string `toml:"log_level"`
	// LogFormat is text (key=value) or json. Default "text".
	LogFormat string `toml:"log_format"`
	// MetricsListen is the host:port of the HTTP server for /metrics
	// (Prometheus) and /healthz (every scanner reachable); "" = off. Keep
	// it on loopback: it says which scanners are down. Default "".
	MetricsListen string `toml:"metrics_listen"`

	Scan      Scan      `toml:"scan"`
	Clamd     Clamd     `toml:"clamd"`
	Spamd     Spamd     `toml:"spamd"`
	Rspamd    Rspamd    `toml:"rspamd"`
	MIME      MIME      `toml:"mime"`
	Recipient Recipient `toml:"recipient"`
	BATV      BATV      `toml:"batv"`
	Blocklist Blocklist `toml:"blocklist"`
	Headers   Headers   `toml:"headers"`
}

// Scan is the [scan] table: limits common to all scanners.
type Scan struct {
	// MaxSize is the largest message scanned. An integer is bytes; a string
	// takes a unit: "512k", "25MiB", "10MB" (k/K/KiB, M/MiB, G/GiB are
	// powers of 1024; KB, MB, GB powers of 1000; case does not matter).
	// Keep it at or below clamd's StreamMaxLength (clamd's default is 25M =
	// 25MiB), or clamd fails on big messages. Default "25MiB".
	MaxSize Size `toml:"max_size"`
	// Oversize is what happens to a message over MaxSize; it is never
	// scanned in part. reject (552 5.3.4), tempfail (451 4.7.1) or accept
	// (with "X-Virus-Status: Not scanned: message too large"). Default
	// "reject".
	Oversize string `toml:"oversize"`
	// SpamSkipAuthenticated skips the spam scanners (spamd, rspamd) for
	// senders who authenticated to the MTA ({auth_authen} set): the
	// customers' own mail. The virus scan and content rules always run.
	// Default true.
	SpamSkipAuthenticated bool `toml:"spam_skip_authenticated"`
	// SpamSkipNetworks skips the spam scanners for SMTP clients in these
	// networks (CIDR, e.g. "192.0.2.0/24", or single addresses): the
	// organisation's own hosts. Never the virus scan. Default [].
	SpamSkipNetworks []string `toml:"spam_skip_networks"`
}

// Clamd is the [clamd] table.
type Clamd struct {
	// Addresses of clamd servers, tried in order; [] means no clamd.
	// Default ["unix:/run/clamav/clamd.ctl"] (Debian's clamd socket).
	Addresses []string `toml:"addresses"`
	// Timeout bounds the wait for clamd's answer after the end of the message,
	// and each read or write while the message streams to clamd.
	// Default "60s".
	Timeout Duration `toml:"timeout"`
	// ConnectTimeout bounds connecting to one clamd. Default "5s".
	ConnectTimeout Duration `toml:"connect_timeout"`
	// OnError is what a failed scan does to the message: tempfail
	// (451 4.7.1, the client retries) or accept (with "X-Virus-Status:
	// Not scanned: clamd error"). Default "tempfail".
	OnError string `toml:"on_error"`
	// Reply is the text of the 550 5.7.1 reply to a virus; {virus} is
	// replaced by the (sanitized) name clamd gave. Printable ASCII, no '%'.
	// Default "Virus found: {virus}".
	Reply string `toml:"reply"`
}

// Headers is the [headers] table: what accepted mail is marked with.
type Headers struct {
	// Add turns the headers on; incoming copies of them are removed first.
	// Default true.
	Add bool `toml:"add"`
	// Scanned names the header saying who scanned the message, added only
	// when it was scanned clean; "" = don't add. Default "X-Virus-Scanned".
	Scanned string `toml:"scanned"`
	// Status names the header with the result ("Clean", "Not scanned: ...");
	// "" = don't add. Default "X-Virus-Status".
	Status string `toml:"status"`
}

// Enumerated values, in the order they are listed in error messages.
var (
	LogLevels  = []string{"debug", "info", "warn", "error"}
	LogFormats = []string{"text", "json"}
	Oversizes  = []string{"reject", "tempfail", "accept"}
	OnErrors   = []string{"tempfail", "accept"}
)

// Default is the configuration used for every key the file leaves out.
func Default() Config {
	p := verdict.DefaultPolicy()
	return Config{
		Listen:       "inet:127.0.0.1:10029",
		SocketMode:   "0660",
		SocketGroup:  "",
		MaxSessions:  200,
		ReadTimeout:  Duration{10 * time.Minute},
		WriteTimeout: Duration{30 * time.Second},
		DrainTimeout: Duration{30 * time.Second},
		EOMTimeout:   Duration{240 * time.Second},
		LogLevel:     "info",
		LogFormat:    "text",
		Scan: Scan{
			MaxSize:               25 * MiB,
			Oversize:              "reject",
			SpamSkipAuthenticated: true,
			SpamSkipNetworks:      []string{},
		},
		Clamd: Clamd{
			Addresses:      []string{"unix:/run/clamav/clamd.ctl"},
			Timeout:        Duration{60 * time.Second},
			ConnectTimeout: Duration{5 * time.Second},
			OnError:        "tempfail",
			Reply:          p.VirusText,
		},
		Spamd:     defaultSpamd(),
		Rspamd:    defaultRspamd(),
		MIME:      defaultMIME(),
		Recipient: defaultRecipient(),
		BATV:      defaultBATV(),
		Blocklist: defaultBlocklist(),
		Headers: Headers{
			Add:     p.AddHeaders,
			Scanned: p.ScannedHeader,
			Status:  p.StatusHeader,
		},
	}
}

// Load reads, parses and validates the file at path. On error the Config
// is not meant to be used.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		msg := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = pe.Err.Error() // the path is already in front
		}
		return Config{}, Errors{&Error{File: path, Msg: msg}}
	}
	return Parse(data, path)
}

// Policy maps the configuration onto the verdict policy. version goes into
// the Scanned header ("nobounce 0.1.0 with ClamAV"). Call it on a valid
// Config; unknown enum values map to the safe choice (reject).
func (c Config) Policy(version string) verdict.Policy {
	p := verdict.DefaultPolicy()
	p.VirusText = c.Clamd.Reply
	switch c.Scan.Oversize {
	case "tempfail":
		p.Oversize = verdict.OversizeTempFail
	case "accept":
		p.Oversize = verdict.OversizeAccept
	default:
		p.Oversize = verdict.OversizeReject
	}
	p.AddHeaders = c.Headers.Add
	p.ScannedHeader = c.Headers.Scanned
	p.StatusHeader = c.Headers.Status
	p.ScannedValue = "nobounce"
	if version != "" {
		p.ScannedValue += " " + version
	}
	if len(c.Clamd.Addresses) > 0 {
		p.ScannedValue += " with ClamAV"
	}
	return p
}

// OnErrorPolicy maps on_error onto the verdict's; anything but "accept" is
// tempfail.
func (c Clamd) OnErrorPolicy() verdict.OnError {
	if c.OnError == "accept" {
		return verdict.OnErrorAccept
	}
	return verdict.OnErrorTempFail
}

// SocketFileMode is SocketMode as a file mode (permission bits only).
func (c Config) SocketFileMode() (fs.FileMode, error) {
	return parseSocketMode(c.SocketMode)
}

// SpamSkipPrefixes parses SpamSkipNetworks; call it on a valid Config.
func (s Scan) SpamSkipPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, n := range s.SpamSkipNetworks {
		if p, err := parseNetwork(n); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// parseNetwork reads a CIDR prefix or a single address.
func parseNetwork(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither a network (CIDR) nor an address", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}
