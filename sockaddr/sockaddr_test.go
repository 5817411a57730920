package sockaddr

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		network string
		address string
		err     string
	}{
		{"unix:/run/nobounce.sock", "unix", "/run/nobounce.sock", ""},
		{"local:/var/run/x.sock", "unix", "/var/run/x.sock", ""},
		{"/run/clamav/clamd.ctl", "unix", "/run/clamav/clamd.ctl", ""},
		{"inet:127.0.0.1:10029", "tcp", "127.0.0.1:10029", ""},
		{"inet:10029@127.0.0.1", "tcp", "127.0.0.1:10029", ""},
		{"inet:10029@localhost", "tcp", "127.0.0.1:10029", ""},
		{"inet:localhost:3310", "tcp", "127.0.0.1:3310", ""},
		{"inet::3310", "tcp", "127.0.0.1:3310", ""},
		{"inet6:[::1]:3310", "tcp", "[::1]:3310", ""},
		{"inet6:3310@[::1]", "tcp", "[::1]:3310", ""},
		{"tcp:192.0.2.1:783", "tcp", "192.0.2.1:783", ""},
		{"127.0.0.1:3310", "tcp", "127.0.0.1:3310", ""},
		{"inet:0.0.0.0:10029", "tcp", "0.0.0.0:10029", ""},
		{"", "", "", "empty"},
		{"unix:", "", "", "empty path"},
		{"inet:127.0.0.1", "", "", "missing port"},
		{"inet:127.0.0.1:99999", "", "", "bad port"},
		{"inet:127.0.0.1:x", "", "", "bad port"},
		{"ftp:/x", "", "", "unknown type"},
		{"inet:@127.0.0.1", "", "", "bad port"},
	}
	for _, tt := range tests {
		a, err := Parse(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Parse(%q) = %v, %v; want error containing %q", tt.in, a, err, tt.err)
			}
			continue
		}
		if err != nil || a.Network != tt.network || a.Address != tt.address {
			t.Errorf("Parse(%q) = %+v, %v; want %s %s", tt.in, a, err, tt.network, tt.address)
		}
	}
}

func TestStringRoundTrip(t *testing.T) {
	for _, in := range []string{"unix:/a/b", "inet:127.0.0.1:25", "inet:[::1]:25"} {
		a, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Parse(a.String())
		if err != nil || b != a {
			t.Errorf("%q → %q → %+v, %v", in, a.String(), b, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"unix:/x", "inet:1@h", "inet:[::1]:1", "local:", "a:b:c", "/p", "inet6:[:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		if a.Network != "unix" && a.Network != "tcp" {
			t.Fatalf("Parse(%q): network %q", s, a.Network)
		}
		if a.Address == "" {
			t.Fatalf("Parse(%q): empty address", s)
		}
	})
}
