package mime

import (
	"bufio"
	"bytes"
	"io"
	"strings"
)

// The transfer decoders here are lenient where mail programs are: a
// program that shows an attachment in spite of a stray character must not
// meet a filter that gives up on it. Each decodes what it can and says, in
// bad, that the input was not what RFC 2045 allows; the walker reports that
// as malformed MIME and judges the decoded bytes all the same.

// decoder is a transfer decoder that can tell whether its input was broken.
type decoder interface {
	io.Reader
	problem() string // "" when the input was well formed
}

// plainDecoder passes bytes through (7bit, 8bit, binary).
type plainDecoder struct{ io.Reader }

func (plainDecoder) problem() string { return "" }

// newDecoder returns the decoder for a Content-Transfer-Encoding, and
// whether the encoding is known; an unknown one is read as 8bit.
func newDecoder(cte string, r io.Reader) (decoder, bool) {
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "", "7bit", "8bit", "binary":
		return plainDecoder{r}, true
	case "base64":
		return newBase64(r), true
	case "quoted-printable":
		return newQP(r), true
	case "x-uuencode", "uuencode", "x-uue", "uue":
		return newUU(r), true
	}
	return plainDecoder{r}, false
}

// base64 alphabet classes.
const (
	b64Bad   = 0xFF
	b64Space = 0xFE
	b64Pad   = 0xFD
)

var b64Table = func() (t [256]byte) {
	for i := range t {
		t[i] = b64Bad
	}
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for i := range len(alpha) {
		t[alpha[i]] = byte(i)
	}
	for _, c := range []byte(" \t\r\n\v\f") {
		t[c] = b64Space
	}
	t['='] = b64Pad
	return t
}()

// base64Decoder decodes RFC 2045 base64, skipping characters outside the
// alphabet and decoding on after padding (concatenated encodings).
type base64Decoder struct {
	src  io.Reader
	in   []byte
	buf  []byte // the output buffer; out is what is left of it
	out  []byte // decoded, not yet read
	q    [4]byte
	nq   int
	bad  int // characters outside the alphabet
	odd  bool
	err  error
	done bool
}

func newBase64(r io.Reader) *base64Decoder {
	return &base64Decoder{src: r, in: make([]byte, 8192), buf: make([]byte, 0, 6144+3)}
}

func (d *base64Decoder) problem() string {
	switch {
	case d.bad > 0:
		return "base64 with characters outside its alphabet"
	case d.odd:
		return "base64 with a partial last group"
	}
	return ""
}

func (d *base64Decoder) flush() {
	switch d.nq {
	case 0:
	case 1:
		d.odd = true
	case 2:
		d.out = append(d.out, d.q[0]<<2|d.q[1]>>4)
		d.odd = true
	case 3:
		d.out = append(d.out, d.q[0]<<2|d.q[1]>>4, d.q[1]<<4|d.q[2]>>2)
		d.odd = true
	}
	d.nq = 0
}

func (d *base64Decoder) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.done {
			return 0, d.err
		}
		n, err := d.src.Read(d.in)
		d.out = d.buf[:0]
		for _, c := range d.in[:n] {
			v := b64Table[c]
			switch v {
			case b64Space:
				continue
			case b64Bad:
				d.bad++
				continue
			case b64Pad:
				// "xx==" and "xxx=" end a group; decode what it holds.
				if d.nq >= 2 {
					d.flush()
					d.odd = false
				} else if d.nq == 1 {
					d.flush()
				}
				continue
			}
			d.q[d.nq] = v
			d.nq++
			if d.nq == 4 {
				d.out = append(d.out, d.q[0]<<2|d.q[1]>>4, d.q[1]<<4|d.q[2]>>2, d.q[2]<<6|d.q[3])
				d.nq = 0
			}
		}
		if err != nil {
			d.flush()
			d.done = true
			d.err = err
		}
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

// qpDecoder decodes quoted-printable (RFC 2045 §6.7). A '=' not followed by
// two hex digits or a line break is kept as it is.
type qpDecoder struct {
	br    *bufio.Reader
	out   []byte
	carry []byte // the start of an escape cut by the end of a read
	bad   int
	err   error
}

func newQP(r io.Reader) *qpDecoder {
	return &qpDecoder{br: bufio.NewReaderSize(r, 8192)}
}

func (d *qpDecoder) problem() string {
	if d.bad > 0 {
		return "quoted-printable with bad escapes"
	}
	return ""
}

func (d *qpDecoder) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		line, err := d.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			err = nil
		}
		buf := line
		if len(d.carry) > 0 {
			buf = append(d.carry, line...)
			d.carry = nil
		}
		d.out = d.decode(buf, err != nil)
		d.err = err
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

