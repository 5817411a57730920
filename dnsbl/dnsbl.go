// Package dnsbl looks the SMTP client's IP address up in DNS blocklists
// (RFC 5782), for one purpose: refusing bounces (MAIL FROM:<>) from
// servers known to send backscatter, such as those listed in
// ips.backscatterer.org. A server that accepts mail and bounces it later
// sends its bounces from its own address; such lists name those addresses.
//
// The address 192.0.2.99 is looked up in zone bl.example as the A record of
// 99.2.0.192.bl.example. (an IPv6 address as its 32 nibbles in reverse,
// RFC 5782 §2.4). An answer in 127.0.0.0/8 means "listed", except
// 127.255.255.0/24, which lists such as Spamhaus use to report errors
// (refused queries), and which therefore means nothing. No such name
// (NXDOMAIN) means "not listed".
//
// Blocklists are advisory: a lookup that fails or times out counts as "not
// listed" (fail open), and the error is returned for the log.
package dnsbl

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a Checker.
type Options struct {
	// Zones are the blocklists' DNS zones, e.g. "ips.backscatterer.org".
	Zones []string
	// Server is the DNS server to ask, "host:port" or "host" (port 53);
	// "" asks the servers of /etc/resolv.conf.
	Server string
	// Timeout bounds a whole lookup (all zones at once); 0 = 5s.
	Timeout time.Duration
}

// Checker looks addresses up. It is safe for concurrent use.
type Checker struct {
	zones   []string
	timeout time.Duration
	res     *net.Resolver
	server  string
}

// New makes a Checker; an empty zone or a bad server address is an error.
func New(o Options) (*Checker, error) {
	c := &Checker{timeout: o.Timeout, res: &net.Resolver{PreferGo: true}}
	if c.timeout <= 0 {
		c.timeout = 5 * time.Second
	}
	for _, z := range o.Zones {
		z = strings.ToLower(strings.Trim(strings.TrimSpace(z), "."))
		if err := CheckZone(z); err != nil {
			return nil, err
		}
		c.zones = append(c.zones, z)
	}
	if o.Server != "" {
		server, err := ServerAddr(o.Server)
		if err != nil {
			return nil, err
		}
		c.server = server
		c.res.Dial = func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, server)
		}
	}
	return c, nil
}

// Zones returns the zones looked up, in order.
func (c *Checker) Zones() []string { return c.zones }

// ServerAddr checks a DNS server address, "host:port" or "host", and
// returns it as host:port.
func ServerAddr(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = strings.Trim(s, "[]"), "53"
	}
	if net.ParseIP(host) == nil {
		return "", fmt.Errorf("DNS server %q: want an IP address, optionally with a port (127.0.0.1:53)", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("DNS server %q: bad port %q", s, port)
	}
	return net.JoinHostPort(host, port), nil
}

// CheckZone says what is wrong with a zone name, or returns nil.
func CheckZone(z string) error {
	if z == "" || len(z) > 200 {
		return fmt.Errorf("blocklist zone %q: want a DNS name such as ips.backscatterer.org", z)
	}
	for _, label := range strings.Split(z, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") ||
			strings.ContainsFunc(label, func(r rune) bool {
				return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
			}) {
			return fmt.Errorf("blocklist zone %q: bad label %q", z, label)
		}
	}
	return nil
}

// QueryName is the DNS name to look ip up under in zone, with a final dot
// (so no search domain is ever appended).
func QueryName(ip net.IP, zone string) string {
	var b strings.Builder
	if v4 := ip.To4(); v4 != nil {
		for i := 3; i >= 0; i-- {
			b.WriteString(strconv.Itoa(int(v4[i])))
			b.WriteByte('.')
		}
	} else if v6 := ip.To16(); v6 != nil {
		const hexdigits = "0123456789abcdef"
		for i := 15; i >= 0; i-- {
			b.WriteByte(hexdigits[v6[i]&0xf])
			b.WriteByte('.')
			b.WriteByte(hexdigits[v6[i]>>4])
			b.WriteByte('.')
		}
	} else {
		return ""
	}
	b.WriteString(zone)
	b.WriteByte('.')
	return b.String()
}

// Listing says where an address is listed.
type Listing struct {
	Zone   string
	Answer net.IP // the A record, 127.0.0.x
}

// Lookup looks ip up in every zone at once and returns the listing of the
// first zone (in configuration order) that lists it. Errors (timeouts,
// SERVFAIL, a refused query) make that zone count as "not listed"; they are
// joined in err for the log, also when another zone lists the address.
func (c *Checker) Lookup(ctx context.Context, ip net.IP) (l Listing, listed bool, err error) {
	if len(c.zones) == 0 || ip == nil || ip.To16() == nil || ip.IsUnspecified() {
		return Listing{}, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	type result struct {
		ans net.IP
		err error
	}
	results := make([]result, len(c.zones))
	var wg sync.WaitGroup
	for i, z := range c.zones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i].ans, results[i].err = c.one(ctx, QueryName(ip, z))
		}()
	}
	wg.Wait()
	var errs []error
	for i, r := range results {
		if r.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.zones[i], r.err))
			continue
		}
		if r.ans != nil && !listed {
			l, listed = Listing{Zone: c.zones[i], Answer: r.ans}, true
		}
	}
	return l, listed, errors.Join(errs...)
}

// one returns the listing answer for one name, nil when not listed.
func (c *Checker) one(ctx context.Context, name string) (net.IP, error) {
	ips, err := c.res.LookupIP(ctx, "ip4", name)
	if err != nil {
		var de *net.DNSError
		if errors.As(err, &de) && de.IsNotFound {
			return nil, nil
		}
		return nil, err
	}
	for _, ip := range ips {
		if v4 := ip.To4(); v4 != nil && v4[0] == 127 && !(v4[1] == 255 && v4[2] == 255) {
			return v4, nil
		}
	}
	return nil, nil
}
