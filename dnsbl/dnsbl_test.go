package dnsbl

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nobounce/nobounce/dnsbl/dnstest"
)

func TestQueryName(t *testing.T) {
	tests := []struct {
		ip, zone, want string
	}{
		{"192.0.2.99", "bl.example", "99.2.0.192.bl.example."},
		{"127.0.0.1", "ips.backscatterer.org", "1.0.0.127.ips.backscatterer.org."},
		{"::ffff:192.0.2.1", "bl.example", "1.2.0.192.bl.example."},
		// RFC 5782 §2.4's example.
		{"2001:db8:1:2:3:4:567:89ab", "ugly.example.com",
			"b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com."},
	}
	for _, tt := range tests {
		if got := QueryName(net.ParseIP(tt.ip), tt.zone); got != tt.want {
			t.Errorf("QueryName(%s, %s) = %q, want %q", tt.ip, tt.zone, got, tt.want)
		}
	}
	if got := QueryName(net.IP{1, 2}, "x"); got != "" {
		t.Errorf("QueryName of a bad IP = %q", got)
	}
}

func TestLookup(t *testing.T) {
	dns := dnstest.Start(t, &dnstest.Server{
		Records: map[string]net.IP{
			"1.0.0.127.listed.test.":  net.IPv4(127, 0, 0, 2),
			"1.0.0.127.second.test.":  net.IPv4(127, 0, 0, 3),
			"1.0.0.127.wild.test.":    net.IPv4(192, 0, 2, 1),       // not a listing answer
			"1.0.0.127.refused.test.": net.IPv4(127, 255, 255, 254), // an error code
			"b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.listed.test.": net.IPv4(127, 0, 0, 2),
		},
		Fail: "broken.test",
	})
	tests := []struct {
		name   string
		zones  []string
		ip     string
		zone   string // "" = not listed
		errors bool
	}{
		{"listed", []string{"listed.test"}, "127.0.0.1", "listed.test", false},
		{"not listed", []string{"listed.test"}, "127.0.0.9", "", false},
		{"first listing zone in order wins", []string{"clean.test", "second.test", "listed.test"}, "127.0.0.1", "second.test", false},
		{"IPv6", []string{"listed.test"}, "2001:db8:1:2:3:4:567:89ab", "listed.test", false},
		{"answer outside 127/8", []string{"wild.test"}, "127.0.0.1", "", false},
		{"127.255.255.x is an error code", []string{"refused.test"}, "127.0.0.1", "", false},
		{"SERVFAIL fails open", []string{"broken.test"}, "127.0.0.1", "", true},
		{"SERVFAIL in one zone, listed in another", []string{"broken.test", "listed.test"}, "127.0.0.1", "listed.test", true},
		{"no zones", nil, "127.0.0.1", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(Options{Zones: tt.zones, Server: dns.Addr, Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			l, listed, err := c.Lookup(context.Background(), net.ParseIP(tt.ip))
			if listed != (tt.zone != "") || l.Zone != tt.zone {
				t.Errorf("Lookup = %+v, %v, want zone %q", l, listed, tt.zone)
			}
			if (err != nil) != tt.errors {
				t.Errorf("error %v, want error %v", err, tt.errors)
			}
		})
	}
}

func TestLookupDNSDown(t *testing.T) {
	silent := dnstest.Start(t, &dnstest.Server{Silent: true})
	c, err := New(Options{Zones: []string{"listed.test", "other.test"}, Server: silent.Addr, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, listed, err := c.Lookup(context.Background(), net.ParseIP("127.0.0.1"))
	if listed || err == nil {
		t.Errorf("Lookup with a silent server: listed %v, err %v; want not listed and an error", listed, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Lookup took %v with a 300ms timeout", d)
	}
	if silent.Queries() < 2 {
		t.Errorf("the server saw %d queries: both zones were not asked", silent.Queries())
	}
	// Nothing listens on the port at all.
	pc, _ := net.ListenPacket("udp", "127.0.0.1:0")
	gone := pc.LocalAddr().String()
	pc.Close()
	c, _ = New(Options{Zones: []string{"listed.test"}, Server: gone, Timeout: 300 * time.Millisecond})
	if _, listed, err := c.Lookup(context.Background(), net.ParseIP("127.0.0.1")); listed || err == nil {
		t.Errorf("Lookup with no server: listed %v, err %v", listed, err)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []Options{
		{Zones: []string{""}},
		{Zones: []string{"bad zone"}},
		{Zones: []string{"a..b"}},
		{Zones: []string{"-x.test"}},
		{Server: "dns.example:53"},
		{Server: "127.0.0.1:99999"},
		{Server: "127.0.0.1:x"},
	}
	for _, o := range tests {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted it", o)
		}
	}
	for _, s := range []string{"127.0.0.1", "127.0.0.1:5353", "[::1]:53", "::1"} {
		if _, err := ServerAddr(s); err != nil {
			t.Errorf("ServerAddr(%q): %v", s, err)
		}
	}
	c, err := New(Options{Zones: []string{"IPS.Backscatterer.ORG."}})
	if err != nil || c.Zones()[0] != "ips.backscatterer.org" {
		t.Errorf("zone not normalized: %v %v", c, err)
	}
}

func FuzzConfig(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "127.0.0.1:5353", "[::1]:53", "ips.backscatterer.org", "a..b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if a, err := ServerAddr(s); err == nil {
			if b, err := ServerAddr(a); err != nil || b != a {
				t.Fatalf("ServerAddr(%q) = %q, which gives %q, %v", s, a, b, err)
			}
		}
		if CheckZone(s) == nil {
			if q := QueryName(net.IPv4(192, 0, 2, 1), s); !strings.HasSuffix(q, "."+s+".") {
				t.Fatalf("QueryName in zone %q = %q", s, q)
			}
		}
	})
}
