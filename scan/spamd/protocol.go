package spamd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// The SPAMC/1.5 protocol, as spamd 4.0 speaks it (spamd(1), and the
// server's own check() and parse_headers()):
//
//	request:  SYMBOLS SPAMC/1.5\r\n
//	          Content-length: 1234\r\n     (the message's exact length)
//	          User: name\r\n               (optional: whose preferences)
//	          \r\n
//	          <the message, exactly Content-length bytes>
//
//	answer:   SPAMD/1.1 0 EX_OK\r\n
//	          Content-length: 33\r\n
//	          Spam: True ; 15.3 / 5.0\r\n
//	          \r\n
//	          RULE_A,RULE_B,RULE_C             (the rule names that hit)
//
// A failure is a status line with a code other than 0 (sysexits.h) and
// its reason, e.g. "SPAMD/1.0 76 Bad header line: (Content-Length
// mismatch: ...)", after which spamd closes the connection. spamd answers
// one request per connection and then closes it, so there is no
// connection reuse to be had. The score is printed with one decimal, the
// way spamd prints it ("%2.1f"; a message that is not spam but rounds up
// to the threshold is given as the threshold less 0.1).

// Limits on spamd's answer, far above what spamd sends (a SYMBOLS body is
// a list of rule names; a few hundred bytes).
const (
	maxLine   = 4 << 10   // one line of the status or header block
	maxHeader = 64        // header lines
	maxBody   = 256 << 10 // the symbols
)

// protoVersion is the protocol version we speak: 1.5 sends a header block
// (possibly empty) after every request line, PING included.
const protoVersion = "SPAMC/1.5"

// reply is spamd's answer to SYMBOLS.
type reply struct {
	Code     int    // 0 is EX_OK
	Message  string // text after the code ("EX_OK", or the reason of a failure)
	IsSpam   bool
	Score    float64
	Required float64
	Symbols  []string
}

// ErrProtocol is in the error of every answer that does not follow the
// protocol (truncated, garbled, over the limits).
var ErrProtocol = errors.New("protocol error")

// errNoAnswer: spamd closed the connection before the first byte of an
// answer.
var errNoAnswer = errors.New("connection closed without an answer")

// errReply is spamd's own failure answer (a status code other than 0).
type errReply struct {
	Code    int
	Message string
}

func (e *errReply) Error() string {
	return fmt.Sprintf("answered %d %s", e.Code, e.Message)
}

