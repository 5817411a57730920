package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/nobounce/nobounce/batv"
	"github.com/nobounce/nobounce/dnsbl"
	"github.com/nobounce/nobounce/sockaddr"
)

// MTACommandTimeout is when the MTAs give up waiting for a milter's reply to
// one SMTP command (Postfix milter_command_timeout 30s; the Sendmail example
// T=R:30s). Checks answered at MAIL FROM and RCPT TO must end before it.
const MTACommandTimeout = 30 * time.Second

// Recipient is the [recipient] table: recipients of the local domains are
// checked at RCPT TO, and unknown ones refused with 550 5.1.1 there, instead
// of being accepted and bounced later.
type Recipient struct {
	// Domains are the local domains: only their recipients are checked.
	// Every domain named in Verify is local too. Default [].
	Domains []string `toml:"domains"`
	// List is a file naming the addresses that exist, one a line:
	// "user@domain", "@domain" (every address of the domain) and
	// "!user@domain" (an exception to "@domain"); "#" starts a comment.
	// A domain the file mentions is decided by it. The file is read again
	// when it changes and on SIGHUP. "" = no list. Default "".
	List string `toml:"list"`
	// Verify gives, per domain, the SMTP server that holds its mailboxes,
	// which is asked about each recipient (a callout: EHLO, MAIL FROM:<>,
	// RCPT TO, QUIT): "DOMAIN=ADDR", ADDR written inet:host:port, host:port
	// or host (port 25). Its answer decides unless it accepts any address
	// (see catchall_check) or can't be asked; then the list decides if it
	// covers the domain. Default [].
	Verify []string `toml:"verify"`
	// HeloName is the name callouts greet backends with; "" = this host's
	// name. Default "".
	HeloName string `toml:"helo_name"`
	// ConnectTimeout bounds connecting to a backend. Default "5s".
	ConnectTimeout Duration `toml:"connect_timeout"`
	// Timeout bounds a whole callout. It must stay below the MTA's milter
	// command timeout (30s: Postfix milter_command_timeout, Sendmail T=R),
	// or the MTA answers instead of nobounce. Default "20s".
	Timeout Duration `toml:"timeout"`
	// OnError is the answer when the backend can't tell (down, 4xx,
	// timeout) and no list covers the domain: tempfail (451 4.4.3, the
	// client retries) or accept. Default "tempfail".
	OnError string `toml:"on_error"`
	// CatchAllCheck probes each backend with a random address (once per
	// catchall_ttl); a backend that accepts it gets no further callouts for
	// that domain, whose recipients go to the list or are accepted. Default true.
	CatchAllCheck bool `toml:"catchall_check"`
	// CacheSize bounds the callout cache: this many "exists" and this many
	// "unknown" answers. Must be > 0. Default 100000.
	CacheSize int `toml:"cache_size"`
	// PositiveTTL is how long "exists" is remembered. Default "168h".
	PositiveTTL Duration `toml:"positive_ttl"`
	// NegativeTTL is how long "unknown" is remembered; a remembered unknown
	// is answered "550 5.1.1 ... (previously cached response)".
	// Default "4h".
	NegativeTTL Duration `toml:"negative_ttl"`
	// CatchAllTTL is how long a backend's catch-all probe result is
	// remembered. Default "24h".
	CatchAllTTL Duration `toml:"catchall_ttl"`
	// Groups put recipients in policy groups, "KEY=GROUP" with KEY a domain
	// or an address (an address beats its domain); recipients not named are
	// in the default group. A recipient of another group than the first one
	// accepted in a transaction is answered 452 4.5.3 and sent again by the
	// client in a separate transaction. Default [].
	Groups []string `toml:"groups"`
}

func defaultRecipient() Recipient {
	return Recipient{
		Domains:        []string{},
		List:           "",
		Verify:         []string{},
		HeloName:       "",
		ConnectTimeout: Duration{5 * time.Second},
		Timeout:        Duration{20 * time.Second},
		OnError:        "tempfail",
		CatchAllCheck:  true,
		CacheSize:      100_000,
		PositiveTTL:    Duration{7 * 24 * time.Hour},
		NegativeTTL:    Duration{4 * time.Hour},
		CatchAllTTL:    Duration{24 * time.Hour},
		Groups:         []string{},
	}
}

