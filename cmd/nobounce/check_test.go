package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"strings"
	"testing"

	"github.com/nobounce/nobounce/config"
	"github.com/nobounce/nobounce/recipient/smtptest"
)

func runCheck(args ...string) (int, string, string) {
	var o, e bytes.Buffer
	code := checkCmd(args, &o, &e)
	return code, o.String(), e.String()
}

func TestCheckCmd(t *testing.T) {
	users := []string{"postmaster@example.test", "alice@example.test"}
	c3 := smtptest.Start(t, smtptest.Config{Users: users})
	c2 := smtptest.Start(t, smtptest.Config{Users: users, RejectData: true})
	c1 := smtptest.Start(t, smtptest.Config{CatchAll: true})
	grey := smtptest.Start(t, smtptest.Config{RcptTempFail: true})
	tests := []struct {
		name string
		args []string
		code int
		want []string // in stdout, in order
	}{
		{"C3", []string{"--domain", "example.test", c3.Addr.Address}, exitCheckC3,
			[]string{"nobounce check of " + c3.Addr.Address + " for example.test", "> MAIL FROM:<>",
				"postmaster: 250", "unknown:    RCPT TO:<nobounce-check-", "@example.test> 550 5.1.1", "class:      C3: mail for a user that does not exist is refused at RCPT TO",
				"What to do:", "Nothing to change"}},
		{"C1 without --data", []string{"--domain", "example.test", c2.Addr.Address}, exitCheckC1,
			[]string{"after DATA: not tested (add --data to tell C2 from C1)", "class:      C1:"}},
		{"C2", []string{"--data", "--domain", "example.test", c2.Addr.Address}, exitCheckC2,
			[]string{"after DATA: 550 5.1.1", "class:      C2: ", "smtpd_reject_unlisted_recipient"}},
		{"C1 with --data", []string{c1.Addr.Address, "--domain", "example.test", "--data"}, exitCheckC1,
			[]string{"after DATA: 250", "class:      C1: mail for a user that does not exist is accepted", "[recipient] verify"}},
		{"could not tell", []string{"--domain", "example.test", grey.Addr.Address}, exitCheckUnknown,
			[]string{"class:      could not tell: a temporary failure"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCheck(tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tt.code, out, errOut)
			}
			rest := out
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Errorf("output lacks %q (in order):\n%s", w, out)
					break
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

func TestCheckCmdJSON(t *testing.T) {
	c2 := smtptest.Start(t, smtptest.Config{Users: []string{"postmaster@example.test"}, RejectData: true})
	code, out, _ := runCheck("--json", "--data", "--domain", "Example.TEST", c2.Addr.Address)
	if code != exitCheckC2 {
		t.Errorf("exit %d", code)
	}
	var r map[string]any
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if r["class"] != "C2" || r["domain"] != "example.test" || r["data_tested"] != true ||
		!strings.HasPrefix(r["probe_data"].(string), "550 5.1.1") || len(r["advice"].([]any)) == 0 || len(r["transcript"].([]any)) < 10 {
		t.Errorf("report %v", r)
	}
}

func TestCheckCmdUsage(t *testing.T) {
	tests := [][]string{
		nil,
		{"127.0.0.1"},                          // no --domain
		{"--domain", "example.test"},           // no host
		{"--domain", "example.test", "a", "b"}, // two hosts
		{"--domain", "user@example.test", "127.0.0.1"}, // an address, not a domain
		{"--domain", "example.test", "host:notaport"},
		{"--nosuchflag"},
	}
	for _, args := range tests {
		if code, _, errOut := runCheck(args...); code != exitError || errOut == "" {
			t.Errorf("check %q: exit %d, stderr %q; want %d with a message", args, code, errOut, exitError)
		}
	}
}

func TestVerifyFlag(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var v verifyFlag
	fs.Var(&v, "verify", verifyUsage)
	if err := fs.Parse([]string{"-verify", "example.test=inet:127.0.0.1:2525", "--verify", "other.test=mx.internal"}); err != nil {
		t.Fatal(err)
	}
	c := config.Default()
	c.Recipient.Verify = []string{"old.test=inet:10.0.0.1:25"}
	v.apply(&c)
	if got := strings.Join(c.Recipient.Verify, " "); got != "example.test=inet:127.0.0.1:2525 other.test=mx.internal" {
		t.Errorf("verify after the flags = %q: want the flags to replace the file's list", got)
	}
	if err := c.Validate(); err != nil {
		t.Error(err)
	}
	// No flag: the file's list stays.
	c = config.Default()
	c.Recipient.Verify = []string{"old.test=inet:10.0.0.1:25"}
	verifyFlag(nil).apply(&c)
	if len(c.Recipient.Verify) != 1 {
		t.Errorf("no flag changed the list: %q", c.Recipient.Verify)
	}
	for _, bad := range []string{"example.test", "example.test=", "=127.0.0.1:25", "example.test=ftp:x"} {
		if err := fs.Parse([]string{"-verify", bad}); err == nil {
			t.Errorf("-verify %q accepted", bad)
		}
	}
}
