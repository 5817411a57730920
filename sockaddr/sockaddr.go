// Package sockaddr parses socket addresses written the way MTAs write milter
// sockets: Postfix's "unix:/path" and "inet:host:port", Sendmail's
// "local:/path" and "inet:port@host", and "inet6:[::1]:port".
package sockaddr

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Addr is a parsed socket address, ready for net.Dial or net.Listen.
type Addr struct {
	Network string // "unix" or "tcp"
	Address string // a path, or host:port
}

// String renders the address in Postfix's notation.
func (a Addr) String() string {
	if a.Network == "unix" {
		return "unix:" + a.Address
	}
	return "inet:" + a.Address
}

// Parse accepts "unix:/path", "local:/path", a bare "/path",
// "inet:host:port", "inet:port@host", "inet6:[::1]:port", "tcp:host:port"
// and a bare "host:port". A missing host in inet form means 127.0.0.1, never
// all interfaces: listening on the world must be asked for ("inet:0.0.0.0:port").
func Parse(s string) (Addr, error) {
	orig := s
	if s == "" {
		return Addr{}, fmt.Errorf("empty socket address")
	}
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || strings.HasPrefix(s, "/") {
		scheme, rest = "", s
	}
	switch strings.ToLower(scheme) {
	case "unix", "local":
		if rest == "" {
			return Addr{}, fmt.Errorf("socket address %q: empty path", orig)
		}
		return Addr{Network: "unix", Address: rest}, nil
	case "inet", "inet6", "tcp", "tcp4", "tcp6":
	case "":
		if strings.HasPrefix(rest, "/") {
			return Addr{Network: "unix", Address: rest}, nil
		}
	default:
		// "host:port" without a scheme: the first colon split it.
		if _, err := strconv.Atoi(rest); err == nil && !strings.Contains(rest, ":") {
			rest = s
			break
		}
		return Addr{}, fmt.Errorf("socket address %q: unknown type %q (want unix:, local:, inet: or inet6:)", orig, scheme)
	}
	host, port := "", ""
	if p, h, ok := strings.Cut(rest, "@"); ok {
		// Sendmail: inet:port@host
		host, port = h, p
	} else {
		var err error
		host, port, err = net.SplitHostPort(rest)
		if err != nil {
			return Addr{}, fmt.Errorf("socket address %q: %w", orig, err)
		}
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" || host == "localhost" {
		host = "127.0.0.1"
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return Addr{}, fmt.Errorf("socket address %q: bad port %q", orig, port)
	}
	return Addr{Network: "tcp", Address: net.JoinHostPort(host, strconv.Itoa(n))}, nil
}