// requestHeader is what goes before the message.
func requestHeader(size int64, user string) string {
	var b strings.Builder
	b.WriteString("SYMBOLS " + protoVersion + "\r\n")
	b.WriteString("Content-length: " + strconv.FormatInt(size, 10) + "\r\n")
	if user != "" {
		b.WriteString("User: " + user + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// validUser reports whether spamd accepts s in a User: header: printable
// (spamd refuses control characters), no line break, no leading or trailing
// space (spamd's parser would drop it).
func validUser(s string) bool {
	if s == "" || len(s) > 256 || strings.TrimSpace(s) != s {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

func protoErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrProtocol, fmt.Sprintf(format, args...))
}

// readLine reads one line ending in "\n" (an optional "\r" before it is
// removed), at most maxLine bytes. A line cut short by the end of input is
// an error: spamd always ends its lines.
func readLine(br *bufio.Reader) (string, error) {
	var line []byte
	for {
		frag, err := br.ReadSlice('\n')
		line = append(line, frag...)
		if len(line) > maxLine {
			return "", protoErr("line longer than %d bytes", maxLine)
		}
		switch err {
		case nil:
			line = line[:len(line)-1]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			return string(line), nil
		case bufio.ErrBufferFull:
			continue
		case io.EOF:
			if len(line) == 0 {
				return "", io.ErrUnexpectedEOF
			}
			return "", protoErr("answer ends in the middle of a line: %q", truncate(string(line)))
		default:
			return "", err
		}
	}
}

// parseReply reads spamd's whole answer to SYMBOLS. Network errors are
// returned as they are; anything else that is wrong wraps ErrProtocol, or
// is an *errReply when spamd reported a failure itself.
func parseReply(r io.Reader) (*reply, error) {
	br := bufio.NewReaderSize(r, 4096)
	status, err := readLine(br)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, errNoAnswer
	}
	if err != nil {
		return nil, err
	}
	rp := &reply{}
	// "SPAMD/1.1 0 EX_OK"
	proto, rest, ok := strings.Cut(status, " ")
	if !ok || !strings.HasPrefix(proto, "SPAMD/") {
		return nil, protoErr("status line %q is not SPAMD/x.y CODE MESSAGE", truncate(status))
	}
	codeStr, msg, _ := strings.Cut(rest, " ")
	code, err := strconv.Atoi(codeStr)
	if err != nil || code < 0 || code > 255 {
		return nil, protoErr("status line %q has no numeric code", truncate(status))
	}
	rp.Code, rp.Message = code, strings.TrimSpace(msg)
	if code != 0 {
		return nil, &errReply{Code: code, Message: truncate(rp.Message)}
	}

	length := int64(-1)
	haveSpam := false
	for i := 0; ; i++ {
		if i > maxHeader {
			return nil, protoErr("more than %d header lines", maxHeader)
		}
		line, err := readLine(br)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, protoErr("answer ends in its header block")
		}
		if err != nil {
			return nil, err
		}
		if line == "" {
			break
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, protoErr("header line %q is not Name: value", truncate(line))
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "content-length":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 {
				return nil, protoErr("bad Content-length %q", truncate(value))
			}
			if n > maxBody {
				return nil, protoErr("Content-length %d is over %d", n, maxBody)
			}
			length = n
		case "spam":
			if err := rp.parseSpam(value); err != nil {
				return nil, err
			}
			haveSpam = true
		}
	}
	if !haveSpam {
		return nil, protoErr("no Spam: header in the answer")
	}

	var body []byte
	if length >= 0 {
		body = make([]byte, length)
		if n, err := io.ReadFull(br, body); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, protoErr("answer truncated: %d of %d bytes of symbols", n, length)
			}
			return nil, err
		}
	} else {
		// Before SPAMC/1.3 there was no Content-length: to the end.
		body, err = io.ReadAll(io.LimitReader(br, maxBody+1))
		if err != nil {
			return nil, err
		}
		if len(body) > maxBody {
			return nil, protoErr("symbols longer than %d bytes", maxBody)
		}
	}
	rp.Symbols, err = parseSymbols(string(body))
	if err != nil {
		return nil, err
	}
	return rp, nil
}

// parseSpam parses the value of the Spam: header: "True ; 15.3 / 5.0".
// spamd writes True/False, or Yes/No for REPORT_IFSPAM.
func (rp *reply) parseSpam(v string) error {
	verdict, scores, ok := strings.Cut(v, ";")
	if !ok {
		return protoErr("Spam: header %q has no ';'", truncate(v))
	}
	switch strings.ToLower(strings.TrimSpace(verdict)) {
	case "true", "yes":
		rp.IsSpam = true
	case "false", "no":
		rp.IsSpam = false
	default:
		return protoErr("Spam: header %q is neither True nor False", truncate(v))
	}
	score, required, ok := strings.Cut(scores, "/")
	if !ok {
		return protoErr("Spam: header %q has no 'score / required'", truncate(v))
	}
	var err error
	if rp.Score, err = parseScore(score); err != nil {
		return protoErr("Spam: header %q: score: %v", truncate(v), err)
	}
	if rp.Required, err = parseScore(required); err != nil {
		return protoErr("Spam: header %q: required score: %v", truncate(v), err)
	}
	return nil
}

// parseScore accepts a finite decimal number ("15.3", "-0.5", "1000").
func parseScore(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("empty")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c == '.' || c == '-' || c == '+') {
			return 0, fmt.Errorf("%q is not a decimal number", s)
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("%q is not a decimal number", s)
	}
	if f == 0 {
		// spamd writes a small negative total as "-0.0"; it is 0 (spamc
		// prints it "0.0" too).
		f = 0
	}
	return f, nil
}

// parseSymbols splits spamd's comma-separated list of rule names. Each
// must be a rule name as SpamAssassin allows it (letters, digits, '_', and
// '.' or '-' seen in plugin names), so nothing odd can reach a header.
func parseSymbols(s string) ([]string, error) {
	s = strings.TrimRight(s, "\r\n")
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]string, 0, len(parts))
	for _, p := range parts {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
				return nil, protoErr("symbol %q is not a rule name", truncate(p))
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// truncate keeps text from the server short in errors.
func truncate(s string) string {
	const max = 120
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
