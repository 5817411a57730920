package mime

import (
	"bufio"
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strconv"
	"unicode/utf16"

	"github.com/nobounce/nobounce/scan"
)

// OLE compound files ([MS-CFB]: doc, xls, ppt, msg, msi) are little file
// systems: their streams are chains of sectors in any order, so a program
// stored in one is cut in pieces in the file's bytes. The walker reads the
// streams and judges:
//
//   - "\x01Ole10Native" streams: an embedded file ("Package" object),
//     with its label and original path, whose bytes meet every rule;
//   - the "PowerPoint Document" stream's embedded objects (ExOleObjStg
//     records, zlib-compressed), which are compound files themselves;
//   - every stream, searched for an embedded Windows program.

// Special sector numbers.
const (
	cfbEndOfChain = 0xFFFFFFFE
	cfbFree       = 0xFFFFFFFF
	cfbMaxRegular = 0xFFFFFFFA
)

var errCFB = errors.New("bad compound file")

type cfbFile struct {
	f          *os.File
	size       int64
	shift      uint   // sector size = 1 << shift
	miniCutoff uint32 // streams below it live in the mini stream
	fat        []uint32
	miniFAT    []uint32
	miniChain  []uint32 // sectors of the mini stream
	entries    []cfbEntry
}

type cfbEntry struct {
	name  string
	typ   byte // 1 storage, 2 stream, 5 root
	start uint32
	size  int64
}

func (c *cfbFile) sectorOffset(s uint32) int64 { return int64(s+1) << c.shift }

// chain follows a FAT chain from start; at most limit sectors.
func chain(fat []uint32, start uint32, limit int) ([]uint32, error) {
	var out []uint32
	for s := start; s != cfbEndOfChain; {
		if s > cfbMaxRegular || int(s) >= len(fat) || len(out) >= limit {
			if s == cfbFree && len(out) == 0 {
				return nil, nil
			}
			return out, errCFB
		}
		out = append(out, s)
		s = fat[s]
	}
	return out, nil
}

func (c *cfbFile) readSector(s uint32, buf []byte) error {
	_, err := c.f.ReadAt(buf, c.sectorOffset(s))
	if err == io.EOF {
		err = nil // a short last sector
	}
	return err
}

// openCFB reads a compound file's header, allocation tables and directory.
func openCFB(f *os.File, size int64) (*cfbFile, error) {
	var h [512]byte
	if _, err := f.ReadAt(h[:], 0); err != nil {
		return nil, errCFB
	}
	le := binary.LittleEndian
	c := &cfbFile{f: f, size: size, shift: uint(le.Uint16(h[0x1e:]))}
	if c.shift != 9 && c.shift != 12 || le.Uint16(h[0x20:]) != 6 {
		return nil, errCFB
	}
	c.miniCutoff = le.Uint32(h[0x38:])
	ss := 1 << c.shift
	nSectors := int(size>>c.shift) + 1
	// The FAT's sectors: 109 in the header, the rest in the DIFAT chain.
	nFAT := int(le.Uint32(h[0x2c:]))
	if nFAT > nSectors {
		return nil, errCFB
	}
	var fatSectors []uint32
	for i := 0; i < 109 && len(fatSectors) < nFAT; i++ {
		fatSectors = append(fatSectors, le.Uint32(h[0x4c+4*i:]))
	}
	buf := make([]byte, ss)
	for d, n := le.Uint32(h[0x44:]), 0; len(fatSectors) < nFAT && d <= cfbMaxRegular; n++ {
		if n > nSectors || c.readSector(d, buf) != nil {
			return nil, errCFB
		}
		for i := 0; i < ss/4-1 && len(fatSectors) < nFAT; i++ {
			fatSectors = append(fatSectors, le.Uint32(buf[4*i:]))
		}
		d = le.Uint32(buf[ss-4:])
	}
	for _, s := range fatSectors {
		if s > cfbMaxRegular || c.readSector(s, buf) != nil {
			return nil, errCFB
		}
		for i := 0; i < ss/4; i++ {
			c.fat = append(c.fat, le.Uint32(buf[4*i:]))
		}
	}
	// The directory.
	dir, err := chain(c.fat, le.Uint32(h[0x30:]), nSectors)
	if err != nil || len(dir) == 0 {
		return nil, errCFB
	}
	for _, s := range dir {
		if c.readSector(s, buf) != nil {
			return nil, errCFB
		}
		for i := 0; i+128 <= ss; i += 128 {
			e := buf[i : i+128]
			n := int(le.Uint16(e[0x40:]))
			if n > 64 || n%2 != 0 {
				n = 0
			}
			u := make([]uint16, 0, 32)
			for j := 0; j < n-2; j += 2 {
				u = append(u, le.Uint16(e[j:]))
			}
			size := int64(le.Uint64(e[0x78:]))
			if c.shift == 9 {
				size = int64(le.Uint32(e[0x78:]))
			}
			c.entries = append(c.entries, cfbEntry{name: string(utf16.Decode(u)), typ: e[0x42], start: le.Uint32(e[0x74:]), size: size})
		}
	}
	if len(c.entries) == 0 || c.entries[0].typ != 5 {
		return nil, errCFB
	}
	// The mini FAT and the mini stream (the root entry's stream).
	mf, err := chain(c.fat, le.Uint32(h[0x3c:]), nSectors)
	if err == nil {
		for _, s := range mf {
			if c.readSector(s, buf) != nil {
				break
			}
			for i := 0; i < ss/4; i++ {
				c.miniFAT = append(c.miniFAT, le.Uint32(buf[4*i:]))
			}
		}
	}
	c.miniChain, _ = chain(c.fat, c.entries[0].start, nSectors)
	return c, nil
}

