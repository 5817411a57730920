package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nobounce/nobounce/batv"
	"github.com/nobounce/nobounce/sockaddr"
)

func TestRecipientValues(t *testing.T) {
	doc := `
[recipient]
domains = ["example.com", "Example.ORG"]
list = "/etc/nobounce/recipients"
verify = ["example.com=inet:10.0.0.5:25", "other.test=mx.internal", "third.test=10.0.0.7:2525", "sm.test=inet:25@10.0.0.8"]
helo_name = "gw.example.com"
connect_timeout = "2s"
timeout = "10s"
on_error = "accept"
catchall_check = false
cache_size = 10
positive_ttl = "1h"
negative_ttl = "1m"
catchall_ttl = "2h"
groups = ["example.com=staff", "Boss@Example.com=vip"]

[batv]
domains = ["example.com"]
keys = ["1=new secret", "0=old=secret"]
lifetime_days = 10
sign_authenticated = false
networks = ["192.0.2.0/24", "2001:db8::1"]
exempt = ["postmaster", "abuse"]

[blocklist]
zones = ["ips.backscatterer.org"]
server = "127.0.0.1:5353"
timeout = "3s"
`
	c, err := Parse([]byte(doc), "r.toml")
	if err != nil {
		t.Fatal(err)
	}
	r := c.Recipient
	if !r.FailOpen() || r.CatchAllCheck || r.CacheSize != 10 || r.Timeout.Duration != 10*time.Second || r.NegativeTTL.Duration != time.Minute {
		t.Errorf("recipient = %+v", r)
	}
	wantBackends := map[string]sockaddr.Addr{
		"example.com": {Network: "tcp", Address: "10.0.0.5:25"},
		"other.test":  {Network: "tcp", Address: "mx.internal:25"},
		"third.test":  {Network: "tcp", Address: "10.0.0.7:2525"},
		"sm.test":     {Network: "tcp", Address: "10.0.0.8:25"},
	}
	if got := r.Backends(); !reflect.DeepEqual(got, wantBackends) {
		t.Errorf("Backends() = %v, want %v", got, wantBackends)
	}
	if got := r.GroupMap(); !reflect.DeepEqual(got, map[string]string{"example.com": "staff", "boss@example.com": "vip"}) {
		t.Errorf("GroupMap() = %v", got)
	}
	b := c.BATV
	wantKeys := []batv.Key{{Number: 1, Secret: []byte("new secret")}, {Number: 0, Secret: []byte("old=secret")}}
	if got := b.ParsedKeys(); !reflect.DeepEqual(got, wantKeys) {
		t.Errorf("ParsedKeys() = %v", got)
	}
	wantNets := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("2001:db8::1/128")}
	if got := b.ParsedNetworks(); !reflect.DeepEqual(got, wantNets) {
		t.Errorf("ParsedNetworks() = %v", got)
	}
	if b.LifetimeDays != 10 || b.SignAuthenticated || len(b.Exempt) != 2 {
		t.Errorf("batv = %+v", b)
	}
	if c.Blocklist.Server != "127.0.0.1:5353" || c.Blocklist.Timeout.Duration != 3*time.Second {
		t.Errorf("blocklist = %+v", c.Blocklist)
	}
}

