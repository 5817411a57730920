package mime

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"strconv"
	"strings"
)

// RAR archives are listed, not unpacked: their compression is RARLAB's.
// Their file headers are plain (unless the archive encrypts them too), so
// member names meet the name rules, members stored without compression
// meet every rule, and encrypted members or headers are encrypted
// archives. Both formats are read: RAR 5 (RARLAB's technote, "RAR 5.0
// archive format") and RAR 1.5-4 ("RAR version 4.x", the old one).

var errRAR = errors.New("bad RAR header")

// Bounds on a RAR header: names are at most 2048 bytes in both formats.
const maxRARHeader = 1 << 16

type rarMember struct {
	name      string
	size      int64 // packed size: the bytes that follow the header
	stored    bool  // no compression: the packed bytes are the file
	encrypted bool
	dir       bool
}

// rar judges the members of a RAR archive read from r.
func (w *walker) rar(r io.Reader, c *content, depth int) {
	where := c.at()
	br := bufio.NewReaderSize(r, 4096)
	sig, err := br.Peek(8)
	if err != nil {
		w.malformed("unreadable rar: "+trimForDetail(err.Error()), where)
		return
	}
	v5 := string(sig) == "Rar!\x1a\x07\x01\x00"
	if v5 {
		br.Discard(8)
	} else {
		br.Discard(7)
	}
	encrypted := false
	for members := 0; ; {
		var m rarMember
		var more, headersEncrypted bool
		if v5 {
			m, more, headersEncrypted, err = rar5Block(br)
		} else {
			m, more, headersEncrypted, err = rar4Block(br)
		}
		if headersEncrypted {
			w.hit(RuleEncryptedArchive, "rar (file names encrypted)", where, c.replyName, w.o.EncryptedArchives)
			return
		}
		if err != nil {
			if err != io.EOF {
				w.malformed("unreadable rar: "+trimForDetail(err.Error()), where)
			}
			break
		}
		if !more {
			break
		}
		if m.name == "" {
			if _, err := br.Discard(int(min(m.size, 1<<62))); err != nil {
				break
			}
			continue
		}
		if members++; members > w.o.MaxParts {
			w.overLimit("max-parts "+strconv.Itoa(w.o.MaxParts)+" (archive members)", where)
			return
		}
		mc := w.member(c, depth, m.name)
		switch {
		case m.dir:
		case m.encrypted:
			encrypted = true
			w.nameRules(m.name, mc.at(), mc.replyName)
		case m.stored:
			lr := &io.LimitedReader{R: br, N: m.size}
			w.content(lr, mc)
			io.Copy(io.Discard, lr)
			m.size = 0
		default:
			w.nameRules(m.name, mc.at(), mc.replyName)
			w.rep.Parts = appendPart(w.rep.Parts, Part{Where: mc.at(), Names: mc.names})
		}
		if m.size > 0 {
			if n, _ := io.CopyN(io.Discard, br, m.size); n < m.size {
				break
			}
		}
	}
	if encrypted {
		w.hit(RuleEncryptedArchive, "rar", where, c.replyName, w.o.EncryptedArchives)
	}
}

// vint reads a RAR 5 variable-length integer: 7 bits a byte, low first.
func vint(b []byte) (uint64, []byte, error) {
	var v uint64
	for i := 0; i < len(b) && i < 10; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, b[i+1:], nil
		}
	}
	return 0, nil, errRAR
}