func (x Recipient) validate(bad func(key, format string, args ...any)) {
	seen := map[string]bool{}
	for i, d := range x.Domains {
		switch {
		case !isDomainName(d):
			bad("recipient.domains", "element %d: %q is not a domain name", i+1, d)
		case seen[strings.ToLower(d)]:
			bad("recipient.domains", "element %d: %q is listed twice", i+1, d)
		}
		seen[strings.ToLower(d)] = true
	}
	if strings.ContainsAny(x.List, "\x00\r\n") {
		bad("recipient.list", "bad path %q", x.List)
	}
	verified := map[string]bool{}
	for i, v := range x.Verify {
		d, _, err := ParseVerify(v)
		switch {
		case err != nil:
			bad("recipient.verify", "element %d: %v", i+1, err)
		case verified[d]:
			bad("recipient.verify", "element %d: domain %s is given twice", i+1, d)
		}
		verified[d] = true
	}
	if x.HeloName != "" && !isDomainName(x.HeloName) {
		bad("recipient.helo_name", "%q is not a host name", x.HeloName)
	}
	if x.ConnectTimeout.Duration <= 0 {
		bad("recipient.connect_timeout", "must be more than 0s, got %v", x.ConnectTimeout.Duration)
	}
	switch {
	case x.Timeout.Duration <= 0:
		bad("recipient.timeout", "must be more than 0s, got %v", x.Timeout.Duration)
	case x.Timeout.Duration >= MTACommandTimeout:
		bad("recipient.timeout", "must be below %v, got %v: Postfix (milter_command_timeout) and Sendmail (T=R) give up on the milter's answer to RCPT TO at %v",
			MTACommandTimeout, x.Timeout.Duration, MTACommandTimeout)
	case x.ConnectTimeout.Duration > x.Timeout.Duration:
		bad("recipient.connect_timeout", "%v is longer than recipient.timeout (%v), which bounds the whole callout", x.ConnectTimeout.Duration, x.Timeout.Duration)
	}
	if !slices.Contains(OnErrors, x.OnError) {
		bad("recipient.on_error", "unknown value %q (want one of: %s)", x.OnError, strings.Join(OnErrors, ", "))
	}
	if x.CacheSize <= 0 {
		bad("recipient.cache_size", "must be more than 0, got %d", x.CacheSize)
	}
	for _, d := range []struct {
		key string
		v   Duration
	}{{"recipient.positive_ttl", x.PositiveTTL}, {"recipient.negative_ttl", x.NegativeTTL}, {"recipient.catchall_ttl", x.CatchAllTTL}} {
		if d.v.Duration <= 0 {
			bad(d.key, "must be more than 0s, got %v", d.v.Duration)
		}
	}
	if _, errs := parseGroups(x.Groups); len(errs) > 0 {
		for _, e := range errs {
			bad("recipient.groups", "%s", e)
		}
	}
}

// ParseVerify parses one element of recipient.verify (or a -verify flag),
// "DOMAIN=ADDR". The domain is returned in lower case; ADDR is a socket
// address as sockaddr.Parse reads it, or a host alone for port 25.
func ParseVerify(s string) (string, sockaddr.Addr, error) {
	domain, addr, ok := strings.Cut(s, "=")
	domain = strings.ToLower(strings.TrimSpace(domain))
	addr = strings.TrimSpace(addr)
	if !ok || domain == "" || addr == "" {
		return "", sockaddr.Addr{}, fmt.Errorf("%q: want DOMAIN=ADDR, e.g. \"example.com=inet:10.0.0.5:25\"", s)
	}
	if !isDomainName(domain) {
		return "", sockaddr.Addr{}, fmt.Errorf("%q: %q is not a domain name", s, domain)
	}
	if !strings.Contains(addr, ":") {
		addr += ":25"
	}
	a, err := sockaddr.Parse(addr)
	if err != nil {
		return "", sockaddr.Addr{}, fmt.Errorf("%q: %v", s, err)
	}
	return domain, a, nil
}

// Backends returns recipient.verify as a map from domain to backend. Call
// it on a valid Config.
func (x Recipient) Backends() map[string]sockaddr.Addr {
	m := map[string]sockaddr.Addr{}
	for _, v := range x.Verify {
		if d, a, err := ParseVerify(v); err == nil {
			m[d] = a
		}
	}
	return m
}

