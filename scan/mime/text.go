package mime

import (
	"bytes"
	"encoding/base64"
)

// textFinder looks inside text for files that mail programs and browsers
// turn back into files:
//
//   - uuencoded files ("begin 644 name" ... "end"), which some mail
//     programs show as attachments: the name, and the first decoded bytes;
//   - BinHex 4.0 ("(This file must be converted with BinHex 4.0)"): the
//     name in its header;
//   - base64 that decodes to a program (HTML smuggling: a data: URI or a
//     JavaScript string holding "TVqQ..."), found by the base64 of the
//     program's magic at the start of a run of base64 characters;
//   - in RTF, objects written in hex (\objdata): the hex is decoded and
//     searched for an embedded Windows program.
type textFinder struct {
	line    []byte // the current line, at most maxTextLine bytes
	lineCut bool   // the current line was longer than that

	uuNames []string
	uuHeads [][]byte
	uu      []byte // decoded bytes of the current uuencoded file, up to headSize
	inUU    bool

	binhexNames []string
	binhexState int    // 0 outside, 1 marker seen, 2 in data
	binhex      []byte // encoded characters of the current BinHex file

	run        []byte // the current base64 run's first characters (only when it may be a program)
	runLen     int
	runMaybe   bool
	runChecked bool
	prevB64    bool
	b64Heads   [][]byte

	rtf     *peFinder // nil unless the text is RTF
	hexRun  []byte    // hex digits of the current run, until it is long enough
	hexLen  int       // digits in the current run
	nibble  int       // -1 or a pending hex digit
	rtfBuf  []byte    // decoded bytes for rtf
	afterAZ bool      // the previous byte was a letter: a hex run cannot start
}

// minHexRun is the shortest run of hex digits decoded in RTF: shorter ones
// are words ("\\fcharset0", "data") rather than data.
const minHexRun = 32

// Bounds of the text finder.
const (
	maxTextLine  = 1024
	maxRunChars  = (headSize + 2) / 3 * 4
	maxTextFinds = 20
)

func newTextFinder(rtf bool) *textFinder {
	t := &textFinder{nibble: -1}
	if rtf {
		t.rtf = newPEFinder(0)
	}
	return t
}

// b64Magic are the base64 forms of the magic of programs: "MZ" (TVo, TVp,
// TVq, TVr) and "\x7fELF" (f0VMR).
func b64Maybe(run []byte) bool {
	return bytes.HasPrefix(run, []byte("TV")) || bytes.HasPrefix(run, []byte("f0VMR"))
}

func isB64Char(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/'
}

// Byte classes for the base64 runs.
const (
	clsOther = iota
	clsB64
	clsEOL
)

var textClass = func() (t [256]byte) {
	for c := range 256 {
		switch {
		case isB64Char(byte(c)):
			t[c] = clsB64
		case c == '\r' || c == '\n':
			t[c] = clsEOL
		}
	}
	return t
}()

func (t *textFinder) Write(p []byte) (int, error) {
	t.runs(p)
	if t.rtf != nil {
		for _, c := range p {
			t.rtfByte(c)
		}
	}
	for q := p; len(q) > 0; {
		i := bytes.IndexByte(q, '\n')
		chunk := q
		if i >= 0 {
			chunk = q[:i]
		}
		if room := maxTextLine - len(t.line); len(chunk) > room {
			t.lineCut = true
			chunk = chunk[:room]
		}
		t.line = append(t.line, chunk...)
		if i < 0 {
			break
		}
		t.endLine()
		q = q[i+1:]
	}
	return len(p), nil
}

// runs follows the runs of base64 characters. Line ends inside a run are
// skipped (wrapped base64) once the run is a line long. Only runs that
// start as a program's magic does are kept.
func (t *textFinder) runs(p []byte) {
	for i := 0; i < len(p); {
		switch textClass[p[i]] {
		case clsB64:
			if !t.prevB64 {
				t.endRun()
				t.prevB64 = true
				t.runLen, t.runChecked = 0, false
				t.runMaybe = p[i] == 'T' || p[i] == 'f'
			}
			j := i + 1
			for j < len(p) && textClass[p[j]] == clsB64 {
				j++
			}
			if t.runMaybe {
				seg := p[i:j]
				t.run = append(t.run, seg[:min(len(seg), maxRunChars-len(t.run))]...)
				if !t.runChecked && len(t.run) >= 5 {
					t.runChecked = true
					if !b64Maybe(t.run) {
						t.runMaybe = false
						t.run = t.run[:0]
					}
				}
			}
			t.runLen += j - i
			i = j
			continue
		case clsEOL:
			if t.prevB64 && t.runLen >= 60 {
				i++
				continue
			}
		}
		if t.prevB64 {
			t.endRun()
			t.prevB64 = false
		}
		i++
	}
}

// rtfByte decodes runs of hex digits (line ends inside a run are skipped)
// into the finder of programs.
func (t *textFinder) rtfByte(c byte) {
	switch {
	case isHex(c) && (t.hexLen > 0 || !t.afterAZ):
		t.hexLen++
		if t.hexLen < minHexRun {
			t.hexRun = append(t.hexRun, c)
			return
		}
		if t.hexLen == minHexRun {
			for _, d := range t.hexRun {
				t.hexDigit(d)
			}
			t.hexRun = t.hexRun[:0]
		}
		t.hexDigit(c)
	case c == '\r' || c == '\n':
	default:
		t.hexLen, t.nibble = 0, -1
		t.hexRun = t.hexRun[:0]
	}
	t.afterAZ = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '\\'
}

