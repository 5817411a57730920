package main

// A milter client that speaks to a milter the way Postfix 3.7 does, as
// recorded by soak/milterrec between Postfix and both nobounce (which
// answers with protocol version 2) and clamav-milter (version 6):
//
//   - it offers version 6, every action (0x1ff) and every protocol option
//     (0x1fffff), and then honours what the milter asked for: the stages it
//     wants skipped (SMFIP_NO*), the replies it will not send (SMFIP_NR_*),
//     a leading space in header values, "skip" answers to body chunks;
//   - before each stage it sends the macros Postfix sends by default
//     (connect: j {daemon_name} {daemon_addr} v _; mail: {mail_addr}
//     {mail_host} {mail_mailer}; rcpt: {rcpt_addr} {rcpt_host}
//     {rcpt_mailer}; i with the queue id from DATA on), and no DATA stage to
//     milters older than version 4, as Postfix does;
//   - body chunks are at most 65 535 bytes; after each message it sends an
//     abort, and before closing an abort and a quit.
//
// go-milter's own Client refuses to fall back to version 2 when offered
// Postfix's masks, which is why the benchmark has its own.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nobounce/nobounce/sockaddr"
)

// Protocol options (SMFIP_*) and what Postfix offers.
const (
	smfipNoConnect  = 1 << 0
	smfipNoHelo     = 1 << 1
	smfipNoMail     = 1 << 2
	smfipNoRcpt     = 1 << 3
	smfipNoBody     = 1 << 4
	smfipNoHdrs     = 1 << 5
	smfipNoEOH      = 1 << 6
	smfipNRHdr      = 1 << 7
	smfipNoData     = 1 << 9
	smfipSkip       = 1 << 10
	smfipNRConn     = 1 << 12
	smfipNRHelo     = 1 << 13
	smfipNRMail     = 1 << 14
	smfipNRRcpt     = 1 << 15
	smfipNRData     = 1 << 16
	smfipNREOH      = 1 << 18
	smfipNRBody     = 1 << 19
	smfipHdrLeadSpc = 1 << 20

	postfixVersion  = 6
	postfixActions  = 0x1ff
	postfixProtocol = 0x1fffff

	maxChunk = 65535 // Postfix's MILTER_CHUNK_SIZE
	maxFrame = 1 << 20
)

// mclient is one milter connection: one SMTP session of the MTA.
type mclient struct {
	conn     net.Conn
	r        *bufio.Reader
	w        *bufio.Writer
	version  uint32
	protocol uint32
	timeout  time.Duration
	queue    int // messages sent, for queue ids
}

// errReply is a milter answer the client cannot use.
var errReply = errors.New("unexpected milter reply")

func dialMilter(a sockaddr.Addr, timeout time.Duration) (*mclient, error) {
	conn, err := net.DialTimeout(a.Network, a.Address, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c := &mclient{conn: conn, r: bufio.NewReaderSize(conn, 4096), w: bufio.NewWriterSize(conn, 70000), timeout: timeout}
	var opt [12]byte
	binary.BigEndian.PutUint32(opt[0:], postfixVersion)
	binary.BigEndian.PutUint32(opt[4:], postfixActions)
	binary.BigEndian.PutUint32(opt[8:], postfixProtocol)
	c.send('O', opt[:])
	code, data, err := c.read()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("negotiate: %w", err)
	}
	if code != 'O' || len(data) < 12 {
		conn.Close()
		return nil, fmt.Errorf("negotiate: %w: %q", errReply, code)
	}
	c.version = binary.BigEndian.Uint32(data)
	c.protocol = binary.BigEndian.Uint32(data[8:])
	if c.version < 2 || c.version > postfixVersion {
		conn.Close()
		return nil, fmt.Errorf("negotiate: milter protocol version %d", c.version)
	}
	if c.version < 6 {
		// The reply-less and leading-space options exist from version 6.
		c.protocol &= 0x7f
	}
	return c, nil
}

