package mime

import (
	"bufio"
	"bytes"
	"io"
)

// splitter cuts the body of a multipart entity into its parts (RFC 2046
// §5.1.1) as it streams: a delimiter line is "--" boundary, optional white
// space, and a line end; the close delimiter is "--" boundary "--" (what
// follows it on the line is ignored). The line end before a delimiter
// belongs to the delimiter. Lines may end in CRLF or a bare LF.
//
// The standard library and go-message do the same, but read each part's
// header with no bound of their own; here the walker reads part headers
// itself, under Options.MaxHeaderBytes.
type splitter struct {
	br   *bufio.Reader
	dash []byte // "--" + boundary

	started bool // the first delimiter was seen
	closed  bool // the close delimiter was seen
	eof     bool // the input ended
	err     error
	cur     *partBody
}

// newSplitter reads a multipart body from br. The boundary must be shorter
// than br's buffer.
func newSplitter(br *bufio.Reader, boundary string) *splitter {
	return &splitter{br: br, dash: []byte("--" + boundary)}
}

// delimiter kinds of a line.
const (
	notDelim = iota
	delim
	closeDelim
)

func (s *splitter) kind(line []byte) int {
	rest, ok := bytes.CutPrefix(line, s.dash)
	if !ok {
		return notDelim
	}
	if bytes.HasPrefix(rest, []byte("--")) {
		return closeDelim
	}
	rest = bytes.TrimLeft(rest, " \t")
	if len(rest) == 0 || string(rest) == "\n" || string(rest) == "\r\n" {
		return delim
	}
	return notDelim
}

// next returns a reader for the next part's raw bytes (header and body),
// or nil when there is none: after the close delimiter (the epilogue is
// read and dropped) or at the end of the input (truncated tells which).
// The previous part is drained first.
func (s *splitter) next() io.Reader {
	if s.cur != nil {
		io.Copy(io.Discard, s.cur)
		s.cur = nil
	}
	if s.closed || s.eof {
		s.drain()
		return nil
	}
	if !s.started {
		// The preamble: skip to the first delimiter.
		atStart := true
		for {
			line, err := s.br.ReadSlice('\n')
			if atStart {
				switch s.kind(line) {
				case delim:
					s.started = true
				case closeDelim:
					s.started, s.closed = true, true
					s.drain()
					return nil
				}
			}
			if s.started {
				break
			}
			atStart = err != bufio.ErrBufferFull
			if err != nil && err != bufio.ErrBufferFull {
				s.eof, s.err = true, err
				return nil
			}
		}
	}
	s.cur = &partBody{s: s, atStart: true}
	return s.cur
}

// truncated reports whether the input ended before the close delimiter.
func (s *splitter) truncated() bool { return s.started && !s.closed }

// drain reads what follows the close delimiter (the epilogue).
func (s *splitter) drain() {
	for !s.eof {
		_, err := s.br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			s.eof = true
		}
	}
}

// partBody reads one part up to the next delimiter line.
type partBody struct {
	s       *splitter
	atStart bool   // the next byte of input starts a line
	held    []byte // line end (or a lone CR) held back: it may belong to a delimiter
	pre     []byte // a held line end that turned out to be the body's, to return first
	data    []byte // bytes to return, from the current line (in the reader's buffer)
	done    bool
}

var (
	crlf = []byte("\r\n")
	lf   = []byte("\n")
	cr   = []byte("\r")
)

func (p *partBody) Read(b []byte) (int, error) {
	for len(p.pre) == 0 && len(p.data) == 0 {
		if p.done {
			return 0, io.EOF
		}
		s := p.s
		line, err := s.br.ReadSlice('\n')
		if p.atStart && len(line) > 0 {
			switch s.kind(line) {
			case delim:
				p.done = true
				return 0, io.EOF
			case closeDelim:
				p.done, s.closed = true, true
				return 0, io.EOF
			}
		}
		full := err != bufio.ErrBufferFull
		if err != nil && full {
			s.eof, s.err = true, err
			p.done = true
		}
		// What was held belongs to the body after all, except a CR
		// that this slice completes into a CRLF line end.
		if len(p.held) > 0 {
			if bytes.Equal(p.held, cr) && string(line) == "\n" {
				p.held = crlf
				p.atStart = true
				continue
			}
			p.pre, p.held = p.held, nil
		}
		body := line
		switch {
		case p.done:
			// The input ended: nothing can follow a held line end.
		case bytes.HasSuffix(line, crlf):
			body, p.held = line[:len(line)-2], crlf
		case bytes.HasSuffix(line, lf):
			body, p.held = line[:len(line)-1], lf
		case !full && bytes.HasSuffix(line, cr):
			body, p.held = line[:len(line)-1], cr
		}
		p.atStart = full && err == nil
		p.data = body
	}
	n := 0
	if len(p.pre) > 0 {
		n = copy(b, p.pre)
		p.pre = p.pre[n:]
		if len(p.pre) > 0 {
			return n, nil
		}
	}
	m := copy(b[n:], p.data)
	p.data = p.data[m:]
	return n + m, nil
}
