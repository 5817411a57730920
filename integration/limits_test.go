//go:build integration

package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A '%' in a virus name: seen here, Postfix turns "%s" in a milter reply
// into "s" and Sendmail drops the whole reply for "554 5.7.1 Command
// rejected". The client must get our 550 with the name made harmless.
func TestPercentInVirusName(t *testing.T) {
	for _, m := range env.mtas {
		t.Run(m.name, func(t *testing.T) {
			logsOnFailure(t, m)
			tok := token("percent")
			tr := swaks(t, m, "--header", "Subject: percent "+tok,
				"--body", "Hello,\n\nNOBOUNCE-PERCENT-SIGNATURE-TEST\n")
			reply := dataReply(tr)
			want := "550 5.7.1 Virus found: Nobounce.Test.Percentpct" + "sName.UNOFFICIAL"
			if reply != want {
				t.Fatalf("reply %q, want %q\n%s", reply, want, tr)
			}
			recordRefused(m, tok)
		})
	}
}

// nobounceScan runs `nobounce scan` and returns its exit status and output.
func nobounceScan(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(env.bin, append([]string{"scan"}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

func writeMessage(t *testing.T, name string, bodySize int, body string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("From: sender@remote.test\nTo: alice@example.test\nSubject: " + name + "\n\n" + body)
	line := strings.Repeat("0123456789abcdef", 4) + "\n"
	for b.Len() < bodySize {
		b.WriteString(line)
	}
	p := filepath.Join(t.TempDir(), name+".eml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// `nobounce scan` is the milter's pipeline on a file, with a documented
// exit status.
func TestScanCommand(t *testing.T) {
	clamd := "unix:" + env.sock
	tests := []struct {
		name  string
		file  string
		code  int
		reply string
	}{
		{"eicar", writeMessage(t, "eicar", 0, eicar+"\n"), 1, "550 5.7.1 Virus found: Nobounce.Test.EICAR.UNOFFICIAL"},
		{"clean", writeMessage(t, "clean", 4096, "hello\n"), 0, "250 2.0.0"},
		{"clam.exe in a mail", "/usr/share/clamav-testfiles/clam.exe.mbox.base64", 1, "550 5.7.1 Virus found: Nobounce.Test.ClamExe.UNOFFICIAL"},
	}
	for _, tt := range tests {
		code, out := nobounceScan(t, "-clamd", clamd, tt.file)
		if code != tt.code || !strings.Contains(out, "reply:   "+tt.reply) {
			t.Errorf("%s: exit %d, want %d with reply %q:\n%s", tt.name, code, tt.code, tt.reply, out)
		}
	}
}

// Over clamd's StreamMaxLength: clamd refuses the stream, and that is a
// temporary failure, never a pass. Over nobounce's own max_size: the
// configured policy, never a truncated scan.
func TestSizeLimits(t *testing.T) {
	small := filepath.Join(env.root, "clamd-small")
	cmd := exec.Command("bash", filepath.Join(env.repo, "testbed", "clamd.sh"), "start", small)
	cmd.Env = append(os.Environ(), "CLAMD_STREAM_MAX=1M")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("second clamd: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("bash", filepath.Join(env.repo, "testbed", "clamd.sh"), "stop", small).Run() })
	big := writeMessage(t, "big", 2<<20, "two megabytes\n")

	code, out := nobounceScan(t, "-clamd", "unix:"+filepath.Join(small, "clamd.sock"), big)
	if code != 2 || !strings.Contains(out, "reply:   451 4.7.1") || !strings.Contains(out, "size limit exceeded") {
		t.Errorf("over clamd's StreamMaxLength: exit %d, want 2 with 451 4.7.1 and the reason:\n%s", code, out)
	}

	for _, tt := range []struct {
		policy string
		code   int
		reply  string
		header string
	}{
		{"reject", 1, "552 5.3.4 Message too large for content scanning", ""},
		{"tempfail", 2, "451 4.7.1", ""},
		{"accept", 0, "250 2.0.0", "X-Virus-Status: Not scanned"},
	} {
		cfg := filepath.Join(t.TempDir(), "nobounce.toml")
		os.WriteFile(cfg, []byte("[scan]\nmax_size = \"1MiB\"\noversize = \""+tt.policy+"\"\n"), 0o644)
		code, out := nobounceScan(t, "-config", cfg, "-clamd", "unix:"+env.sock, big)
		if code != tt.code || !strings.Contains(out, "reply:   "+tt.reply) || !strings.Contains(out, tt.header) {
			t.Errorf("oversize = %s: exit %d, want %d, reply %q, header %q:\n%s", tt.policy, code, tt.code, tt.reply, tt.header, out)
		}
	}
}
