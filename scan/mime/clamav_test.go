package mime

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/nobounce/nobounce/scan"
)

// clamavDir holds the samples of the Debian package clamav-testfiles:
// ClamAV's harmless test program clam.exe, packed, archived, and embedded
// in documents in 44 ways.
const clamavDir = "/usr/share/clamav-testfiles"

// clamavWant is, for each sample, the rule that decides when it is attached
// under a name that says nothing ("document.dat", application/octet-stream),
// and when attached under its own name. "" = not caught.
//
// clam.7z is caught because its file list is stored plain; 7-Zip
// compresses it by default, and such a 7z holding a program passes (its
// LZMA is not decoded here) unless "7z" is made a banned type.
// clam_cache_emax.tgz is caught by the archive depth limit, not by
// reaching the program: it is nested nine .tgz deep.
var clamavWant = map[string][2]string{
	"clam-aspack.exe":      {"executable pe", "banned-extension exe"},
	"clam-fsg.exe":         {"executable pe", "banned-extension exe"},
	"clam-mew.exe":         {"executable pe", "banned-extension exe"},
	"clam-nsis.exe":        {"executable pe", "banned-extension exe"},
	"clam-pespin.exe":      {"executable pe", "banned-extension exe"},
	"clam-petite.exe":      {"executable pe", "banned-extension exe"},
	"clam-upack.exe":       {"executable pe", "banned-extension exe"},
	"clam-upx.exe":         {"executable pe", "banned-extension exe"},
	"clam-wwpack.exe":      {"executable pe", "banned-extension exe"},
	"clam-yc.exe":          {"executable pe", "banned-extension exe"},
	"clam.7z":              {`banned-extension exe in part 2 "document.dat" > "clam.exe"`, `banned-extension exe in part 2 "clam.7z" > "clam.exe"`},
	"clam.arj":             {"banned-type arj", "banned-type arj"},
	"clam.bin-be.cpio":     {"embedded-executable pe at offset 36", "embedded-executable pe at offset 36"},
	"clam.bin-le.cpio":     {"embedded-executable pe at offset 36", "embedded-executable pe at offset 36"},
	"clam.bz2.zip":         {`banned-extension exe in part 2 "document.dat" > "clam.exe"`, `banned-extension exe in part 2 "clam.bz2.zip" > "clam.exe"`},
	"clam.cab":             {"banned-type cab", "banned-type cab"},
	"clam.chm":             {"banned-type chm", "banned-extension chm"},
	"clam.d64.zip":         {`banned-extension exe in part 2 "document.dat" > "clam.exe"`, `banned-extension exe in part 2 "clam.d64.zip" > "clam.exe"`},
	"clam.ea05.exe":        {"executable pe", "banned-extension exe"},
	"clam.ea06.exe":        {"executable pe", "banned-extension exe"},
	"clam.exe":             {"executable pe", "banned-extension exe"},
	"clam.exe.binhex":      {`banned-extension exe in part 2 "document.dat" binhex "clam.exe"`, `banned-extension exe in part 2 "clam.exe.binhex" binhex "clam.exe"`},
	"clam.exe.bz2":         {`executable pe in part 2 "document.dat" > (bzip2)`, `banned-extension exe in part 2 "clam.exe.bz2" > "clam.exe"`},
	"clam.exe.html":        {"executable pe in part 2 \"document.dat\" (base64 in text)", "executable pe in part 2 \"clam.exe.html\" (base64 in text)"},
	"clam.exe.mbox.base64": {`banned-extension exe in part 2.1 "clam.exe"`, `banned-extension exe in part 2.1 "clam.exe"`},
	"clam.exe.mbox.uu":     {`banned-extension exe in part 2.1 "clam.exe"`, `banned-extension exe in part 2.1 "clam.exe"`},
	"clam.exe.rtf":         {"embedded-executable pe in RTF hex data", "embedded-executable pe in RTF hex data"},
	"clam.exe.szdd":        {"banned-type szdd", "banned-type szdd"},
	"clam.impl.zip":        {`banned-extension exe in part 2 "document.dat" > "CLAM.EXE"`, `banned-extension exe in part 2 "clam.impl.zip" > "CLAM.EXE"`},
	"clam.mail":            {`banned-extension exe in part 2.2 "clam.exe"`, `banned-extension exe in part 2.2 "clam.exe"`},
	"clam.newc.cpio":       {"embedded-executable pe at offset 120", "embedded-executable pe at offset 120"},
	"clam.odc.cpio":        {"embedded-executable pe at offset 85", "embedded-executable pe at offset 85"},
	"clam.ole.doc":         {`banned-extension exe in part 2 "document.dat" > "Clam.exe"`, `banned-extension exe in part 2 "clam.ole.doc" > "Clam.exe"`},
	"clam.pdf":             {"embedded-executable pe at offset 5816", "embedded-executable pe at offset 5816"},
	"clam.ppt":             {`banned-extension exe in part 2 "document.dat" > embedded object 1 > "clam.exe"`, `banned-extension exe in part 2 "clam.ppt" > embedded object 1 > "clam.exe"`},
	"clam.sis":             {"banned-type sis", "banned-type sis"},
	"clam.tar.gz":          {`banned-extension exe in part 2 "document.dat" > (gzip) > "clam.exe"`, `banned-extension exe in part 2 "clam.tar.gz" > "clam.tar" > "clam.exe"`},
	"clam.tnef":            {"embedded-executable pe at offset 3345", "embedded-executable pe at offset 3345"},
	"clam.zip":             {`banned-extension exe in part 2 "document.dat" > "clam.exe"`, `banned-extension exe in part 2 "clam.zip" > "clam.exe"`},
	"clam_IScab_ext.exe":   {"executable pe", "banned-extension exe"},
	"clam_IScab_int.exe":   {"executable pe", "banned-extension exe"},
	"clam_ISmsi_ext.exe":   {"executable pe", "banned-extension exe"},
	"clam_ISmsi_int.exe":   {"executable pe", "banned-extension exe"},
	"clam_cache_emax.tgz":  {"over-limit archive-depth 5", "over-limit archive-depth 5"},
}