// GroupMap returns recipient.groups as a map from domain or address (lower
// case) to group. Call it on a valid Config.
func (x Recipient) GroupMap() map[string]string {
	m, _ := parseGroups(x.Groups)
	return m
}

// FailOpen reports whether recipients that can't be verified are accepted.
func (x Recipient) FailOpen() bool { return x.OnError == "accept" }

func parseGroups(entries []string) (map[string]string, []string) {
	m := map[string]string{}
	var errs []string
	for i, e := range entries {
		key, group, ok := strings.Cut(e, "=")
		key = strings.ToLower(strings.TrimSpace(key))
		group = strings.TrimSpace(group)
		domain := key
		if at := strings.LastIndexByte(key, '@'); at >= 0 {
			domain = key[at+1:]
			if at == 0 || strings.ContainsAny(key[:at], " \t\"") {
				domain = ""
			}
		}
		switch {
		case !ok || key == "" || group == "":
			errs = append(errs, fmt.Sprintf("element %d: %q: want DOMAIN=GROUP or ADDRESS=GROUP", i+1, e))
		case !isDomainName(domain):
			errs = append(errs, fmt.Sprintf("element %d: %q: %q is neither a domain nor an address", i+1, e, key))
		case !isGroupName(group):
			errs = append(errs, fmt.Sprintf("element %d: %q: group names are letters, digits, '-', '_' and '.'", i+1, e))
		case m[key] != "":
			errs = append(errs, fmt.Sprintf("element %d: %s is given twice", i+1, key))
		default:
			m[key] = group
		}
	}
	return m, errs
}

// BATV is the [batv] table: Bounce Address Tag Validation
// (draft-levine-smtp-batv-01, prvs). Mail from the BATV domains goes out
// with a signed return path; a bounce (null sender) to an address of those
// domains without a valid tag answers mail they never sent, and is refused
// with 550 5.7.1 at RCPT TO. Tags are compatible with Exim's ${prvs}.
type BATV struct {
	// Domains are the domains whose senders are signed and whose
	// recipients must get bounces only with a valid tag; [] turns BATV off.
	// Default [].
	Domains []string `toml:"domains"`
	// Keys are the secrets, "K=SECRET" with K a digit 0-9 and SECRET 1 to 64
	// printable characters. The first signs; all verify, so a new key goes
	// first and the old one stays listed for lifetime_days. Keep this file
	// unreadable to others (mode 0640 or 0600). Default [].
	Keys []string `toml:"keys"`
	// LifetimeDays is how many days a signed return path stays valid for
	// bounces, 1-365 (Exim: 7). Default 7.
	LifetimeDays int `toml:"lifetime_days"`
	// SignAuthenticated signs mail from SMTP-authenticated senders.
	// Default true.
	SignAuthenticated bool `toml:"sign_authenticated"`
	// Networks are client networks whose mail is signed too, "192.0.2.0/24"
	// or a single address. Default [].
	Networks []string `toml:"networks"`
	// Exempt are local parts that take bounces without a tag (RFC 5321
	// §4.5.1 wants postmaster to accept mail). Default ["postmaster"].
	Exempt []string `toml:"exempt"`
}

func defaultBATV() BATV {
	return BATV{
		Domains:           []string{},
		Keys:              []string{},
		LifetimeDays:      7,
		SignAuthenticated: true,
		Networks:          []string{},
		Exempt:            []string{"postmaster"},
	}
}

func (x BATV) validate(bad func(key, format string, args ...any)) {
	for i, d := range x.Domains {
		if !isDomainName(d) {
			bad("batv.domains", "element %d: %q is not a domain name", i+1, d)
		}
	}
	if _, errs := parseKeys(x.Keys); len(errs) > 0 {
		for _, e := range errs {
			bad("batv.keys", "%s", e)
		}
	}
	if len(x.Domains) > 0 && len(x.Keys) == 0 {
		bad("batv.keys", "empty: batv.domains needs at least one key to sign with")
	}
	if x.LifetimeDays < 1 || x.LifetimeDays > batv.MaxLifetime {
		bad("batv.lifetime_days", "must be from 1 to %d, got %d", batv.MaxLifetime, x.LifetimeDays)
	}
	for i, n := range x.Networks {
		if _, err := parseNetwork(n); err != nil {
			bad("batv.networks", "element %d: %v", i+1, err)
		}
	}
	for i, e := range x.Exempt {
		if e == "" || strings.ContainsAny(e, "@ \t\"") {
			bad("batv.exempt", "element %d: %q: want a local part such as \"postmaster\"", i+1, e)
		}
	}
}