// rar5Block reads one RAR 5 block header; more is false at the end of the
// archive. The member's packed data is left unread (m.size bytes).
func rar5Block(br *bufio.Reader) (m rarMember, more, headersEncrypted bool, err error) {
	// CRC32, then the header size as a vint.
	pre, err := br.Peek(4 + 3)
	if len(pre) < 5 {
		if err == nil {
			err = errRAR
		}
		return m, false, false, err
	}
	size, rest, err := vint(pre[4:])
	if err != nil || size == 0 || size > maxRARHeader {
		return m, false, false, errRAR
	}
	sizeLen := len(pre[4:]) - len(rest)
	if _, err := br.Discard(4 + sizeLen); err != nil {
		return m, false, false, err
	}
	h := make([]byte, size)
	if _, err := io.ReadFull(br, h); err != nil {
		return m, false, false, err
	}
	typ, h, err := vint(h)
	if err != nil {
		return m, false, false, err
	}
	flags, h, err := vint(h)
	if err != nil {
		return m, false, false, err
	}
	var extraSize, dataSize uint64
	if flags&1 != 0 {
		if extraSize, h, err = vint(h); err != nil {
			return m, false, false, err
		}
	}
	if flags&2 != 0 {
		if dataSize, h, err = vint(h); err != nil {
			return m, false, false, err
		}
	}
	if dataSize > 1<<62 {
		return m, false, false, errRAR
	}
	m.size = int64(dataSize)
	switch typ {
	case 4: // archive encryption: what follows is encrypted
		return m, false, true, nil
	case 5: // end of archive
		return m, false, false, nil
	case 2: // file
	default: // main, service headers: skip their data
		return m, true, false, nil
	}
	var fileFlags, v uint64
	if fileFlags, h, err = vint(h); err != nil {
		return m, false, false, err
	}
	if _, h, err = vint(h); err != nil { // unpacked size
		return m, false, false, err
	}
	if _, h, err = vint(h); err != nil { // attributes
		return m, false, false, err
	}
	skip := 0
	if fileFlags&2 != 0 {
		skip += 4 // mtime
	}
	if fileFlags&4 != 0 {
		skip += 4 // CRC32
	}
	if len(h) < skip {
		return m, false, false, errRAR
	}
	h = h[skip:]
	var comp uint64
	if comp, h, err = vint(h); err != nil {
		return m, false, false, err
	}
	if _, h, err = vint(h); err != nil { // host OS
		return m, false, false, err
	}
	if v, h, err = vint(h); err != nil || v > uint64(len(h)) {
		return m, false, false, errRAR
	}
	m.name = string(h[:v])
	h = h[v:]
	m.dir = fileFlags&1 != 0
	m.stored = (comp>>7)&7 == 0 // compression method 0: stored
	// The extra area ends the header: records of size, type, data; type 1
	// is file encryption.
	if extraSize > 0 && extraSize <= uint64(len(h)) {
		extra := h[uint64(len(h))-extraSize:]
		for len(extra) > 0 {
			rsize, r, err := vint(extra)
			if err != nil || rsize == 0 || rsize > uint64(len(r)) {
				break
			}
			if rtype, _, err := vint(r[:rsize]); err == nil && rtype == 1 {
				m.encrypted = true
			}
			extra = r[rsize:]
		}
	}
	if m.name == "" {
		m.name = "(unnamed)"
	}
	return m, true, false, nil
}

// rar4Block reads one RAR 1.5-4 block header.
func rar4Block(br *bufio.Reader) (m rarMember, more, headersEncrypted bool, err error) {
	le := binary.LittleEndian
	var fixed [7]byte
	if _, err := io.ReadFull(br, fixed[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			err = errRAR
		}
		return m, false, false, err
	}
	typ := fixed[2]
	flags := le.Uint16(fixed[3:])
	size := int(le.Uint16(fixed[5:]))
	if size < 7 {
		return m, false, false, errRAR
	}
	h := make([]byte, size-7)
	if _, err := io.ReadFull(br, h); err != nil {
		return m, false, false, err
	}
	var add int64
	if flags&0x8000 != 0 && len(h) >= 4 {
		add = int64(le.Uint32(h))
	}
	m.size = add
	switch typ {
	case 0x73: // main header
		if flags&0x0080 != 0 {
			return m, false, true, nil
		}
		return m, true, false, nil
	case 0x7b: // end of archive
		return m, false, false, nil
	case 0x74: // file
	default:
		return m, true, false, nil
	}
	if len(h) < 25 {
		return m, false, false, errRAR
	}
	method := h[18]
	nameSize := int(le.Uint16(h[19:]))
	off := 25
	if flags&0x100 != 0 { // 64-bit sizes
		if len(h) < 33 {
			return m, false, false, errRAR
		}
		m.size += int64(le.Uint32(h[25:])) << 32
		off = 33
	}
	if off+nameSize > len(h) || m.size < 0 {
		return m, false, false, errRAR
	}
	name := h[off : off+nameSize]
	if flags&0x200 != 0 {
		// A Unicode name: the ASCII form, NUL, then RARLAB's encoding of
		// the Unicode form. The ASCII form keeps the extension.
		if i := strings.IndexByte(string(name), 0); i >= 0 {
			name = name[:i]
		}
	}
	m.name = string(name)
	m.encrypted = flags&0x04 != 0
	m.dir = flags&0xe0 == 0xe0
	m.stored = method == 0x30
	if m.name == "" {
		m.name = "(unnamed)"
	}
	return m, true, false, nil
}