func (c *mclient) send(code byte, data []byte) {
	var h [5]byte
	binary.BigEndian.PutUint32(h[:], uint32(len(data)+1))
	h[4] = code
	c.w.Write(h[:])
	c.w.Write(data)
}

func (c *mclient) read() (byte, []byte, error) {
	if err := c.w.Flush(); err != nil {
		return 0, nil, err
	}
	c.conn.SetReadDeadline(time.Now().Add(c.timeout))
	var h [4]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n < 1 || n > maxFrame {
		return 0, nil, fmt.Errorf("%w: frame of %d bytes", errReply, n)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(c.r, buf); err != nil {
		return 0, nil, err
	}
	return buf[0], buf[1:], nil
}

func cstrings(s ...string) []byte {
	var b []byte
	for _, x := range s {
		b = append(append(b, x...), 0)
	}
	return b
}

func (c *mclient) macros(stage byte, kv ...string) {
	c.send('D', append([]byte{stage}, cstrings(kv...)...))
}

// answer is the milter's answer at one stage.
type answer struct {
	code byte   // 'c' continue, 'a' accept, 'r' reject, 't' tempfail, 'y' reply, 'd' discard, 's' skip
	text string // the reply of a 'y'
}

// stage sends one command and, unless the milter said it sends no reply to
// this one, reads the answer (progress packets and, at the end of the
// message, modification actions are read past).
func (c *mclient) stage(code byte, data []byte, noReply bool) (answer, error) {
	c.send(code, data)
	if noReply {
		return answer{code: 'c'}, nil
	}
	for {
		rc, rd, err := c.read()
		if err != nil {
			return answer{}, err
		}
		switch rc {
		case 'p': // progress
		case '+', '-', 'b', 'e', 'h', 'i', 'm', 'q', '2':
			if code != 'E' {
				return answer{}, fmt.Errorf("%w: modification %q before the end of the message", errReply, rc)
			}
		case 'c', 'a', 'r', 't', 'd', 's':
			return answer{code: rc}, nil
		case 'y':
			return answer{code: rc, text: strings.TrimRight(string(rd), "\x00")}, nil
		default:
			return answer{}, fmt.Errorf("%w: %q to %q", errReply, rc, code)
		}
	}
}

func (c *mclient) has(opt uint32) bool { return c.protocol&opt != 0 }

// hello is the connect and HELO stages; an answer other than continue ends
// the session (the MTA would reject or tempfail the client).
func (c *mclient) hello() (answer, error) {
	c.macros('C', "j", "postfix.nobounce.test", "{daemon_name}", "postfix.nobounce.test",
		"{daemon_addr}", "127.0.0.1", "v", "Postfix 3.7.11", "_", "bench.example [127.0.0.2]")
	if !c.has(smfipNoConnect) {
		var port [2]byte
		binary.BigEndian.PutUint16(port[:], 40000)
		data := append(cstrings("bench.example"), '4', port[0], port[1])
		data = append(data, cstrings("127.0.0.2")...)
		a, err := c.stage('C', data, c.has(smfipNRConn))
		if err != nil || a.code != 'c' {
			return a, err
		}
	}
	c.macros('H')
	if !c.has(smfipNoHelo) {
		return c.stage('H', cstrings("bench.example"), c.has(smfipNRHelo))
	}
	return answer{code: 'c'}, nil
}

// message sends one transaction and returns the kind of its outcome and the
// time from the end of the body to the milter's last answer. abortAfter > 0
// ends it after that many body bytes, as an MTA whose client went away
// mid-body: with an abort packet ("aborted"), or, when drop is set, by
// closing the connection ("dropped").
func (c *mclient) message(m *message, abortAfter int, drop bool) (string, time.Duration, error) {
	c.queue++
	qid := fmt.Sprintf("B%X%06X", time.Now().UnixNano()&0xffffff, c.queue)
	defer c.send('A', nil) // Postfix aborts after every transaction
	steps := func() (answer, error) {
		c.macros('M', "{mail_addr}", "bench@remote.test", "{mail_host}", "remote.test", "{mail_mailer}", "smtp")
		if !c.has(smfipNoMail) {
			if a, err := c.stage('M', cstrings("<bench@remote.test>"), c.has(smfipNRMail)); err != nil || a.code != 'c' {
				return a, err
			}
		}
		c.macros('R', "{rcpt_addr}", "alice@example.test", "{rcpt_host}", "example.test", "{rcpt_mailer}", "virtual")
		if !c.has(smfipNoRcpt) {
			if a, err := c.stage('R', cstrings("<alice@example.test>"), c.has(smfipNRRcpt)); err != nil || a.code != 'c' {
				return a, err
			}
		}
		if c.version >= 4 {
			c.macros('T', "i", qid)
			if !c.has(smfipNoData) {
				if a, err := c.stage('T', nil, c.has(smfipNRData)); err != nil || a.code != 'c' {
					return a, err
				}
			}
		}
		if !c.has(smfipNoHdrs) {
			for _, h := range m.headers {
				v := h[1]
				if c.has(smfipHdrLeadSpc) {
					v = " " + v
				}
				c.macros('L', "i", qid)
				if a, err := c.stage('L', cstrings(h[0], v), c.has(smfipNRHdr)); err != nil || a.code != 'c' {
					return a, err
				}
			}
		}
		if !c.has(smfipNoEOH) {
			c.macros('N', "i", qid)
			if a, err := c.stage('N', nil, c.has(smfipNREOH)); err != nil || a.code != 'c' {
				return a, err
			}
		}
		if !c.has(smfipNoBody) {
			for off := 0; off < len(m.body); off += maxChunk {
				if abortAfter > 0 && off >= abortAfter {
					return answer{code: 'A'}, nil
				}
				end := min(off+maxChunk, len(m.body))
				if abortAfter > 0 {
					end = min(end, abortAfter)
				}
				c.macros('B', "i", qid)
				a, err := c.stage('B', m.body[off:end], c.has(smfipNRBody))
				if err != nil {
					return a, err
				}
				if a.code == 's' {
					break
				}
				if a.code != 'c' {
					return a, nil
				}
			}
		}
		return answer{code: 'c'}, nil
	}
	a, err := steps()
	if err != nil {
		return "", 0, err
	}
	if a.code == 'A' {
		if drop {
			c.conn.Close()
			return "dropped", 0, nil
		}
		return "aborted", 0, nil
	}
	if abortAfter > 0 {
		return "", 0, fmt.Errorf("message of %d bytes ended before -abort-after %d", len(m.body), abortAfter)
	}
	if a.code != 'c' {
		return kindOfAnswer(a), 0, nil
	}
	c.macros('E', "i", qid)
	t0 := time.Now()
	a, err = c.stage('E', nil, false)
	d := time.Since(t0)
	if err != nil {
		return "", 0, err
	}
	return kindOfAnswer(a), d, nil
}

// close ends the session as Postfix does: abort, quit.
func (c *mclient) close() {
	c.send('A', nil)
	c.send('Q', nil)
	c.w.Flush()
	c.conn.Close()
}

// kindOfAnswer names an outcome the way the MTA would answer the client:
// "accept", the SMTP code of a custom reply, 550 for a bare reject, 451 for
// a bare tempfail, "discard".
func kindOfAnswer(a answer) string {
	switch a.code {
	case 'c', 'a':
		return "accept"
	case 'r':
		return "550"
	case 't':
		return "451"
	case 'd':
		return "discard"
	case 'y':
		if len(a.text) >= 3 {
			if _, err := strconv.Atoi(a.text[:3]); err == nil {
				return a.text[:3]
			}
		}
		return "reply?"
	}
	return string(rune(a.code))
}