// decode decodes buf; an escape cut at its end is kept in carry unless
// last says no more input follows.
func (d *qpDecoder) decode(buf []byte, last bool) []byte {
	out := make([]byte, 0, len(buf))
	for i := 0; i < len(buf); i++ {
		c := buf[i]
		if c != '=' {
			out = append(out, c)
			continue
		}
		rest := buf[i+1:]
		switch {
		case len(rest) >= 2 && isHex(rest[0]) && isHex(rest[1]):
			out = append(out, unhex(rest[0])<<4|unhex(rest[1]))
			i += 2
		case len(rest) >= 1 && rest[0] == '\n':
			i++ // soft line break
		case len(rest) >= 2 && rest[0] == '\r' && rest[1] == '\n':
			i += 2
		case !last && len(rest) < 2:
			d.carry = append([]byte(nil), buf[i:]...)
			return out
		default:
			// "=" then white space then the line end is a soft break too
			// (trailing white space added in transport).
			j := 0
			for j < len(rest) && (rest[j] == ' ' || rest[j] == '\t') {
				j++
			}
			if j > 0 && j < len(rest) && (rest[j] == '\n' || rest[j] == '\r') {
				i += j
				if rest[j] == '\r' && j+1 < len(rest) && rest[j+1] == '\n' {
					i++
				}
				i++
				continue
			}
			if j > 0 && j == len(rest) && !last && j < maxQPCarry {
				d.carry = append([]byte(nil), buf[i:]...)
				return out
			}
			d.bad++
			out = append(out, c)
		}
	}
	return out
}

// maxQPCarry bounds the white space after a '=' kept across reads.
const maxQPCarry = 1024

// uuDecoder decodes uuencoded data: lines before "begin MODE NAME" are
// skipped, decoding stops at "end". Name is the name of the begin line.
type uuDecoder struct {
	br      *bufio.Reader
	out     []byte
	name    string
	started bool
	ended   bool
	bad     int
	err     error
}

func newUU(r io.Reader) *uuDecoder { return &uuDecoder{br: bufio.NewReaderSize(r, 4096)} }

func (d *uuDecoder) problem() string {
	switch {
	case !d.started:
		return "uuencode without a begin line"
	case d.bad > 0:
		return "uuencode with bad lines"
	}
	return ""
}

func (d *uuDecoder) Read(p []byte) (int, error) {
	for len(d.out) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		line, err := d.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// No uuencoded line is this long: skip the rest of it.
			for err == bufio.ErrBufferFull {
				_, err = d.br.ReadSlice('\n')
			}
			d.bad++
			line = nil
		}
		d.err = err
		if d.ended {
			continue
		}
		line = bytes.TrimRight(line, "\r\n")
		if !d.started {
			if name, ok := uuBegin(line); ok {
				d.started, d.name = true, name
			}
			continue
		}
		if string(bytes.TrimSpace(line)) == "end" {
			d.ended = true
			continue
		}
		var ok bool
		d.out, ok = uuLine(d.out[:0], line)
		if !ok {
			d.bad++
		}
	}
	n := copy(p, d.out)
	d.out = d.out[n:]
	return n, nil
}

// uuBegin recognises "begin 644 name" (and "begin-base64 644 name") and
// returns the name.
func uuBegin(line []byte) (string, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("begin "))
	if !ok {
		return "", false
	}
	mode, name, ok := bytes.Cut(rest, []byte(" "))
	if !ok || len(mode) < 3 || len(mode) > 4 {
		return "", false
	}
	for _, c := range mode {
		if c < '0' || c > '7' {
			return "", false
		}
	}
	return string(bytes.TrimSpace(name)), len(bytes.TrimSpace(name)) > 0
}

// uuLine appends the bytes of one uuencoded line to out; ok is false when
// the line is not uuencoding.
func uuLine(out, line []byte) ([]byte, bool) {
	if len(line) == 0 {
		return out, true
	}
	n := int((line[0] - ' ') & 63)
	if n == 0 {
		return out, true
	}
	data := line[1:]
	for i := 0; n > 0; i += 4 {
		var q [4]byte
		for j := range 4 {
			c := byte(' ') // some encoders drop trailing spaces
			if i+j < len(data) {
				c = data[i+j]
			}
			if c < ' ' || c > '`' {
				return out, false
			}
			q[j] = (c - ' ') & 63
		}
		b := [3]byte{q[0]<<2 | q[1]>>4, q[1]<<4 | q[2]>>2, q[2]<<6 | q[3]}
		k := min(n, 3)
		out = append(out, b[:k]...)
		n -= k
	}
	return out, true
}

// charsetReader is the WordDecoder's: Windows-1252 is converted, any other
// charset it does not know is passed through as bytes.
func charsetReader(charset string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "windows-1252", "cp1252", "latin1", "l1", "iso_8859-1":
		b, err := io.ReadAll(io.LimitReader(input, 1<<16))
		if err != nil {
			return nil, err
		}
		return strings.NewReader(toUTF8(strings.ToLower(charset), string(b))), nil
	}
	return input, nil
}
