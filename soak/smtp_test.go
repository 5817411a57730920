//go:build soak

package soak

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strconv"
	"time"
)

// smtpConn is a minimal SMTP client that timestamps every step.
type smtpConn struct {
	c net.Conn
	r *bufio.Reader
}

func dialSMTP(addr string) (*smtpConn, int, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, 0, err
	}
	s := &smtpConn{c: c, r: bufio.NewReader(c)}
	code, err := s.reply()
	if err != nil || code != 220 {
		c.Close()
		return nil, code, fmt.Errorf("greeting: %d %v", code, err)
	}
	if code, err := s.cmd("EHLO soak.example"); err != nil || code != 250 {
		c.Close()
		return nil, code, fmt.Errorf("EHLO: %d %v", code, err)
	}
	return s, 250, nil
}

// reply reads one (multi-line) reply; 6 minutes is above every timeout of
// Postfix and nobounce, so a missing answer shows as an error.
func (s *smtpConn) reply() (int, error) {
	s.c.SetReadDeadline(time.Now().Add(6 * time.Minute))
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return 0, err
		}
		if len(line) < 4 {
			return 0, fmt.Errorf("short reply %q", line)
		}
		if line[3] == '-' {
			continue
		}
		return strconv.Atoi(line[:3])
	}
}

func (s *smtpConn) cmd(line string) (int, error) {
	s.c.SetWriteDeadline(time.Now().Add(time.Minute))
	if _, err := s.c.Write([]byte(line + "\r\n")); err != nil {
		return 0, err
	}
	return s.reply()
}

// wire is data with CRLF line ends, dot-stuffed, ending in CRLF.
func wire(data []byte) []byte {
	var b bytes.Buffer
	for _, l := range bytes.SplitAfter(data, []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		l = bytes.TrimRight(l, "\r\n")
		if bytes.HasPrefix(l, []byte(".")) {
			b.WriteByte('.')
		}
		b.Write(l)
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// session sends the messages of batch in one SMTP session.
func session(addr string, batch []msg) []result {
	out := make([]result, 0, len(batch))
	s, code, err := dialSMTP(addr)
	if err != nil {
		for _, m := range batch {
			out = append(out, result{msg: m, code: code, stage: "CONNECT", err: err})
		}
		return out
	}
	defer s.c.Close()
	for i, m := range batch {
		r := send(s, m)
		out = append(out, r)
		if r.err != nil {
			for _, m := range batch[i+1:] {
				out = append(out, result{msg: m, stage: "CONNECT", err: fmt.Errorf("session broke earlier")})
			}
			return out
		}
	}
	s.cmd("QUIT")
	return out
}

func send(s *smtpConn, m msg) result {
	r := result{msg: m, tMail: time.Now()}
	step := func(stage, line string, want int) bool {
		code, err := s.cmd(line)
		if err != nil {
			r.stage, r.err = stage, err
			return false
		}
		if code != want {
			r.stage, r.code = stage, code
			if code == 421 {
				r.err = fmt.Errorf("%s: 421", stage)
			} else {
				s.cmd("RSET")
			}
			return false
		}
		return true
	}
	if !step("MAIL", "MAIL FROM:<soak@remote.test>", 250) ||
		!step("RCPT", "RCPT TO:<alice@example.test>", 250) ||
		!step("DATA", "DATA", 354) {
		r.tEnd = time.Now()
		return r
	}
	s.c.SetWriteDeadline(time.Now().Add(time.Minute))
	if _, err := s.c.Write(wire(m.data)); err != nil {
		r.stage, r.err = "DATA-END", err
		return r
	}
	r.tDot = time.Now()
	code, err := s.cmd(".")
	r.tEnd = time.Now()
	r.stage, r.code, r.err = "DATA-END", code, err
	return r
}

// dropMidData opens a session, sends half of m after DATA, and hangs up.
func dropMidData(addr string, m msg) error {
	s, _, err := dialSMTP(addr)
	if err != nil {
		return err
	}
	defer s.c.Close()
	for _, c := range []struct {
		line string
		want int
	}{{"MAIL FROM:<soak@remote.test>", 250}, {"RCPT TO:<alice@example.test>", 250}, {"DATA", 354}} {
		if code, err := s.cmd(c.line); err != nil || code != c.want {
			return fmt.Errorf("%s: %d %v", c.line, code, err)
		}
	}
	w := wire(m.data)
	s.c.Write(w[:len(w)/2])
	if tc, ok := s.c.(*net.TCPConn); ok {
		tc.SetLinger(0) // a reset, as from a client that vanished
	}
	return nil
}
