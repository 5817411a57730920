package recipient

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nobounce/nobounce/sockaddr"
)

// Limits on what an SMTP server may send us. RFC 5321 §4.5.3.1.5 allows 512
// octets per reply line; servers in the wild send longer ones, so the
// limit is generous, but bounded.
const (
	MaxReplyLine  = 2048
	MaxReplyLines = 100
)

// Reply is one SMTP reply (RFC 5321 §4.2), possibly of several lines.
type Reply struct {
	Code     int      // 200-599
	Enhanced string   // RFC 3463 code at the start of the first line's text ("5.1.1"), or ""
	Lines    []string // the text of each line, after the code and separator (and the enhanced code on the first)
}

// Text is the reply's text, lines joined with a space.
func (r Reply) Text() string { return strings.Join(r.Lines, " ") }

// String renders the reply on one line: "550 5.1.1 text".
func (r Reply) String() string {
	s := strconv.Itoa(r.Code)
	if r.Enhanced != "" {
		s += " " + r.Enhanced
	}
	if t := r.Text(); t != "" {
		s += " " + t
	}
	return s
}

// Class is the first digit of the code: 2 success, 3 intermediate, 4
// temporary failure, 5 permanent failure.
func (r Reply) Class() int { return r.Code / 100 }

// ErrBadReply is wrapped by every error about a malformed reply.
var ErrBadReply = errors.New("malformed SMTP reply")

// ParseReplyLine splits one reply line (without its line end): the code,
// whether more lines follow ("250-" rather than "250 "), and the text.
func ParseReplyLine(line string) (code int, more bool, text string, err error) {
	if len(line) < 3 {
		return 0, false, "", fmt.Errorf("%w: %q is too short", ErrBadReply, line)
	}
	for i := 0; i < 3; i++ {
		if line[i] < '0' || line[i] > '9' {
			return 0, false, "", fmt.Errorf("%w: %q does not start with a code", ErrBadReply, clip(line))
		}
	}
	code = int(line[0]-'0')*100 + int(line[1]-'0')*10 + int(line[2]-'0')
	if code < 200 || code > 599 {
		return 0, false, "", fmt.Errorf("%w: code %03d out of range", ErrBadReply, code)
	}
	switch {
	case len(line) == 3:
		return code, false, "", nil
	case line[3] == ' ':
		return code, false, line[4:], nil
	case line[3] == '-':
		return code, true, line[4:], nil
	}
	return 0, false, "", fmt.Errorf("%w: %q: want a space or '-' after the code", ErrBadReply, clip(line))
}

// clip shortens a string for an error message.
func clip(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}

// splitEnhanced takes an RFC 3463 status code ("5.1.1") off the front of a
// text whose reply code has the same class.
func splitEnhanced(code int, text string) (string, string) {
	word, rest, _ := strings.Cut(text, " ")
	parts := strings.Split(word, ".")
	if len(parts) != 3 || parts[0] != strconv.Itoa(code/100) {
		return "", text
	}
	for _, p := range parts[1:] {
		if p == "" || len(p) > 3 || strings.Trim(p, "0123456789") != "" {
			return "", text
		}
	}
	return word, rest
}

// ReadReply reads one reply: lines up to the one without '-' after the
// code, every line with the same code. A line may end in CRLF or LF.
func ReadReply(r *bufio.Reader) (Reply, error) {
	var rep Reply
	for n := 0; ; n++ {
		if n == MaxReplyLines {
			return Reply{}, fmt.Errorf("%w: more than %d lines", ErrBadReply, MaxReplyLines)
		}
		line, err := readLine(r)
		if err != nil {
			return Reply{}, err
		}
		code, more, text, err := ParseReplyLine(line)
		if err != nil {
			return Reply{}, err
		}
		if n == 0 {
			rep.Code = code
			rep.Enhanced, text = splitEnhanced(code, text)
		} else {
			if code != rep.Code {
				return Reply{}, fmt.Errorf("%w: line %d has code %d, the first had %d", ErrBadReply, n+1, code, rep.Code)
			}
			if e, t := splitEnhanced(code, text); e == rep.Enhanced && e != "" {
				text = t // repeated on each line, as Postfix does
			}
		}
		rep.Lines = append(rep.Lines, text)
		if !more {
			return rep, nil
		}
	}
}

