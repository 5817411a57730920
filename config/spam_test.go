package config

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/nobounce/nobounce/verdict"
)

func TestParseSpam(t *testing.T) {
	tests := []struct {
		doc  string
		want func(*Config)
	}{
		{"[spamd]\naddresses = [\"inet:127.0.0.1:783\", \"unix:/run/spamd.sock\"]",
			func(c *Config) { c.Spamd.Addresses = []string{"inet:127.0.0.1:783", "unix:/run/spamd.sock"} }},
		// Floats: written as floats, as integers, as inf; exponents too.
		{"[spamd]\nreject_at = 12.5\ntag_at = 4", func(c *Config) { c.Spamd.RejectAt, c.Spamd.TagAt = 12.5, 4 }},
		{"[spamd]\nreject_at = 15", func(c *Config) { c.Spamd.RejectAt = 15 }},
		{"[spamd]\nreject_at = inf\ntag_at = +inf", func(c *Config) { c.Spamd.RejectAt, c.Spamd.TagAt = math.Inf(1), math.Inf(1) }},
		{"[spamd]\nreject_at = 1e1\ntag_at = 0.0", func(c *Config) { c.Spamd.RejectAt = 10 }},
		{"spamd.tag_at = 3_0", func(c *Config) { c.Spamd.TagAt = 30 }},
		{"[spamd]\nreceived_header = false", func(c *Config) { c.Spamd.ReceivedHeader = false }},
		{"[spamd]\nmax_size = \"512k\"\nuser = \"debian-spamd\"\non_error = \"accept\"\ntimeout = \"10s\"\nconnect_timeout = \"1s\"",
			func(c *Config) {
				c.Spamd.MaxSize, c.Spamd.User, c.Spamd.OnError = 512*KiB, "debian-spamd", "accept"
				c.Spamd.Timeout.Duration, c.Spamd.ConnectTimeout.Duration = 10*time.Second, time.Second
			}},
		{"[rspamd]\nurls = [\"http://127.0.0.1:11333\", \"https://rspamd.example.test/rspamd/\"]\npassword = \"q1\"",
			func(c *Config) {
				c.Rspamd.URLs = []string{"http://127.0.0.1:11333", "https://rspamd.example.test/rspamd/"}
				c.Rspamd.Password = "q1"
			}},
		{"[rspamd]\ntag_at = 6\nreject_at = 15.5\nrewrite_subject = true\nmax_size = 1048576\non_error = \"accept\"",
			func(c *Config) {
				c.Rspamd.TagAt, c.Rspamd.RejectAt, c.Rspamd.RewriteSubject = 6, 15.5, true
				c.Rspamd.MaxSize, c.Rspamd.OnError = MiB, "accept"
			}},
	}
	for _, tt := range tests {
		c, err := Parse([]byte(tt.doc), "t.toml")
		if err != nil {
			t.Errorf("Parse(%q):\n%v", tt.doc, err)
			continue
		}
		want := Default()
		tt.want(&want)
		if !reflect.DeepEqual(c, want) {
			t.Errorf("Parse(%q)\n got %+v %+v\nwant %+v %+v", tt.doc, c.Spamd, c.Rspamd, want.Spamd, want.Rspamd)
		}
	}
	// An integer that a float64 cannot hold exactly is refused, not rounded.
	if _, err := Parse([]byte("[spamd]\nreject_at = 9007199254740993"), "t.toml"); err == nil {
		t.Error("reject_at = 2^53+1 accepted")
	}
}

func TestSpamDefaults(t *testing.T) {
	c := Default()
	if len(c.Spamd.Addresses) != 0 || len(c.Rspamd.URLs) != 0 {
		t.Error("spam scanning is not opt-in")
	}
	if c.Spamd.RejectAt != 10 || c.Spamd.TagAt != 0 || c.Spamd.MaxSize != MiB || c.Rspamd.MaxSize != 10*MiB ||
		c.Rspamd.TagAt != 0 || c.Rspamd.RejectAt != 0 || c.Rspamd.RewriteSubject || !c.Spamd.ReceivedHeader {
		t.Errorf("defaults %+v %+v", c.Spamd, c.Rspamd)
	}
	for _, tt := range []struct {
		onError string
		want    verdict.OnError
	}{{"tempfail", verdict.OnErrorTempFail}, {"accept", verdict.OnErrorAccept}, {"", verdict.OnErrorTempFail}} {
		if got := (Spamd{OnError: tt.onError}).OnErrorPolicy(); got != tt.want {
			t.Errorf("Spamd on_error %q: %v", tt.onError, got)
		}
		if got := (Rspamd{OnError: tt.onError}).OnErrorPolicy(); got != tt.want {
			t.Errorf("Rspamd on_error %q: %v", tt.onError, got)
		}
	}
}
