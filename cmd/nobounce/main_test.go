package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCmd(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		out  string // in stdout or stderr
	}{
		{nil, exitError, "usage:"},
		{[]string{"frobnicate"}, exitError, `unknown command "frobnicate"`},
		{[]string{"help"}, exitOK, "nobounce serve"},
		{[]string{"version"}, exitOK, "nobounce 0."},
		{[]string{"--version"}, exitOK, "nobounce 0."},
		{[]string{"config"}, exitError, "usage: nobounce config check FILE"},
		{[]string{"scan"}, exitError, "usage: nobounce scan"},
		{[]string{"serve", "-nosuchflag"}, exitError, "flag provided but not defined"},
		{[]string{"serve", "extra"}, exitError, `unexpected argument "extra"`},
		{[]string{"serve", "-listen", "ftp:nowhere"}, exitError, `unknown type "ftp"`},
		{[]string{"serve", "--clamd", "inet:127.0.0.1:0"}, exitError, "bad port"},
	}
	for _, tt := range tests {
		code, out, errOut := runCmd(tt.args...)
		if code != tt.code || !strings.Contains(out+errOut, tt.out) {
			t.Errorf("nobounce %q: exit %d, output %q; want exit %d with %q", tt.args, code, out+errOut, tt.code, tt.out)
		}
	}
}

func TestConfigCheck(t *testing.T) {
	good := writeFile(t, "good.toml", "listen = \"unix:/run/nobounce/milter.sock\"\n[clamd]\naddresses = [\"inet:3310@127.0.0.1\"]\n")
	code, out, _ := runCmd("config", "check", good)
	if code != exitOK || !strings.Contains(out, "OK") || !strings.Contains(out, "unix:/run/nobounce/milter.sock") {
		t.Errorf("good file: exit %d, %q", code, out)
	}
	bad := writeFile(t, "bad.toml", "max_sessions = 0\neom_timeout = \"5m\"\n[clamd]\non_error = \"ignore\"\n")
	code, _, errOut := runCmd("config", "check", bad)
	if code != exitError {
		t.Errorf("bad file: exit %d, want %d", code, exitError)
	}
	// Every problem at once, each with its line.
	for _, want := range []string{"bad.toml:1: max_sessions", "bad.toml:2: eom_timeout", "bad.toml:4: clamd.on_error"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("bad file: output lacks %q:\n%s", want, errOut)
		}
	}
	code, _, errOut = runCmd("config", "check", filepath.Join(t.TempDir(), "missing.toml"))
	if code != exitError || !strings.Contains(errOut, "missing.toml") {
		t.Errorf("missing file: exit %d, %q", code, errOut)
	}
}

func TestScanExitStatus(t *testing.T) {
	msg := writeFile(t, "m.eml", "From sender@remote.test Mon Nov 23 10:00:00 2026\nSubject: hi\n\nbody\n")
	noScanner := writeFile(t, "none.toml", "[clamd]\naddresses = []\n")
	tests := []struct {
		name  string
		args  []string
		code  int
		reply string
	}{
		{"no scanner configured", []string{"scan", "-config", noScanner, msg}, exitOK, "250 2.0.0"},
		{"clamd unreachable", []string{"scan", msg, "-clamd", "unix:" + filepath.Join(t.TempDir(), "none.sock")}, exitTempFail, "451 4.7.1"},
		{"flags after the file", []string{"scan", msg, "--clamd", "inet:127.0.0.1:1"}, exitTempFail, "451 4.7.1"},
	}
	for _, tt := range tests {
		code, out, errOut := runCmd(tt.args...)
		if code != tt.code || !strings.Contains(out, "reply:   "+tt.reply) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d and reply %s", tt.name, code, out, errOut, tt.code, tt.reply)
		}
	}
	code, _, errOut := runCmd("scan", filepath.Join(t.TempDir(), "missing.eml"))
	if code != exitError || !strings.Contains(errOut, "missing.eml") {
		t.Errorf("missing input: exit %d, %q", code, errOut)
	}
}

func TestCopyWireForm(t *testing.T) {
	long := strings.Repeat("x", 100<<10)
	tests := []struct {
		name, in, want string
	}{
		{"LF becomes CRLF", "Subject: a\n\nbody\n", "Subject: a\r\n\r\nbody\r\n"},
		{"CRLF kept", "Subject: a\r\n\r\nbody\r\n", "Subject: a\r\n\r\nbody\r\n"},
		{"mbox From line dropped", "From a@b Mon Nov 23 2026\nSubject: a\n\nFrom here on\n", "Subject: a\r\n\r\nFrom here on\r\n"},
		{"no final newline", "Subject: a\n\nlast", "Subject: a\r\n\r\nlast"},
		{"line longer than the buffer", "S: " + long + "\n", "S: " + long + "\r\n"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		if err := copyWireForm(&b, strings.NewReader(tt.in)); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if b.String() != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, trunc(b.String()), trunc(tt.want))
		}
	}
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
