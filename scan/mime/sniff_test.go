package mime

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"reflect"
	"testing"
)

func TestSniff(t *testing.T) {
	iso := make([]byte, 5)
	copy(iso, "CD001")
	tests := []struct {
		name string
		head []byte
		at   []byte
		want string
	}{
		{"pe", fakePE(), nil, typePE},
		{"pe with small e_lfanew", smallLfanew(), nil, typePE},
		{"dos program", append([]byte("MZ\x50\x00\x02\x00\x00\x00\x04\x00\x0f\x00\xff\xff\x00\x00"), append(make([]byte, 8), append([]byte{0x3e, 0}, make([]byte, 64)...)...)...), nil, typePE},
		{"text starting with MZ", []byte("MZ is a fine start for a sentence, isn't it? " + string(bytes.Repeat([]byte("x"), 64))), nil, ""},
		{"elf", fakeELF(), nil, typeELF},
		{"macho", []byte("\xcf\xfa\xed\xfe\x07\x00\x00\x01"), nil, typeMachO},
		{"macho fat", []byte("\xca\xfe\xba\xbe\x00\x00\x00\x02"), nil, typeMachO},
		{"java class", []byte("\xca\xfe\xba\xbe\x00\x00\x00\x34"), nil, ""},
		{"zip", []byte("PK\x03\x04\x14\x00"), nil, typeZip},
		{"empty zip", []byte("PK\x05\x06\x00\x00"), nil, typeZip},
		{"gzip", []byte("\x1f\x8b\x08\x00"), nil, typeGzip},
		{"bzip2", []byte("BZh91AY&SY"), nil, typeBzip2},
		{"xz", []byte("\xfd7zXZ\x00\x00"), nil, typeXZ},
		{"tar", append(make([]byte, 257), []byte("ustar\x0000")...), nil, typeTar},
		{"7z", []byte("7z\xbc\xaf\x27\x1c\x00\x04"), nil, type7z},
		{"rar", []byte("Rar!\x1a\x07\x01\x00"), nil, typeRar},
		{"arj", []byte("\x60\xea\x2c\x00\x22"), nil, typeArj},
		{"cab", []byte("MSCF\x00\x00\x00\x00"), nil, typeCab},
		{"chm", []byte("ITSF\x03\x00\x00\x00"), nil, typeCHM},
		{"cpio", []byte("070701000"), nil, typeCpio},
		{"ace", []byte("\x00\x00\x00\x00\x00\x00\x00**ACE**"), nil, typeAce},
		{"lzh", []byte("\x00\x00-lh5-"), nil, typeLzh},
		{"szdd", []byte("SZDD\x88\xf0\x27\x33"), nil, typeSZDD},
		{"lnk", []byte("L\x00\x00\x00\x01\x14\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"), nil, typeLNK},
		{"vhdx", []byte("vhdxfile"), nil, typeVHDX},
		{"cfb", []byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"), nil, typeCFB},
		{"pdf", []byte("%PDF-1.7\n"), nil, typePDF},
		{"pdf after junk", []byte("junk\r\n%PDF-1.4"), nil, typePDF},
		{"rtf", []byte(`{\rtf1\ansi`), nil, typeRTF},
		{"tnef", []byte("\x78\x9f\x3e\x22"), nil, typeTNEF},
		{"binhex", []byte("(This file must be converted with BinHex 4.0)\r\n:"), nil, typeBinHex},
		{"iso", []byte("anything"), iso, typeISO},
		{"sis", []byte("\x00\x00\x00\x01\x12\x3a\x00\x10\x19\x04\x00\x10"), nil, typeSIS},
		{"text", []byte("Hello"), nil, ""},
		{"empty", nil, nil, ""},
	}
	for _, tt := range tests {
		if got := sniff(tt.head, tt.at); got != tt.want {
			t.Errorf("%s: sniff = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestPEFinder finds a program at any offset, written in pieces of any
// size, and nothing in random bytes.
func TestPEFinder(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	noise := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	for _, off := range []int{1, 100, 4095, 65536, 200000, 300001} {
		data := append(noise(off), fakePE()...)
		data = append(data, noise(1000)...)
		for _, piece := range []int{1, 7, 4096, 100000, len(data)} {
			f := newPEFinder(0)
			for i := 0; i < len(data); i += piece {
				f.Write(data[i:min(i+piece, len(data))])
			}
			f.close()
			if f.found != int64(off) {
				t.Errorf("offset %d, pieces of %d: found at %d", off, piece, f.found)
			}
		}
	}
	// A PE header whose e_lfanew is far: found once the window has it.
	far := make([]byte, 0x9000)
	copy(far, "MZ")
	binary.LittleEndian.PutUint32(far[0x3c:], 0x8000)
	copy(far[0x8000:], "PE\x00\x00")
	f := newPEFinder(0)
	f.Write(append([]byte("xx"), far...))
	f.close()
	if f.found != 2 {
		t.Errorf("far e_lfanew: found at %d", f.found)
	}
	// Random data (2 MB) holds "MZ" many times, never a program.
	f = newPEFinder(0)
	f.Write(noise(2 << 20))
	f.close()
	if f.found >= 0 {
		t.Errorf("random data: found at %d", f.found)
	}
	// The limit stops the search.
	f = newPEFinder(1000)
	f.Write(append(noise(5000), fakePE()...))
	f.close()
	if f.found >= 0 {
		t.Errorf("past the limit: found at %d", f.found)
	}
}

// TestSniffClamavSamples checks the types of the clamav-testfiles samples
// that have one (skipped without the package).
func TestSniffClamavSamples(t *testing.T) {
	want := map[string]string{
		"clam.exe": typePE, "clam.7z": type7z, "clam.arj": typeArj, "clam.cab": typeCab, "clam.chm": typeCHM,
		"clam.bin-be.cpio": typeCpio, "clam.bin-le.cpio": typeCpio, "clam.newc.cpio": typeCpio, "clam.odc.cpio": typeCpio,
		"clam.zip": typeZip, "clam.exe.bz2": typeBzip2, "clam.tar.gz": typeGzip, "clam.exe.szdd": typeSZDD,
		"clam.ole.doc": typeCFB, "clam.ppt": typeCFB, "clam.pdf": typePDF, "clam.exe.rtf": typeRTF,
		"clam.tnef": typeTNEF, "clam.sis": typeSIS, "clam.exe.binhex": typeBinHex, "clam-mew.exe": typePE, "clam-upack.exe": typePE,
	}
	for name, typ := range want {
		b, err := os.ReadFile("/usr/share/clamav-testfiles/" + name)
		if err != nil {
			t.Skipf("clamav-testfiles: %v", err)
		}
		if got := sniff(b[:min(len(b), headSize)], nil); got != typ {
			t.Errorf("%s: sniff = %q, want %q", name, got, typ)
		}
	}
}

// smallLfanew is a header like clam-mew.exe's: "PE\0\0" at 12, inside the
// DOS header.
func smallLfanew() []byte {
	b := make([]byte, 128)
	copy(b, "MZ")
	copy(b[12:], "PE\x00\x00")
	binary.LittleEndian.PutUint32(b[0x3c:], 12)
	return b
}

func TestSevenZipNames(t *testing.T) {
	utf := func(names ...string) []byte {
		var b []byte
		for _, n := range names {
			for _, r := range n {
				b = binary.LittleEndian.AppendUint16(b, uint16(r))
			}
			b = append(b, 0, 0)
		}
		return b
	}
	prop := func(data []byte) []byte { return append([]byte{sevenName, byte(len(data) + 1), 0}, data...) }
	tests := []struct {
		name string
		h    []byte
		want []string
	}{
		{"two names", append([]byte{0x01, 0x05, 0x02, 0x11}, prop(utf("a.txt", "run.exe"))...), []string{"a.txt", "run.exe"}},
		{"a false 0x11 first", append([]byte{0x01, 0x11, 0x40, 0x00, 0x12}, prop(utf("x.js"))...), []string{"x.js"}},
		{"no names", []byte{0x01, 0x04, 0x00}, nil},
		{"cut short", []byte{0x01, 0x11, 0x09, 0x00, 'a', 0}, nil},
	}
	for _, tt := range tests {
		if got := sevenNames(tt.h); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
	for _, tt := range []struct {
		in   []byte
		v    uint64
		used int
	}{
		{[]byte{0x05}, 5, 1}, {[]byte{0x81, 0x02}, 0x102, 2}, {[]byte{0xc0, 0x34, 0x12}, 0x1234, 3},
		{[]byte{0xff, 1, 0, 0, 0, 0, 0, 0, 0}, 1, 9}, {[]byte{0x81}, 0, 0}, {nil, 0, 0},
	} {
		if v, used := sevenNumber(tt.in); v != tt.v || used != tt.used {
			t.Errorf("sevenNumber(%x) = %d, %d; want %d, %d", tt.in, v, used, tt.v, tt.used)
		}
	}
}
