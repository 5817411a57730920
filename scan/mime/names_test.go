package mime

import (
	"reflect"
	"testing"
)

func TestAnalyzeName(t *testing.T) {
	tests := []struct {
		in        string
		clean     string
		ext, prev string
		tricks    []string
		doubleExt bool
	}{
		{"report.pdf", "report.pdf", "pdf", "", nil, false},
		{"Invoice.PDF.EXE", "Invoice.PDF.EXE", "exe", "pdf", nil, true},
		{"scan.pdf.html", "scan.pdf.html", "html", "pdf", nil, true},
		{"report.docx.pdf", "report.docx.pdf", "pdf", "docx", nil, false},
		{"photos.jpg.zip", "photos.jpg.zip", "zip", "jpg", nil, false},
		{"archive.tar.gz", "archive.tar.gz", "gz", "tar", nil, false},
		{"invoice.pdf          .exe", "invoice.pdf          .exe", "exe", "pdf", nil, true},
		{"setup.exe.", "setup.exe", "exe", "", []string{"trailing dot"}, false},
		{"setup.exe . . ", "setup.exe", "exe", "", []string{"trailing space"}, false},
		{"tool.scr   ", "tool.scr", "scr", "", []string{"trailing space"}, false},
		{"invoice\u202efdp.exe", "invoicefdp.exe", "exe", "", []string{"invisible U+202E"}, false},
		{"a\u200bb.js", "ab.js", "js", "", []string{"invisible U+200B"}, false},
		{"\u06af\u0632\u0627\u0631\u0634\u200c\u0645\u0627\u0644\u06cc.pdf", "\u06af\u0632\u0627\u0631\u0634\u0645\u0627\u0644\u06cc.pdf", "pdf", "", nil, false},
		{"\u05d3\u05d5\u05d7\u200f.docx", "\u05d3\u05d5\u05d7.docx", "docx", "", nil, false},
		{"Col\u00b7legi.pdf", "Col\u00b7legi.pdf", "pdf", "", nil, false},
		{"photo\u2024scr", "photo.scr", "scr", "", []string{"look-alike dot U+2024"}, false},
		{"doc\uff0epdf\uff0eexe", "doc.pdf.exe", "exe", "pdf", []string{"look-alike dot U+FF0E"}, true},
		{"doc.exe\x00.pdf", "doc.exe\x00.pdf", "pdf", "exe\x00", []string{"NUL character"}, false},
		{"\x1b$B%^%$%k\x1b(B.bmp", "\x1b$B%^%$%k\x1b(B.bmp", "bmp", "", nil, false},
		{"dir/sub/run.bat", "run.bat", "bat", "", nil, false},
		{`C:\Users\x\run.vbs`, "run.vbs", "vbs", "", nil, false},
		{"\xf3\xe3.hta", "\ufffd\ufffd.hta", "hta", "", nil, false},
		{"\xd8\u0600\x80.exe", "\ufffd\ufffd.exe", "exe", "", []string{"invisible U+0600"}, false}, // found by FuzzFileName
		{"noext", "noext", "", "", nil, false},
		{".bashrc", ".bashrc", "bashrc", "", nil, false},
		{"a.b c", "a.b c", "", "", nil, false},
		{"...", "", "", "", nil, false},
		{"", "", "", "", nil, false},
		{"tab\there.exe", "tab here.exe", "exe", "", nil, false},
	}
	for _, tt := range tests {
		ni := analyzeName(tt.in)
		if ni.clean != tt.clean || ni.ext != tt.ext || ni.prev != tt.prev || !reflect.DeepEqual(ni.tricks, tt.tricks) {
			t.Errorf("analyzeName(%q) = %+v, want clean %q ext %q prev %q tricks %q", tt.in, ni, tt.clean, tt.ext, tt.prev, tt.tricks)
		}
		if got := ni.doubleExtension(); got != tt.doubleExt {
			t.Errorf("analyzeName(%q).doubleExtension() = %v, want %v", tt.in, got, tt.doubleExt)
		}
	}
}

func TestParseParams(t *testing.T) {
	tests := []struct {
		in   string
		want []param
	}{
		{`name="a b.pdf"; x=1`, []param{{"name", "a b.pdf"}, {"x", "1"}}},
		{`NAME=plain.txt`, []param{{"name", "plain.txt"}}},
		{`filename="q\"uo\\te.exe"`, []param{{"filename", `q"uo\te.exe`}}},
		{`filename="unclosed.exe`, []param{{"filename", "unclosed.exe"}}},
		{`;; filename=my file.cmd ;`, []param{{"filename", "my file.cmd"}}},
		{`novalue; filename=x.js`, []param{{"filename", "x.js"}}},
		{`filename*=utf-8''%E2%80%AEfdp.exe`, []param{{"filename", "\u202efdp.exe"}}},
		{`filename*=iso-8859-1'de'M%E4rz.exe`, []param{{"filename", "März.exe"}}},
		{`filename*=windows-1252''%80.exe`, []param{{"filename", "€.exe"}}},
		{`filename*=koi8-r''%F3.exe`, []param{{"filename", "\xf3.exe"}}},
		{`filename*1="b.exe"; filename*0*=utf-8''a%20`, []param{{"filename", "a b.exe"}}},
		{`filename*0="a"; filename*1=".v"; filename*2="bs"`, []param{{"filename", "a.vbs"}}},
		{`filename*99="x"`, nil},
		{`filename="=?UTF-8?B?w6R4LmV4ZQ==?="`, []param{{"filename", "äx.exe"}}},
		{`filename="=?x-unknown?Q?a.exe?="`, []param{{"filename", "a.exe"}}},
		{`filename="=?broken"`, []param{{"filename", "=?broken"}}},
		{`filename=a.pdf; filename=b.exe`, []param{{"filename", "a.pdf"}, {"filename", "b.exe"}}},
		{``, nil},
		{`=`, nil},
	}
	for _, tt := range tests {
		if got := parseParams(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseParams(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMediaType(t *testing.T) {
	tests := []struct {
		in    string
		typ   string
		ok    bool
		names int
	}{
		{`text/plain; charset=us-ascii`, "text/plain", true, 1},
		{`Multipart/Mixed; boundary="x"`, "multipart/mixed", true, 1},
		{`text/html;;;;`, "text/html", false, 0},
		{`application/octet-stream; name=a b.exe`, "application/octet-stream", false, 1},
		{``, "", false, 0},
	}
	for _, tt := range tests {
		typ, ps, ok := mediaType(tt.in)
		if typ != tt.typ || ok != tt.ok || len(ps) != tt.names {
			t.Errorf("mediaType(%q) = %q, %q, %v; want %q, %d params, %v", tt.in, typ, ps, ok, tt.typ, tt.names, tt.ok)
		}
	}
}
