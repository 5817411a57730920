package mime

import (
	"bytes"
	"encoding/binary"
)

// File types are recognised by their first bytes (their "magic"), never by
// the name or the declared Content-Type, which the sender chooses.

// Types the walker recognises. The names are those of Options.BannedTypes.
const (
	typePE     = "pe"    // Windows program or DLL: "MZ", and "PE\0\0" (or NE/LE/LX) where the DOS header points
	typeELF    = "elf"   // Unix program: "\x7fELF"
	typeMachO  = "macho" // macOS program: FEEDFACE, FEEDFACF (either byte order), CAFEBABE with few architectures
	typeZip    = "zip"   // "PK\3\4" (also jar, docx, xlsx, odt, apk)
	typeGzip   = "gzip"
	typeBzip2  = "bzip2"
	typeXZ     = "xz"
	typeTar    = "tar" // "ustar" at 257
	type7z     = "7z"
	typeRar    = "rar"
	typeArj    = "arj"
	typeCab    = "cab"  // Microsoft Cabinet
	typeCHM    = "chm"  // compiled HTML help ("ITSF")
	typeCpio   = "cpio" // all four cpio formats
	typeAce    = "ace"
	typeLzh    = "lzh"
	typeSZDD   = "szdd" // MS-DOS COMPRESS.EXE output ("setup.ex_")
	typeSIS    = "sis"  // Symbian installer
	typeLNK    = "lnk"  // Windows shortcut
	typeISO    = "iso"  // ISO 9660 / UDF disc image
	typeVHDX   = "vhdx" // Hyper-V disk image
	typeCFB    = "cfb"  // OLE2 compound file: doc, xls, ppt, msi, msg
	typePDF    = "pdf"
	typeRTF    = "rtf"
	typeTNEF   = "tnef" // winmail.dat
	typeBinHex = "binhex"
)

// KnownTypes lists every type name the walker can recognise, for checking
// Options.BannedTypes.
var KnownTypes = []string{
	typePE, typeELF, typeMachO, typeZip, typeGzip, typeBzip2, typeXZ, typeTar, type7z, typeRar,
	typeArj, typeCab, typeCHM, typeCpio, typeAce, typeLzh, typeSZDD, typeSIS, typeLNK, typeISO,
	typeVHDX, typeCFB, typePDF, typeRTF, typeTNEF, typeBinHex,
}

// executableTypes are programs by their bytes.
var executableTypes = set(typePE, typeELF, typeMachO)

// headSize is how much of the start of a file is kept for sniffing.
const headSize = 8192

// isoOffset is where ISO 9660 and UDF put their volume descriptors; they
// are beyond the head, so the walker keeps those bytes separately.
const isoOffset = 0x8001

