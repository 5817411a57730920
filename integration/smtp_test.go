//go:build integration

package integration

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	sender    = "sender@remote.test"
	recipient = "alice@example.test"
)

// token returns a unique word to find a message again in a mailbox.
func token(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

// swaks sends one message to m with swaks and returns its transcript.
// swaks exits non-zero when the server refuses; the transcript tells.
func swaks(t *testing.T, m *mta, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	base := []string{"--server", m.addr(), "--from", sender, "--to", recipient,
		"--helo", "client.remote.test", "--timeout", "60s"}
	cmd := exec.CommandContext(ctx, "swaks", append(base, args...)...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("swaks to %s timed out:\n%s", m.name, out)
	}
	_ = err
	return string(out)
}

// swaksReplyRE matches a server line in swaks' transcript: "<-  250 ..."
// (accepted) or "<** 550 ..." (refused).
var swaksReplyRE = regexp.MustCompile(`^<(?:-|\*\*) +(\d{3})([ -])(.*)$`)

// dataReply returns the server's reply to the end of DATA (the line "." the
// client sent) from a swaks transcript, continuation lines joined with
// newlines; "" when the transcript has none (the session ended earlier).
func dataReply(transcript string) string {
	lines := strings.Split(strings.ReplaceAll(transcript, "\r", ""), "\n")
	for i, l := range lines {
		if strings.TrimRight(l, " ") != " -> ." {
			continue
		}
		var reply []string
		for _, r := range lines[i+1:] {
			m := swaksReplyRE.FindStringSubmatch(r)
			if m == nil {
				if len(reply) > 0 {
					break
				}
				continue
			}
			reply = append(reply, m[1]+" "+m[3])
			if m[2] == " " {
				break
			}
		}
		return strings.Join(reply, "\n")
	}
	return ""
}

// smtpConn is a minimal SMTP client that sends exactly the bytes it is
// given (swaks adds a line break before the final "."), and can send
// several messages on one connection.
type smtpConn struct {
	t  *testing.T
	c  net.Conn
	r  *bufio.Reader
	tr strings.Builder // transcript, for failure messages
}

func dialSMTP(t *testing.T, m *mta) *smtpConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", m.addr(), 10*time.Second)
	if err != nil {
		t.Fatalf("connect to %s: %v", m.name, err)
	}
	s := &smtpConn{t: t, c: c, r: bufio.NewReader(c)}
	t.Cleanup(func() { c.Close() })
	if code, text := s.reply(); code != 220 {
		t.Fatalf("%s greeting: %d %s", m.name, code, text)
	}
	s.expect(250, "EHLO client.remote.test")
	return s
}

// reply reads one (possibly multi-line) reply.
func (s *smtpConn) reply() (int, string) {
	s.t.Helper()
	var text []string
	for {
		s.c.SetReadDeadline(time.Now().Add(90 * time.Second))
		line, err := s.r.ReadString('\n')
		if err != nil {
			s.t.Fatalf("reading SMTP reply: %v\ntranscript:\n%s", err, s.tr.String())
		}
		line = strings.TrimRight(line, "\r\n")
		s.tr.WriteString("S: " + line + "\n")
		if len(line) < 4 {
			s.t.Fatalf("bad SMTP reply %q", line)
		}
		text = append(text, line[4:])
		if line[3] == ' ' {
			var code int
			fmt.Sscanf(line[:3], "%d", &code)
			return code, strings.Join(text, "\n")
		}
	}
}

func (s *smtpConn) cmd(line string) (int, string) {
	s.t.Helper()
	s.tr.WriteString("C: " + line + "\n")
	s.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := s.c.Write([]byte(line + "\r\n")); err != nil {
		s.t.Fatalf("writing %q: %v", line, err)
	}
	return s.reply()
}

func (s *smtpConn) expect(code int, line string) string {
	s.t.Helper()
	got, text := s.cmd(line)
	if got != code {
		s.t.Fatalf("%s: got %d %s, want %d\ntranscript:\n%s", line, got, text, code, s.tr.String())
	}
	return text
}

// send runs one transaction with msg (CRLF line ends, no dot-stuffing: send
// does it) and returns the reply to the final ".", as "CODE TEXT".
func (s *smtpConn) send(from, to string, msg []byte) string {
	s.t.Helper()
	s.expect(250, "MAIL FROM:<"+from+"> BODY=8BITMIME")
	s.expect(250, "RCPT TO:<"+to+">")
	s.expect(354, "DATA")
	var b strings.Builder
	for _, line := range strings.SplitAfter(string(msg), "\r\n") {
		if strings.HasPrefix(line, ".") {
			b.WriteString(".")
		}
		b.WriteString(line)
	}
	if !strings.HasSuffix(b.String(), "\r\n") {
		s.t.Fatalf("message must end with CRLF")
	}
	b.WriteString(".\r\n")
	s.tr.WriteString(fmt.Sprintf("C: <message, %d bytes>\nC: .\n", len(msg)))
	s.c.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if _, err := s.c.Write([]byte(b.String())); err != nil {
		s.t.Fatalf("writing message: %v", err)
	}
	code, text := s.reply()
	return fmt.Sprintf("%d %s", code, text)
}

func (s *smtpConn) quit() {
	s.t.Helper()
	s.cmd("QUIT")
	s.c.Close()
}
