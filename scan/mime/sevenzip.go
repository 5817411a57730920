package mime

import (
	"bytes"
	"encoding/binary"
	"os"
	"strconv"
	"unicode/utf16"
)

// 7z archives ("7z Format" in 7-Zip's DOC/7zFormat.txt) keep their file
// list in a header at their end. 7-Zip compresses that header by default
// (LZMA, which this package does not decode), so most 7z files can only be
// judged by name and type; when the header is stored plain, its names meet
// the name rules. Either way, a header that names the AES coder (method
// 06 F1 07 01) means encrypted data or an encrypted file list: an
// encrypted archive.

// Property IDs of the 7z header.
const (
	sevenHeader = 0x01
	sevenName   = 0x11
)

var sevenAES = []byte{0x06, 0xf1, 0x07, 0x01}

// maxSevenHeader bounds the end header read.
const maxSevenHeader = 1 << 20

// sevenZip judges a spooled 7z archive.
func (w *walker) sevenZip(f *os.File, size int64, c *content, depth int) {
	where := c.at()
	var start [32]byte
	if _, err := f.ReadAt(start[:], 0); err != nil {
		w.malformed("unreadable 7z", where)
		return
	}
	off := binary.LittleEndian.Uint64(start[12:])
	n := binary.LittleEndian.Uint64(start[20:])
	if off > uint64(size) || n == 0 || n > maxSevenHeader || 32+off+n > uint64(size) {
		w.malformed("unreadable 7z: bad end header position", where)
		return
	}
	h := make([]byte, n)
	if _, err := f.ReadAt(h, int64(32+off)); err != nil {
		w.malformed("unreadable 7z", where)
		return
	}
	if bytes.Contains(h, sevenAES) {
		w.hit(RuleEncryptedArchive, "7z", where, c.replyName, w.o.EncryptedArchives)
	}
	if h[0] != sevenHeader {
		return // compressed (or encrypted) file list
	}
	for i, name := range sevenNames(h) {
		if i >= w.o.MaxParts {
			w.overLimit("max-parts "+strconv.Itoa(w.o.MaxParts)+" (archive members)", where)
			return
		}
		mc := w.member(c, depth, name)
		w.nameRules(name, mc.at(), mc.replyName)
		w.rep.Parts = appendPart(w.rep.Parts, Part{Where: mc.at(), Names: mc.names})
	}
}

// sevenNames finds the kName property of a plain 7z header: 0x11, its size
// (a 7z number), 0 (not external), then UTF-16LE names each ended by a NUL,
// filling the size exactly. The header's other properties are not parsed:
// the first place where all of that holds is taken.
func sevenNames(h []byte) []string {
	for i := 0; i < len(h); i++ {
		if h[i] != sevenName {
			continue
		}
		size, k := sevenNumber(h[i+1:])
		if k == 0 || size < 3 || size > uint64(len(h)) {
			continue
		}
		body := h[i+1+k:]
		if uint64(len(body)) < size || body[0] != 0 {
			continue
		}
		data := body[1:size]
		if len(data)%2 != 0 {
			continue
		}
		var names []string
		var cur []uint16
		for j := 0; j+1 < len(data); j += 2 {
			u := binary.LittleEndian.Uint16(data[j:])
			if u == 0 {
				names = append(names, string(utf16.Decode(cur)))
				cur = cur[:0]
				continue
			}
			cur = append(cur, u)
		}
		if len(cur) == 0 && len(names) > 0 {
			return names
		}
	}
	return nil
}

// sevenNumber reads a 7z NUMBER: the leading one bits of the first byte
// say how many bytes follow (little-endian), the rest of it are the high
// bits. It returns the value and the bytes used (0 when cut short).
func sevenNumber(b []byte) (uint64, int) {
	if len(b) == 0 {
		return 0, 0
	}
	first := b[0]
	var mask byte = 0x80
	var v uint64
	for i := 0; i < 8; i++ {
		if first&mask == 0 {
			high := uint64(first & (mask - 1))
			return v | high<<(8*i), i + 1
		}
		if 1+i >= len(b) {
			return 0, 0
		}
		v |= uint64(b[1+i]) << (8 * i)
		mask >>= 1
	}
	return v, 9
}