func TestRecipientErrors(t *testing.T) {
	tests := []struct {
		doc  string
		want []string // one per problem, in order
	}{
		{"[recipient]\ndomains = [\"ok.test\", \"bad domain\", \"OK.test\"]",
			[]string{`recipient.domains: element 2: "bad domain" is not a domain name`, `recipient.domains: element 3: "OK.test" is listed twice`}},
		{"[recipient]\nverify = [\"example.com\", \"=inet:1.2.3.4:25\", \"x.test=unix:\", \"a.test=1.2.3.4:25\", \"A.test=1.2.3.4:26\", \"b.test=h:0\"]",
			[]string{
				`recipient.verify: element 1: "example.com": want DOMAIN=ADDR`,
				`recipient.verify: element 2: "=inet:1.2.3.4:25": want DOMAIN=ADDR`,
				`recipient.verify: element 3: "x.test=unix:": socket address "unix:": empty path`,
				`recipient.verify: element 5: domain a.test is given twice`,
				`recipient.verify: element 6: "b.test=h:0": socket address "h:0": bad port "0"`,
			}},
		{"[recipient]\ntimeout = \"30s\"", []string{"recipient.timeout: must be below 30s, got 30s"}},
		{"[recipient]\ntimeout = \"0s\"", []string{"recipient.timeout: must be more than 0s"}},
		{"[recipient]\nconnect_timeout = \"25s\"", []string{"recipient.connect_timeout: 25s is longer than recipient.timeout (20s)"}},
		{"[recipient]\non_error = \"reject\"", []string{`recipient.on_error: unknown value "reject" (want one of: tempfail, accept)`}},
		{"[recipient]\ncache_size = 0\npositive_ttl = \"0s\"\nnegative_ttl = \"-1s\"",
			[]string{"recipient.cache_size: must be more than 0", "recipient.positive_ttl: must be more than 0s", "recipient.negative_ttl: must be more than 0s"}},
		{"[recipient]\nhelo_name = \"bad name\"", []string{`recipient.helo_name: "bad name" is not a host name`}},
		{"[recipient]\ngroups = [\"example.com\", \"a b=x\", \"example.com=staff\", \"EXAMPLE.com=other\", \"x.test=bad group\", \"@x.test=g\"]",
			[]string{
				`recipient.groups: element 1: "example.com": want DOMAIN=GROUP or ADDRESS=GROUP`,
				`recipient.groups: element 2: "a b=x": "a b" is neither a domain nor an address`,
				`recipient.groups: element 4: example.com is given twice`,
				`recipient.groups: element 5: "x.test=bad group": group names are letters`,
				`recipient.groups: element 6: "@x.test=g": "@x.test" is neither a domain nor an address`,
			}},
		{"[batv]\ndomains = [\"example.com\"]", []string{"batv.keys: empty: batv.domains needs at least one key"}},
		{"[batv]\nkeys = [\"10=x\", \"1=\", \"2=" + strings.Repeat("s", 65) + "\", \"3=tab\there\", \"4=a\", \"4=b\", \"nosecret\"]",
			[]string{
				"batv.keys: element 1: want K=SECRET with K a digit 0-9",
				"batv.keys: element 2: the secret is 0 bytes long, want 1 to 64",
				"batv.keys: element 3: the secret is 65 bytes long, want 1 to 64",
				"batv.keys: element 4: the secret must be printable ASCII",
				"batv.keys: element 6: key number 4 is given twice",
				"batv.keys: element 7: want K=SECRET",
			}},
		{"[batv]\nlifetime_days = 0", []string{"batv.lifetime_days: must be from 1 to 365, got 0"}},
		{"[batv]\nnetworks = [\"10.0.0.0/33\"]\nexempt = [\"a@b\", \"\"]\ndomains = [\"x..y\"]\nkeys = [\"0=k\"]",
			[]string{
				"batv.networks: element 1:", // in file order
				`batv.exempt: element 1: "a@b": want a local part`,
				`batv.exempt: element 2: "": want a local part`,
				`batv.domains: element 1: "x..y" is not a domain name`,
			}},
		{"[blocklist]\nzones = [\"ok.test\", \"bad zone\"]\nserver = \"dns.example\"\ntimeout = \"31s\"",
			[]string{
				`blocklist.zones: element 2: blocklist zone "bad zone": bad label "bad zone"`,
				`blocklist.server: DNS server "dns.example": want an IP address`,
				"blocklist.timeout: must be below 30s",
			}},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.doc), "t.toml")
		if err == nil {
			t.Errorf("Parse(%q) accepted it", tt.doc)
			continue
		}
		got := strings.Split(err.Error(), "\n")
		if len(got) != len(tt.want) {
			t.Errorf("Parse(%q): %d problems, want %d:\n%v", tt.doc, len(got), len(tt.want), err)
			continue
		}
		for i, w := range tt.want {
			// Strip "t.toml:N: " in front.
			_, line, _ := strings.Cut(got[i], ": ")
			if !strings.HasPrefix(line, w) {
				t.Errorf("Parse(%q): problem %d\n got %q\nwant %q...", tt.doc, i+1, line, w)
			}
		}
		if strings.Contains(err.Error(), "new secret") || strings.Contains(err.Error(), "sss") {
			t.Errorf("an error shows a secret: %v", err)
		}
	}
}

func TestParseVerify(t *testing.T) {
	tests := []struct {
		in     string
		domain string
		addr   string
		err    bool
	}{
		{"example.com=inet:127.0.0.1:2525", "example.com", "127.0.0.1:2525", false},
		{" Example.COM = 127.0.0.1:25 ", "example.com", "127.0.0.1:25", false},
		{"example.com=mx.internal", "example.com", "mx.internal:25", false},
		{"example.com=inet6:[::1]:25", "example.com", "[::1]:25", false},
		{"example.com=inet:25@10.0.0.1", "example.com", "10.0.0.1:25", false},
		{"example.com", "", "", true},
		{"example.com=", "", "", true},
		{"=127.0.0.1:25", "", "", true},
		{"exa mple.com=127.0.0.1:25", "", "", true},
		{"example.com=bogus:x", "", "", true},
	}
	for _, tt := range tests {
		d, a, err := ParseVerify(tt.in)
		if (err != nil) != tt.err || d != tt.domain || !tt.err && a.Address != tt.addr {
			t.Errorf("ParseVerify(%q) = %q, %v, %v; want %q, %q, error %v", tt.in, d, a, err, tt.domain, tt.addr, tt.err)
		}
	}
}

func FuzzParseVerify(f *testing.F) {
	for _, s := range []string{"example.com=inet:127.0.0.1:2525", "a=b", "x.test=mx", "=", "a=unix:/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, a, err := ParseVerify(s)
		if err != nil {
			return
		}
		// What parses is a valid domain and an address that parses again.
		d2, a2, err := ParseVerify(d + "=" + a.String())
		if err != nil || d2 != d || a2 != a {
			t.Fatalf("ParseVerify(%q) = %q, %v; again: %q, %v, %v", s, d, a, d2, a2, err)
		}
	})
}