// stream returns a reader of an entry's bytes.
func (c *cfbFile) stream(e cfbEntry) io.Reader {
	if e.size <= 0 {
		return bytes.NewReader(nil)
	}
	if e.size < int64(c.miniCutoff) {
		sectors, _ := chain(c.miniFAT, e.start, int(e.size/64)+2)
		return &cfbReader{c: c, sectors: sectors, mini: true, left: e.size}
	}
	sectors, _ := chain(c.fat, e.start, int(e.size>>c.shift)+2)
	return &cfbReader{c: c, sectors: sectors, left: e.size}
}

// cfbReader reads a chain of sectors (or mini sectors).
type cfbReader struct {
	c       *cfbFile
	sectors []uint32
	mini    bool
	pos     int64 // offset in the stream
	left    int64
}

func (r *cfbReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	size := int64(1) << r.c.shift
	if r.mini {
		size = 64
	}
	idx := r.pos / size
	if idx >= int64(len(r.sectors)) {
		return 0, io.ErrUnexpectedEOF
	}
	within := r.pos % size
	n := min(int64(len(p)), size-within, r.left)
	var off int64
	if r.mini {
		// Mini sector → offset in the mini stream → a regular sector.
		ms := int64(r.sectors[idx])*64 + within
		big := int64(1) << r.c.shift
		if ms/big >= int64(len(r.c.miniChain)) {
			return 0, io.ErrUnexpectedEOF
		}
		off = r.c.sectorOffset(r.c.miniChain[ms/big]) + ms%big
	} else {
		off = r.c.sectorOffset(r.sectors[idx]) + within
	}
	m, err := r.c.f.ReadAt(p[:n], off)
	r.pos += int64(m)
	r.left -= int64(m)
	if err == io.EOF && m > 0 {
		err = nil
	}
	return m, err
}

// cfb judges the streams of a spooled compound file.
func (w *walker) cfb(f *os.File, size int64, c *content, depth int) {
	where := c.at()
	cf, err := openCFB(f, size)
	if err != nil {
		w.malformed("unreadable OLE compound file", where)
		return
	}
	streams := 0
	for _, e := range cf.entries {
		if e.typ != 2 {
			continue
		}
		streams++
		if streams > w.o.MaxParts {
			w.overLimit("max-parts "+strconv.Itoa(w.o.MaxParts)+" (archive members)", where)
			return
		}
		switch e.name {
		case "\x01Ole10Native":
			w.ole10Native(cf.stream(e), c, depth)
		case "PowerPoint Document":
			w.pptObjects(cf.stream(e), c, depth)
		}
		if w.o.Executables {
			pe := newPEFinder(memberScan)
			io.Copy(pe, io.LimitReader(&budgetReader{r: cf.stream(e), w: w}, memberScan))
			pe.close()
			if pe.found >= 0 {
				w.hit(RuleEmbeddedExecutable, "pe in stream "+strconv.Quote(e.name), where, c.replyName, scan.AdviseReject)
			}
		}
	}
}

// ole10Native judges the file of an OLE "Package" object: a size, flags,
// a label, the original path, a temporary path, then the file's bytes.
func (w *walker) ole10Native(r io.Reader, c *content, depth int) {
	b, _ := io.ReadAll(io.LimitReader(&budgetReader{r: r, w: w}, memberScan+4096))
	le := binary.LittleEndian
	if len(b) < 6 {
		return
	}
	p := b[6:] // total size, flags
	cstr := func() (string, bool) {
		i := bytes.IndexByte(p, 0)
		if i < 0 || i > 1024 {
			return "", false
		}
		s := string(p[:i])
		p = p[i+1:]
		return s, true
	}
	label, ok1 := cstr()
	path, ok2 := cstr()
	if !ok1 || !ok2 || len(p) < 8 {
		return
	}
	p = p[4:] // flags, unknown
	n := int(le.Uint32(p))
	p = p[4:]
	if n > len(p) {
		return
	}
	p = p[n:] // temporary path
	if len(p) < 4 {
		return
	}
	size := int(le.Uint32(p))
	data := p[4:]
	if size < len(data) {
		data = data[:size]
	}
	var names []string
	for _, s := range []string{label, path} {
		if s != "" && (len(names) == 0 || names[0] != s) {
			names = append(names, s)
		}
	}
	mc := w.member(c, depth, "")
	mc.names = names
	w.content(bytes.NewReader(data), mc)
}

// pptObjects finds the embedded objects of a PowerPoint stream: records
// of type ExOleObjStg (0x1011), zlib-compressed (after their size) when
// their instance is 1. Records are read as they come; a container record
// (version 0xF) holds records.
func (w *walker) pptObjects(r io.Reader, c *content, depth int) {
	br := bufio.NewReaderSize(&budgetReader{r: r, w: w}, 4096)
	le := binary.LittleEndian
	var hdr [8]byte
	for found := 0; found < w.o.MaxParts; {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		verInst := le.Uint16(hdr[0:])
		typ := le.Uint16(hdr[2:])
		body := &io.LimitedReader{R: br, N: int64(le.Uint32(hdr[4:]))}
		if verInst&0xF == 0xF {
			continue // a container: its records follow
		}
		if typ == 0x1011 {
			found++
			var obj io.Reader = body
			if verInst>>4 == 1 {
				var size [4]byte
				if _, err := io.ReadFull(body, size[:]); err != nil {
					return
				}
				zr, err := zlib.NewReader(body)
				if err != nil {
					io.Copy(io.Discard, body)
					continue
				}
				obj = &budgetReader{r: zr, w: w}
			}
			mc := w.member(c, depth, "")
			mc.where = c.at() + " > embedded object " + strconv.Itoa(found)
			w.content(obj, mc)
		}
		if _, err := io.Copy(io.Discard, body); err != nil {
			return
		}
	}
}