// ParsedKeys returns batv.keys for batv.New. Call it on a valid Config.
func (x BATV) ParsedKeys() []batv.Key {
	k, _ := parseKeys(x.Keys)
	return k
}

// ParsedNetworks returns batv.networks. Call it on a valid Config.
func (x BATV) ParsedNetworks() []netip.Prefix {
	var ps []netip.Prefix
	for _, n := range x.Networks {
		if p, err := parseNetwork(n); err == nil {
			ps = append(ps, p)
		}
	}
	return ps
}

// parseKeys reads "K=SECRET" entries. Errors never show a secret.
func parseKeys(entries []string) ([]batv.Key, []string) {
	var keys []batv.Key
	var errs []string
	seen := map[int]bool{}
	for i, e := range entries {
		k, secret, ok := strings.Cut(e, "=")
		switch {
		case !ok || len(k) != 1 || k[0] < '0' || k[0] > '9':
			errs = append(errs, fmt.Sprintf("element %d: want K=SECRET with K a digit 0-9", i+1))
		case len(secret) == 0 || len(secret) > batv.MaxSecret:
			errs = append(errs, fmt.Sprintf("element %d: the secret is %d bytes long, want 1 to %d", i+1, len(secret), batv.MaxSecret))
		case strings.ContainsFunc(secret, func(r rune) bool { return r < 0x20 || r > 0x7e }):
			errs = append(errs, fmt.Sprintf("element %d: the secret must be printable ASCII", i+1))
		case seen[int(k[0]-'0')]:
			errs = append(errs, fmt.Sprintf("element %d: key number %s is given twice", i+1, k))
		default:
			seen[int(k[0]-'0')] = true
			keys = append(keys, batv.Key{Number: int(k[0] - '0'), Secret: []byte(secret)})
		}
	}
	return keys, errs
}

// Blocklist is the [blocklist] table: bounces (MAIL FROM:<>) from clients
// listed in these DNS zones are refused with 550 5.7.1 at MAIL FROM. The
// usual list is ips.backscatterer.org, of servers that send backscatter.
// A lookup that fails or times out lets the mail through.
type Blocklist struct {
	// Zones are the DNS blocklists, e.g. ["ips.backscatterer.org"]; []
	// turns the check off. Default [].
	Zones []string `toml:"zones"`
	// Server is the DNS server asked, "IP" or "IP:PORT"; "" = those of
	// /etc/resolv.conf. Default "".
	Server string `toml:"server"`
	// Timeout bounds a lookup (all zones at once); below 30s, the MTA's
	// milter command timeout. Default "5s".
	Timeout Duration `toml:"timeout"`
}

func defaultBlocklist() Blocklist {
	return Blocklist{Zones: []string{}, Server: "", Timeout: Duration{5 * time.Second}}
}

func (x Blocklist) validate(bad func(key, format string, args ...any)) {
	for i, z := range x.Zones {
		if err := dnsbl.CheckZone(strings.Trim(z, ".")); err != nil {
			bad("blocklist.zones", "element %d: %v", i+1, err)
		}
	}
	if x.Server != "" {
		if _, err := dnsbl.ServerAddr(x.Server); err != nil {
			bad("blocklist.server", "%v", err)
		}
	}
	switch {
	case x.Timeout.Duration <= 0:
		bad("blocklist.timeout", "must be more than 0s, got %v", x.Timeout.Duration)
	case x.Timeout.Duration >= MTACommandTimeout:
		bad("blocklist.timeout", "must be below %v (the MTA's milter command timeout), got %v", MTACommandTimeout, x.Timeout.Duration)
	}
}

// isDomainName checks a domain name loosely: labels of letters, digits,
// '-' and '_', separated by dots.
func isDomainName(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if l == "" || len(l) > 63 || strings.ContainsFunc(l, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
		}) {
			return false
		}
	}
	return true
}

func isGroupName(s string) bool {
	return s != "" && len(s) <= 64 && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	})
}