// readLine reads one line of at most MaxReplyLine bytes, without its end.
func readLine(r *bufio.Reader) (string, error) {
	var b []byte
	for {
		chunk, err := r.ReadSlice('\n')
		if len(b)+len(chunk) > MaxReplyLine+2 {
			return "", fmt.Errorf("%w: line longer than %d bytes", ErrBadReply, MaxReplyLine)
		}
		b = append(b, chunk...)
		switch {
		case err == nil:
			s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
			return s, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(b) > 0:
			return "", fmt.Errorf("%w: connection closed in the middle of a line", ErrBadReply)
		default:
			return "", err
		}
	}
}

// Client is a minimal SMTP client (RFC 5321) for probing a server: it never
// sends a message unless Data is called. Every command is bounded by the
// deadline of the context it is given.
type Client struct {
	conn net.Conn
	r    *bufio.Reader
	// Trace, when set, sees every line sent (">") and received ("<").
	Trace func(dir, line string)
}

// Dial connects to an SMTP server, within connectTimeout (0: only ctx
// bounds it), and reads its greeting. A greeting that is not 2xx is
// returned with an error (the connection is then closed). trace may be nil.
func Dial(ctx context.Context, addr sockaddr.Addr, connectTimeout time.Duration, trace func(dir, line string)) (*Client, Reply, error) {
	d := net.Dialer{Timeout: connectTimeout}
	conn, err := d.DialContext(ctx, addr.Network, addr.Address)
	if err != nil {
		return nil, Reply{}, err
	}
	c := &Client{conn: conn, r: bufio.NewReaderSize(conn, 4096), Trace: trace}
	greet, err := c.read(ctx)
	if err != nil {
		conn.Close()
		return nil, Reply{}, fmt.Errorf("greeting: %w", err)
	}
	if greet.Class() != 2 {
		conn.Close()
		return nil, greet, fmt.Errorf("greeting: %s", greet)
	}
	return c, greet, nil
}

func (c *Client) deadline(ctx context.Context) {
	if d, ok := ctx.Deadline(); ok {
		c.conn.SetDeadline(d)
	} else {
		c.conn.SetDeadline(time.Time{})
	}
}

func (c *Client) read(ctx context.Context) (Reply, error) {
	c.deadline(ctx)
	rep, err := ReadReply(c.r)
	if err == nil && c.Trace != nil {
		for i, l := range rep.Lines {
			sep := "-"
			if i == len(rep.Lines)-1 {
				sep = " "
			}
			if i == 0 && rep.Enhanced != "" {
				l = rep.Enhanced + " " + l
			}
			c.Trace("<", strconv.Itoa(rep.Code)+sep+l)
		}
	}
	return rep, err
}

// Cmd sends one command line and reads the reply.
func (c *Client) Cmd(ctx context.Context, line string) (Reply, error) {
	if strings.ContainsAny(line, "\r\n") {
		return Reply{}, fmt.Errorf("SMTP command %q contains a line break", clip(line))
	}
	c.deadline(ctx)
	if c.Trace != nil {
		c.Trace(">", line)
	}
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		return Reply{}, err
	}
	return c.read(ctx)
}

// Hello sends EHLO and falls back to HELO when the server refuses it with
// a 5xx (RFC 5321 §4.1.4).
func (c *Client) Hello(ctx context.Context, name string) (Reply, error) {
	rep, err := c.Cmd(ctx, "EHLO "+name)
	if err == nil && rep.Class() == 5 {
		rep, err = c.Cmd(ctx, "HELO "+name)
	}
	return rep, err
}

// Data sends DATA and then msg, which must use CRLF line ends and end in
// CRLF; lines starting with "." are dot-stuffed here. It returns the reply
// to the final "." (or to DATA, when that was not 354).
func (c *Client) Data(ctx context.Context, msg string) (Reply, error) {
	rep, err := c.Cmd(ctx, "DATA")
	if err != nil || rep.Code != 354 {
		return rep, err
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(msg, "\r\n") {
		if line == "" {
			continue
		}
		if line[0] == '.' {
			b.WriteByte('.')
		}
		b.WriteString(line)
	}
	if !strings.HasSuffix(b.String(), "\r\n") {
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	c.deadline(ctx)
	if c.Trace != nil {
		c.Trace(">", fmt.Sprintf("(message, %d bytes)", len(msg)))
		c.Trace(">", ".")
	}
	if _, err := io.WriteString(c.conn, b.String()); err != nil {
		return Reply{}, err
	}
	return c.read(ctx)
}

// Quit sends QUIT, waits briefly for the answer, and closes the connection.
func (c *Client) Quit() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c.Cmd(ctx, "QUIT")
	c.conn.Close()
}

// Close closes the connection without QUIT.
func (c *Client) Close() error { return c.conn.Close() }