func (t *textFinder) hexDigit(c byte) {
	if t.nibble < 0 {
		t.nibble = int(unhex(c))
		return
	}
	t.rtfBuf = append(t.rtfBuf, byte(t.nibble<<4)|unhex(c))
	t.nibble = -1
	if len(t.rtfBuf) >= 4096 {
		t.rtf.Write(t.rtfBuf)
		t.rtfBuf = t.rtfBuf[:0]
	}
}

func (t *textFinder) endRun() {
	if t.runMaybe && t.runLen >= 64 && len(t.b64Heads) < maxTextFinds {
		n := len(t.run) / 4 * 4
		dec := make([]byte, base64.StdEncoding.DecodedLen(n))
		if m, err := base64.StdEncoding.Decode(dec, t.run[:n]); err == nil || m > 0 {
			t.b64Heads = append(t.b64Heads, dec[:m])
		}
	}
	t.run = t.run[:0]
	t.runMaybe = false
	t.runLen = 0
}

func (t *textFinder) endLine() {
	line := bytes.TrimRight(t.line, "\r")
	cut := t.lineCut
	t.line, t.lineCut = t.line[:0], false
	switch {
	case t.inUU:
		if string(bytes.TrimSpace(line)) == "end" || cut {
			t.endUU()
			return
		}
		if len(t.uu) < headSize {
			if out, ok := uuLine(t.uu, line); ok {
				t.uu = out
			} else {
				t.endUU()
			}
		}
		return
	case bytes.HasPrefix(line, []byte("begin ")) && !cut:
		if name, ok := uuBegin(line); ok && len(t.uuNames) < maxTextFinds {
			t.uuNames = append(t.uuNames, name)
			t.inUU = true
			t.uu = nil
		}
		return
	}
	switch t.binhexState {
	case 0:
		if bytes.HasPrefix(line, []byte("(This file must be converted with BinHex")) {
			t.binhexState = 1
		}
	case 1, 2:
		if t.binhexState == 1 {
			if !bytes.HasPrefix(line, []byte(":")) {
				if len(bytes.TrimSpace(line)) > 0 {
					t.binhexState = 0
				}
				return
			}
			line = line[1:]
			t.binhexState = 2
		}
		end := bytes.IndexByte(line, ':')
		if end >= 0 {
			line = line[:end]
		}
		if len(t.binhex) < 512 {
			t.binhex = append(t.binhex, bytes.TrimSpace(line)...)
		}
		if end >= 0 || len(t.binhex) >= 512 {
			if name, ok := binhexName(t.binhex); ok && len(t.binhexNames) < maxTextFinds {
				t.binhexNames = append(t.binhexNames, name)
			}
			t.binhexState, t.binhex = 0, nil
		}
	}
}

func (t *textFinder) endUU() {
	if len(t.uuHeads) < len(t.uuNames) {
		t.uuHeads = append(t.uuHeads, t.uu)
	}
	t.inUU, t.uu = false, nil
}

// close ends the text.
func (t *textFinder) close() {
	t.endRun()
	if len(t.line) > 0 {
		t.endLine()
	}
	if t.inUU {
		t.endUU()
	}
	if t.binhexState == 2 {
		if name, ok := binhexName(t.binhex); ok && len(t.binhexNames) < maxTextFinds {
			t.binhexNames = append(t.binhexNames, name)
		}
	}
	if t.rtf != nil {
		t.rtf.Write(t.rtfBuf)
		t.rtf.close()
	}
}

// binhexAlphabet is BinHex 4.0's 6-bit alphabet.
const binhexAlphabet = "!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr"

// binhexName decodes the start of BinHex 4.0 data (6-bit characters, then
// run-length encoding with 0x90) and returns the file name of its header.
func binhexName(enc []byte) (string, bool) {
	var bits uint32
	var nbits int
	var raw []byte
	for _, c := range enc {
		i := bytes.IndexByte([]byte(binhexAlphabet), c)
		if i < 0 {
			continue
		}
		bits = bits<<6 | uint32(i)
		nbits += 6
		if nbits >= 8 {
			nbits -= 8
			raw = append(raw, byte(bits>>nbits))
		}
	}
	// Run-length decoding: 0x90 n repeats the previous byte n-1 more
	// times; 0x90 0 is a literal 0x90.
	var out []byte
	for i := 0; i < len(raw) && len(out) < 300; i++ {
		if raw[i] == 0x90 && i+1 < len(raw) {
			n := int(raw[i+1])
			i++
			if n == 0 {
				out = append(out, 0x90)
				continue
			}
			if len(out) > 0 {
				for range n - 1 {
					out = append(out, out[len(out)-1])
				}
			}
			continue
		}
		out = append(out, raw[i])
	}
	if len(out) < 1 || int(out[0]) == 0 || len(out) < 1+int(out[0]) {
		return "", false
	}
	return string(out[1 : 1+int(out[0])]), true
}

// printable reports whether b looks like text: no NUL, and nearly all
// bytes printable, white space, or part of UTF-8.
func printable(b []byte) bool {
	if len(b) == 0 || bytes.IndexByte(b, 0) >= 0 {
		return false
	}
	bad := 0
	for _, c := range b {
		if c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f' {
			bad++
		}
	}
	return bad*50 < len(b)
}