// TestClamavSamples attaches every sample of clamav-testfiles to a message,
// under a neutral name and under its own, and walks it with the default
// options and no clamd: every sample holding a Windows program is caught
// by the MIME rules alone, except those clamavWant says. Skipped when the
// package is not installed.
func TestClamavSamples(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(clamavDir, "*"))
	if len(files) == 0 {
		t.Skip("clamav-testfiles is not installed (apt-get install clamav-testfiles)")
	}
	if len(files) != len(clamavWant) {
		t.Errorf("%d samples in %s, %d in clamavWant", len(files), clamavDir, len(clamavWant))
	}
	s, err := New(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	var table []string
	caught := 0
	for _, f := range files {
		name := filepath.Base(f)
		want, ok := clamavWant[name]
		if !ok {
			t.Errorf("%s: not in clamavWant", name)
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var got [2]string
		for i, attName := range []string{"document.dat", name} {
			m := msg(mixed(textPart("Please see the attachment.\r\n"), attach(attName, "application/octet-stream", data)))
			rep, err := s.Walk(bytes.NewReader(m))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			r := rep.Result()
			if r.Advice == scan.AdviseReject {
				got[i] = r.Rule
			} else if r.Advice != scan.AdviseNone {
				t.Errorf("%s as %s: advice %s (%s)", name, attName, r.Advice, r.Rule)
			}
			if (want[i] == "") != (got[i] == "") || !strings.HasPrefix(got[i], want[i]) {
				t.Errorf("%s as %s: %q, want %q", name, attName, got[i], want[i])
			}
		}
		if got[0] != "" {
			caught++
		}
		table = append(table, name+"\n      as document.dat: "+orNot(got[0])+"\n      as itself:       "+orNot(got[1]))
	}
	sort.Strings(table)
	t.Logf("%d of %d samples caught under a neutral name:\n  %s", caught, len(files), strings.Join(table, "\n  "))
}

func orNot(s string) string {
	if s == "" {
		return "not caught"
	}
	return s
}