// sniff names the type of a file from its first bytes ("" when none of
// the above). at32k holds the 5 bytes at isoOffset when the file is that
// long.
func sniff(head, at32k []byte) string {
	switch {
	case isPE(head, 0, true):
		return typePE
	case bytes.HasPrefix(head, []byte("\x7fELF")) && len(head) > 4 && (head[4] == 1 || head[4] == 2):
		return typeELF
	case isMachO(head):
		return typeMachO
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")),
		bytes.HasPrefix(head, []byte("PK\x07\x08PK\x03\x04")):
		return typeZip
	case bytes.HasPrefix(head, []byte("\x1f\x8b\x08")):
		return typeGzip
	case len(head) >= 10 && bytes.HasPrefix(head, []byte("BZh")) && head[3] >= '1' && head[3] <= '9' &&
		bytes.Equal(head[4:10], []byte{0x31, 0x41, 0x59, 0x26, 0x53, 0x59}):
		return typeBzip2
	case bytes.HasPrefix(head, []byte("\xfd7zXZ\x00")):
		return typeXZ
	case len(head) >= 262 && bytes.Equal(head[257:262], []byte("ustar")):
		return typeTar
	case bytes.HasPrefix(head, []byte("7z\xbc\xaf\x27\x1c")):
		return type7z
	case bytes.HasPrefix(head, []byte("Rar!\x1a\x07\x00")), bytes.HasPrefix(head, []byte("Rar!\x1a\x07\x01\x00")):
		return typeRar
	case len(head) >= 4 && head[0] == 0x60 && head[1] == 0xea && binary.LittleEndian.Uint16(head[2:]) <= 2600:
		return typeArj
	case bytes.HasPrefix(head, []byte("MSCF\x00\x00\x00\x00")):
		return typeCab
	case bytes.HasPrefix(head, []byte("ITSF")) && len(head) >= 8 && binary.LittleEndian.Uint32(head[4:]) == 3:
		return typeCHM
	case bytes.HasPrefix(head, []byte("070707")), bytes.HasPrefix(head, []byte("070701")), bytes.HasPrefix(head, []byte("070702")),
		bytes.HasPrefix(head, []byte{0xc7, 0x71}), bytes.HasPrefix(head, []byte{0x71, 0xc7}):
		return typeCpio
	case len(head) >= 14 && bytes.Equal(head[7:14], []byte("**ACE**")):
		return typeAce
	case len(head) >= 7 && head[2] == '-' && head[3] == 'l' && (head[4] == 'h' || head[4] == 'z') && head[6] == '-':
		return typeLzh
	case bytes.HasPrefix(head, []byte("SZDD\x88\xf0\x27\x33")), bytes.HasPrefix(head, []byte("KWAJ\x88\xf0\x27\xd1")):
		return typeSZDD
	case len(head) >= 12 && binary.LittleEndian.Uint32(head[8:]) == 0x10000419 &&
		(binary.LittleEndian.Uint32(head[4:]) == 0x1000006D || binary.LittleEndian.Uint32(head[4:]) == 0x10003A12):
		return typeSIS
	case bytes.HasPrefix(head, []byte("L\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46")):
		return typeLNK
	case bytes.HasPrefix(head, []byte("vhdxfile")):
		return typeVHDX
	case bytes.HasPrefix(head, []byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1")):
		return typeCFB
	case bytes.Contains(head[:min(len(head), 1024)], []byte("%PDF-")):
		return typePDF
	case bytes.HasPrefix(head, []byte(`{\rt`)):
		return typeRTF
	case bytes.HasPrefix(head, []byte{0x78, 0x9f, 0x3e, 0x22}):
		return typeTNEF
	case bytes.Contains(head[:min(len(head), 1024)], []byte("(This file must be converted with BinHex")):
		return typeBinHex
	case bytes.Equal(at32k, []byte("CD001")), bytes.Equal(at32k, []byte("BEA01")):
		return typeISO
	}
	return ""
}

// isPE reports whether b[off:] starts a Windows program: "MZ", then at the
// offset the DOS header gives (e_lfanew, at 0x3C) a "PE\0\0", "NE", "LE" or
// "LX" signature. With dos, a bare DOS program ("MZ" with a sane DOS header
// and no new header) counts too.
func isPE(b []byte, off int, dos bool) bool {
	if off+0x40 > len(b) || b[off] != 'M' || b[off+1] != 'Z' {
		return false
	}
	lfanew := int(binary.LittleEndian.Uint32(b[off+0x3c:]))
	if lfanew >= 4 && lfanew < 1<<16 && off+lfanew+4 <= len(b) {
		sig := b[off+lfanew : off+lfanew+4]
		if string(sig) == "PE\x00\x00" || string(sig[:2]) == "NE" || string(sig[:2]) == "LE" || string(sig[:2]) == "LX" {
			return true
		}
	}
	if !dos {
		return false
	}
	// e_cblp (bytes in the last page) < 512, e_cp (pages) ≥ 1, e_cparhdr
	// (header paragraphs) ≥ 2, and a relocation table inside the header:
	// text starting with "MZ" fails these.
	cblp := binary.LittleEndian.Uint16(b[2:])
	cp := binary.LittleEndian.Uint16(b[4:])
	cparhdr := binary.LittleEndian.Uint16(b[8:])
	lfarlc := binary.LittleEndian.Uint16(b[0x18:])
	return cblp < 512 && cp >= 1 && cp < 0x1000 && cparhdr >= 2 && int(lfarlc) < int(cparhdr)*16 && lfarlc >= 0x1c
}

func isMachO(b []byte) bool {
	if len(b) < 8 {
		return false
	}
	switch binary.BigEndian.Uint32(b) {
	case 0xfeedface, 0xfeedfacf, 0xcefaedfe, 0xcffaedfe:
		return true
	case 0xcafebabe:
		// Also Java class files, whose next word is the version (≥ 45).
		n := binary.BigEndian.Uint32(b[4:])
		return n > 0 && n < 20
	}
	return false
}

// peFinder looks for a Windows program inside other bytes (a document, an
// installer, a disc image stored without compression) as they stream by.
// It keeps a window of the last bytes so that a header cut between two
// writes is still seen.
type peFinder struct {
	win   []byte
	next  int   // index in win of the next "MZ" candidate to check
	seen  int64 // bytes before win[0]
	found int64 // offset of the first program found, -1 if none
	limit int64 // stop looking after this many bytes (0: no limit)
}

// peWindow must exceed the largest e_lfanew accepted (64 KiB) plus the
// signature.
const peWindow = 1<<16 + 64

func newPEFinder(limit int64) *peFinder { return &peFinder{found: -1, limit: limit} }

func (f *peFinder) Write(p []byte) (int, error) {
	n := len(p)
	if f.limit > 0 {
		p = p[:min(int64(len(p)), max(0, f.limit-f.seen-int64(len(f.win))))]
	}
	if f.found >= 0 || len(p) == 0 {
		return n, nil
	}
	f.win = append(f.win, p...)
	// A candidate is checked once the window holds a full header after it.
	f.check(len(f.win) - peWindow)
	if len(f.win) > 2*peWindow {
		drop := min(len(f.win)-peWindow, f.next)
		f.seen += int64(drop)
		f.win = append(f.win[:0], f.win[drop:]...)
		f.next -= drop
	}
	return n, nil
}

// check looks for "MZ" starting at f.next and before end.
func (f *peFinder) check(end int) {
	for f.found < 0 && f.next < end {
		j := bytes.Index(f.win[f.next:min(end+1, len(f.win))], []byte("MZ"))
		if j < 0 {
			f.next = end
			return
		}
		at := f.next + j
		if at >= end {
			f.next = end
			return
		}
		if isPE(f.win, at, false) {
			f.found = f.seen + int64(at)
		}
		f.next = at + 1
	}
}

// close checks what is left in the window at the end of the input.
func (f *peFinder) close() {
	f.check(len(f.win))
	f.win = nil
}
