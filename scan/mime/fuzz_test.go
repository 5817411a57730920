package mime

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nobounce/nobounce/scan"
)

// FuzzWalk walks arbitrary bytes as a message: never a panic, a hang or an
// error (the reader does not fail), every spooled file removed, and the
// same answer whether the message comes whole or in pieces through a job.
// Seeded with the golden messages, small corpus messages and the small
// clamav-testfiles samples (when they are there); what fuzzing found is
// kept in testdata/fuzz/FuzzWalk.
func FuzzWalk(f *testing.F) {
	msgs, _ := filepath.Glob(filepath.Join("testdata", "msgs", "*.eml"))
	for _, m := range msgs {
		if b, err := os.ReadFile(m); err == nil {
			f.Add(b)
		}
	}
	if dir := corpusDir(); dir != "" {
		n := 0
		for _, l := range corpusLabels {
			files, _ := filepath.Glob(filepath.Join(dir, "data", l, "*.txt"))
			for _, file := range files {
				if fi, err := os.Stat(file); err != nil || fi.Size() > 8<<10 || n >= 25*len(corpusLabels) {
					continue
				}
				if b, err := corpusMessage(file); err == nil {
					f.Add(b)
					n++
				}
			}
		}
	}
	// The clamav-testfiles samples, attached (the small ones): seeds for
	// the archive and document readers.
	samples, _ := filepath.Glob(filepath.Join(clamavDir, "*"))
	for _, file := range samples {
		if b, err := os.ReadFile(file); err == nil && len(b) < 64<<10 {
			f.Add(msg(mixed(textPart("x\r\n"), attach(filepath.Base(file), "application/octet-stream", b))))
		}
	}
	dir := f.TempDir()
	o := DefaultOptions()
	o.TempDir = dir
	o.ArchiveMaxSize = 1 << 20 // keep each input fast
	o.HeaderRules = []string{"tag Subject /a+b/i", "reject From /^x/"}
	o.BodyRules = []string{"tag /(?i)free.*money/s"}
	s, err := New(o)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rep, err := s.Walk(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("Walk: %v", err)
		}
		if rep.Size != int64(len(data)) {
			t.Errorf("size %d, want %d", rep.Size, len(data))
		}
		res := rep.Result()
		if h, ok := rep.Decision(); ok != (res.Advice != scan.AdviseNone) || ok && (h.Advice != res.Advice || !strings.HasPrefix(res.Rule, h.String())) {
			t.Errorf("decision %+v %v, result %+v", h, ok, res)
		}
		for _, h := range rep.Hits {
			if h.Rule == "" || h.Where == "" && h.Rule != RuleOverLimit {
				t.Errorf("hit without rule or place: %+v", h)
			}
			if h.Advice == scan.AdviseReject && (h.Code < 500 || h.Code > 599 || h.Enhanced == "" || h.Enhanced[0] != '5') {
				t.Errorf("reject without a 5xx code: %+v", h)
			}
		}
		if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
			t.Errorf("spool files left: %v", files)
		}
		// In pieces, through a job.
		j := s.Begin(t.Context(), nil)
		piece := 1 + len(data)%13
		for p := data; len(p) > 0; {
			k := min(piece, len(p))
			if _, err := j.Write(p[:k]); err != nil {
				t.Fatalf("Write: %v", err)
			}
			p = p[k:]
		}
		got := j.Finish(t.Context())
		if !sameResult(got, res) {
			t.Errorf("through a job: %+v, want %+v", got, res)
		}
	})
}

// FuzzFileName decodes an arbitrary Content-Disposition value's file names
// (RFC 2231, RFC 2047, quoting) and takes each apart as the rules do: no
// panic, and the result is consistent: the clean name has no trick left
// in it, taking it apart again changes nothing, and the extension is lower
// case without dots or spaces.
func FuzzFileName(f *testing.F) {
	for _, s := range []string{
		`attachment; filename="invoice.pdf.exe"`,
		`attachment; filename*=utf-8''invoice%E2%80%AEfdp.exe`,
		`attachment; filename*=iso-8859-1'de'Rechnung%20M%E4rz.exe`,
		"attachment;\r\n filename*0*=utf-8''very%20long%20name%20;\r\n filename*1=\"of the file\";\r\n filename*2=\".vbs\"",
		`attachment; filename="=?UTF-8?B?cGhvdG/igKRzY3I=?="`,
		`attachment; filename="=?koi8-r?B?8+Pl9C5odGE=?="`,
		`attachment;; filename=my file.cmd`,
		`inline; filename="tool.scr   "`,
		`attachment; filename="setup.exe."`,
		`attachment; filename*=utf-8''doc.exe%00.pdf`,
		`attachment; filename="a\"b\\c.js"`,
		`attachment; filename="dir/sub\\run.bat"`,
		`attachment; filename=photo` + "\uff0e" + `jpg` + "\u200b" + `.scr`,
		"\x1b$B%^%$%k\x1b(B.bmp",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		decodeWords(value)
		_, rest, _ := strings.Cut(value, ";")
		names := []string{value}
		for _, p := range parseParams(rest) {
			names = append(names, p.value)
		}
		mediaType(value)
		for _, name := range names {
			ni := analyzeName(name)
			if strings.ToLower(ni.ext) != ni.ext || strings.ContainsAny(ni.ext, ". \t") {
				t.Errorf("%q: extension %q", name, ni.ext)
			}
			for _, r := range ni.clean {
				if lookAlikeDots[r] || invisible(r) && r != utf8.RuneError {
					t.Errorf("%q: clean name %q holds %U", name, ni.clean, r)
				}
			}
			if strings.HasSuffix(ni.clean, ".") || strings.HasSuffix(ni.clean, " ") {
				t.Errorf("%q: clean name %q ends in a dot or space", name, ni.clean)
			}
			again := analyzeName(ni.clean)
			if again.clean != ni.clean || again.ext != ni.ext || again.prev != ni.prev {
				t.Errorf("%q: again %+v, first %+v", name, again, ni)
			}
			for _, tr := range again.tricks {
				if tr != "NUL character" && !strings.HasPrefix(tr, "trailing") {
					t.Errorf("%q: trick %q left in %q", name, tr, ni.clean)
				}
			}
			base := name
			if i := strings.LastIndexAny(base, `/\`); i >= 0 {
				base = base[i+1:]
			}
			if strings.ContainsRune(base, 0x202E) && utf8.RuneCountInString(base) <= maxNameRunes && !slices.Contains(ni.tricks, "invisible U+202E") {
				t.Errorf("%q: U+202E not seen: %+v", name, ni)
			}
		}
	})
}
