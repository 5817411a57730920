package mime

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"flag"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nobounce/nobounce/scan"
)

var update = flag.Bool("update", false, "rewrite testdata/msgs/*.eml and *.golden from the builders and the current output")

// The golden tests: each message of testdata/msgs is built by hand below
// (the builders are the source; the .eml files are what they build, kept
// for reading, for `nobounce scan` and as fuzz seeds), walked, and its
// report compared with the .golden file beside it. want is the intended
// decision, written here so that -update cannot quietly accept a
// regression: the deciding hit's text must start with it ("" = no advice).

type goldenCase struct {
	name  string
	build func() []byte
	want  string         // prefix of Result.Rule; "" for no advice
	opts  func(*Options) // nil = DefaultOptions
}

var goldenCases = []goldenCase{
	// Clean mail.
	{"clean-text", func() []byte { return msg(textPart("Hello,\r\nsee you tomorrow.\r\n")) }, "", nil},
	{"clean-lf", func() []byte {
		return bytes.ReplaceAll(msg(mixed(textPart("Plain LF line ends.\r\n"), attach("notes.txt", "text/plain", []byte("a\r\nb\r\n")))), []byte("\r\n"), []byte("\n"))
	}, "", nil},
	{"clean-pdf", func() []byte {
		return msg(mixed(textPart("Invoice attached.\r\n"), attach("invoice.pdf", "application/pdf", fakePDF(nil))))
	}, "", nil},
	{"clean-docx", func() []byte {
		return msg(mixed(textPart("Draft.\r\n"), attach("report.docx.pdf", "application/pdf", fakePDF(nil)),
			attach("draft.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
				zipOf(zipEntry{name: "[Content_Types].xml", data: []byte("<Types/>")}, zipEntry{name: "word/document.xml", data: []byte("<w:document/>")}))))
	}, "", nil},
	{"clean-alternative", func() []byte {
		return msg(mixedType("multipart/alternative", textPart("Hi\r\n"), part("text/html; charset=utf-8", "quoted-printable", "", []byte("<p>Hi =E2=80=94 there</p>\r\n"))))
	}, "", nil},
	{"clean-photos-zip", func() []byte {
		return msg(mixed(textPart("Photos.\r\n"), attach("photos.jpg.zip", "application/zip", zipOf(zipEntry{name: "a.jpg", data: []byte("\xff\xd8\xff\xe0JFIF")}))))
	}, "", nil},

	// Banned extensions and names.
	{"exe-attachment", func() []byte {
		return msg(mixed(textPart("Run it.\r\n"), attach("setup.exe", "application/octet-stream", fakePE())))
	}, "banned-extension exe in part 2", nil},
	{"script-by-name", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("Invoice.JS", "text/plain", []byte("WScript.Echo(1)\r\n"))))
	}, "banned-extension js in part 2", nil},
	{"double-extension", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("invoice.pdf.exe", "application/pdf", []byte("%PDF-1.4 not really\r\n"))))
	}, "double-extension pdf.exe in part 2", nil},
	{"double-extension-html", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("scan.pdf.html", "text/html", []byte("<html><form action=x></form></html>\r\n"))))
	}, "double-extension pdf.html in part 2", nil},
	{"trailing-dot", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("setup.exe.", "application/octet-stream", []byte("data"))))
	}, "name-trick trailing dot in part 2", nil},
	{"trailing-space", func() []byte {
		return msg(mixed(textPart("x\r\n"), rawPart("application/octet-stream; name=\"tool.scr   \"", "attachment; filename=\"tool.scr   \"", "base64", []byte("data"))))
	}, "name-trick trailing space in part 2", nil},
	{"rlo", func() []byte {
		// "invoice\u202Efdp.exe" shows as "invoiceexe.pdf"; written with RFC 2231.
		return msg(mixed(textPart("x\r\n"), rawPart("application/pdf", "attachment; filename*=utf-8''invoice%E2%80%AEfdp.exe", "base64", []byte("data"))))
	}, "name-trick invisible U+202E in part 2", nil},
	{"lookalike-dot", func() []byte {
		return msg(mixed(textPart("x\r\n"), rawPart("application/octet-stream", "attachment; filename=\"=?UTF-8?B?"+base64.StdEncoding.EncodeToString([]byte("photo\u2024scr"))+"?=\"", "base64", []byte("data"))))
	}, "name-trick look-alike dot U+2024 in part 2", nil},
	{"nul-in-name", func() []byte {
		return msg(mixed(textPart("x\r\n"), rawPart("application/pdf", "attachment; filename*=utf-8''doc.exe%00.pdf", "base64", []byte("data"))))
	}, "name-trick NUL character in part 2", nil},
	{"rfc2231-latin1", func() []byte {
		// The standard library drops RFC 2231 values in charsets other than
		// UTF-8; a client shows "Rechnung März.exe".
		return msg(mixed(textPart("x\r\n"), rawPart("application/octet-stream", "attachment; filename*=iso-8859-1'de'Rechnung%20M%E4rz.exe", "base64", []byte("data"))))
	}, "banned-extension exe in part 2", nil},
	{"rfc2231-continuations", func() []byte {
		return msg(mixed(textPart("x\r\n"), rawPart("application/octet-stream", "attachment;\r\n filename*0*=utf-8''very%20long%20name%20;\r\n filename*1=\"of the file\";\r\n filename*2=\".vbs\"", "base64", []byte("data"))))
	}, "banned-extension vbs in part 2", nil},
	{"rfc2047-koi8", func() []byte {
		// An unknown charset: the bytes are judged as they are.
		return msg(mixed(textPart("x\r\n"), rawPart("application/octet-stream; name=\"=?koi8-r?B?"+base64.StdEncoding.EncodeToString([]byte("\xf3\xe3\xe5\xf4.hta"))+"?=\"", "", "base64", []byte("data"))))
	}, "banned-extension hta in part 2", nil},
	{"name-in-content-type-only", func() []byte {
		return msg(mixed(textPart("x\r\n"), rawPart("application/octet-stream; name=run.bat", "", "base64", []byte("@echo off\r\n"))))
	}, "banned-extension bat in part 2", nil},
	{"sloppy-disposition", func() []byte {
		// Unquoted with a space, and a stray ';;': the standard parser refuses the field.
		return msg(mixed(textPart("x\r\n"), rawPart("application/octet-stream", "attachment;; filename=my file.cmd", "base64", []byte("data"))))
	}, "banned-extension cmd in part 2", nil},

	// Bytes.
	{"pe-as-pdf", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("statement.pdf", "application/pdf", fakePE())))
	}, "executable pe in part 2", nil},
	{"pe-unnamed", func() []byte {
		return msg(mixed(textPart("x\r\n"), part("application/octet-stream", "base64", "", fakePE())))
	}, "executable pe in part 2", nil},
	{"elf", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("update", "application/octet-stream", fakeELF())))
	}, "executable elf in part 2", nil},
	{"macho", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("installer", "application/octet-stream", append([]byte{0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1}, make([]byte, 64)...))))
	}, "executable macho in part 2", nil},
	{"pe-in-pdf", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("doc.pdf", "application/pdf", fakePDF(fakePE()))))
	}, "embedded-executable pe at offset", nil},
	{"pe-in-rtf", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("letter.rtf", "application/rtf", fakeRTF(fakePE()))))
	}, "embedded-executable pe in RTF hex data in part 2", nil},
	{"banned-type-cab", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("data.bin", "application/octet-stream", append([]byte("MSCF\x00\x00\x00\x00"), make([]byte, 64)...))))
	}, "banned-type cab in part 2", nil},
	{"banned-type-iso", func() []byte {
		iso := make([]byte, 0x8800)
		copy(iso[0x8001:], "CD001")
		return msg(mixed(textPart("x\r\n"), attach("holiday.zip", "application/zip", iso)))
	}, "banned-type iso in part 2", nil},
	{"html-smuggling", func() []byte {
		html := "<html><body><a download=\"a.pdf\" href=\"data:application/octet-stream;base64," + base64.StdEncoding.EncodeToString(fakePE()) + "\">open</a></body></html>\r\n"
		return msg(mixed(textPart("x\r\n"), attach("statement.html", "text/html", []byte(html))))
	}, "executable pe in part 2", nil},
	{"elf-base64-in-html", func() []byte {
		html := "<html><script>var b = atob(\"" + base64.StdEncoding.EncodeToString(fakeELF()) + "\");</script></html>\r\n"
		return msg(part("text/html; charset=utf-8", "7bit", "", []byte(html)))
	}, "executable elf in part 1 (base64 in text)", nil},
	{"uuencoded-in-text", func() []byte {
		return msg(textPart("Here it is:\r\n\r\n" + uuencode("patch.exe", fakePE()) + "\r\nbye\r\n"))
	}, "banned-extension exe in part 1 uuencoded", nil},
	{"uuencode-cte", func() []byte {
		return msg(mixed(textPart("x\r\n"), rawPartRaw("application/octet-stream; name=\"notes.txt\"", "", "x-uuencode", []byte(uuencode("notes.scr", fakePE())))))
	}, "banned-extension scr in part 2", nil},
	{"attached-message", func() []byte {
		inner := msg(mixed(textPart("inner\r\n"), attach("game.exe", "application/octet-stream", fakePE())))
		return msg(mixed(textPart("Forwarded.\r\n"), rawPartRaw("message/rfc822", "attachment", "", inner)))
	}, "banned-extension exe in part 2.2", nil},
	{"eml-as-octet-stream", func() []byte {
		inner := msg(mixed(textPart("inner\r\n"), attach("game.com", "application/octet-stream", fakePE())))
		return msg(mixed(textPart("x\r\n"), attach("forward.eml", "application/octet-stream", inner)))
	}, "banned-extension com in part 2.2", nil},
	{"digest", func() []byte {
		inner := msg(mixed(textPart("inner\r\n"), attach("x.pif", "application/octet-stream", []byte("data"))))
		return msg(mixedType("multipart/digest", rawPartRaw("", "", "", inner)))
	}, "banned-extension pif in part 1.2", nil},

	// Archives.
	{"zip-exe", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("docs.zip", "application/zip", zipOf(zipEntry{name: "docs/readme.txt", data: []byte("hi")}, zipEntry{name: "docs/setup.exe", data: fakePE()}))))
	}, `banned-extension exe in part 2 "docs.zip" > "docs/setup.exe"`, nil},
	{"zip-pe-renamed", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("scan.zip", "application/zip", zipOf(zipEntry{name: "scan.jpg", data: fakePE()}))))
	}, `executable pe in part 2 "scan.zip" > "scan.jpg"`, nil},
	{"zip-stored-pe", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("scan.zip", "application/zip", zipOf(zipEntry{name: "scan.dat", data: fakePE(), store: true}))))
	}, `executable pe in part 2 "scan.zip" > "scan.dat"`, nil},
	{"zip-in-zip", func() []byte {
		inner := zipOf(zipEntry{name: "invoice.pdf.scr", data: []byte("x")})
		return msg(mixed(textPart("x\r\n"), attach("outer.zip", "application/zip", zipOf(zipEntry{name: "inner.zip", data: inner}))))
	}, `double-extension pdf.scr in part 2 "outer.zip" > "inner.zip" > "invoice.pdf.scr"`, nil},
	{"zip-encrypted", func() []byte {
		return msg(mixed(textPart("The password is 1234.\r\n"), attach("secret.zip", "application/zip", zipOf(zipEntry{name: "report.doc", data: []byte("xxxx"), encrypted: true}))))
	}, `encrypted-archive zip in part 2 "secret.zip"`, nil},
	{"zip-encrypted-tag", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("secret.zip", "application/zip", zipOf(zipEntry{name: "report.doc", data: []byte("xxxx"), encrypted: true}))))
	}, `encrypted-archive zip in part 2 "secret.zip"`, func(o *Options) { o.EncryptedArchives = scan.AdviseTag }},
	{"zip-encrypted-exe-name", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("secret.zip", "application/zip", zipOf(zipEntry{name: "run.exe", data: []byte("xxxx"), encrypted: true}))))
	}, `banned-extension exe in part 2 "secret.zip" > "run.exe"`, func(o *Options) { o.EncryptedArchives = scan.AdviseNone }},
	{"zip-rlo-member", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("a.zip", "application/zip", zipOf(zipEntry{name: "photo\u202egpj.js", data: []byte("x")}))))
	}, `name-trick invisible U+202E in part 2 "a.zip" > "photo\u202egpj.js"`, nil},
	{"zip-truncated", func() []byte {
		z := zipOf(zipEntry{name: "tool.exe", data: fakePE()})
		return msg(mixed(textPart("x\r\n"), attach("a.zip", "application/zip", z[:len(z)-30])))
	}, `banned-extension exe in part 2 "a.zip" > "tool.exe"`, nil},
	{"tar-gz", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("src.tar.gz", "application/gzip", gzipOf(tarOf(map[string][]byte{"src/main.c": []byte("int main(){}"), "src/install.ps1": []byte("iex")})))))
	}, `banned-extension ps1 in part 2 "src.tar.gz" > "src.tar" > "src/install.ps1"`, nil},
	{"rar5-names", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("docs.rar", "application/vnd.rar", rar5Of(false, zipEntry{name: "readme.txt", data: []byte("hi")}, zipEntry{name: "docs/invoice.pdf.vbs", data: []byte("x")}))))
	}, `double-extension pdf.vbs in part 2 "docs.rar" > "docs/invoice.pdf.vbs"`, nil},
	{"rar5-stored-pe", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("scan.rar", "application/octet-stream", rar5Of(false, zipEntry{name: "scan.jpg", data: fakePE()}))))
	}, `executable pe in part 2 "scan.rar" > "scan.jpg"`, nil},
	{"rar5-encrypted", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("secret.rar", "application/octet-stream", rar5Of(true, zipEntry{name: "report.doc", data: []byte("xxxx")}))))
	}, `encrypted-archive rar in part 2 "secret.rar"`, nil},
	{"rar4-exe", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("old.rar", "application/octet-stream", rar4Of(zipEntry{name: "readme.txt", data: []byte("hi")}, zipEntry{name: "setup.exe", data: []byte("not really")}))))
	}, `banned-extension exe in part 2 "old.rar" > "setup.exe"`, nil},
	{"rar4-clean", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("photos.rar", "application/octet-stream", rar4Of(zipEntry{name: "a.jpg", data: []byte("\xff\xd8\xff\xe0")}))))
	}, "", nil},
	{"gz-pe", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("log.gz", "application/gzip", gzipOf(fakePE()))))
	}, `executable pe in part 2 "log.gz" > "log"`, nil},
	{"archive-depth", func() []byte {
		z := zipOf(zipEntry{name: "a.txt", data: []byte("x")})
		for i := range 3 {
			z = zipOf(zipEntry{name: fmt.Sprintf("level%d.zip", i), data: z})
		}
		return msg(mixed(textPart("x\r\n"), attach("deep.zip", "application/zip", z)))
	}, "over-limit archive-depth 3", func(o *Options) { o.ArchiveDepth = 3 }},
	{"archive-depth-ok", func() []byte {
		z := zipOf(zipEntry{name: "a.txt", data: []byte("x")})
		for i := range 2 {
			z = zipOf(zipEntry{name: fmt.Sprintf("level%d.zip", i), data: z})
		}
		return msg(mixed(textPart("x\r\n"), attach("deep.zip", "application/zip", z)))
	}, "", func(o *Options) { o.ArchiveDepth = 3 }},
	{"archive-off", func() []byte {
		return msg(mixed(textPart("x\r\n"), attach("docs.zip", "application/zip", zipOf(zipEntry{name: "setup.exe", data: fakePE()}))))
	}, "", func(o *Options) { o.ArchiveDepth = 0 }},

	// Limits.
	{"max-depth", func() []byte {
		p := textPart("deep\r\n")
		for range 6 {
			p = mixed(p)
		}
		return msg(p)
	}, "over-limit max-depth 5", func(o *Options) { o.MaxDepth = 5 }},
	{"max-parts", func() []byte {
		var ps [][]byte
		for range 12 {
			ps = append(ps, textPart("x\r\n"))
		}
		return msg(mixed(ps...))
	}, "over-limit max-parts 10 in part 11", func(o *Options) { o.MaxParts = 10 }},
	{"max-header-bytes", func() []byte {
		return msg(mixed(textPart("x\r\n"), rawPartRaw("text/plain", "", "", []byte("ok\r\n"), "X-Long: "+strings.Repeat("a", 3000))))
	}, "over-limit max-header-bytes 2048 in part 2", func(o *Options) { o.MaxHeaderBytes = 2048 }},
	{"max-parts-tempfail", func() []byte {
		var ps [][]byte
		for range 12 {
			ps = append(ps, textPart("x\r\n"))
		}
		return msg(mixed(ps...))
	}, "over-limit max-parts 10 in part 11", func(o *Options) { o.MaxParts = 10; o.OverLimit = scan.AdviseTempFail }},

	// Malformed MIME.
	{"malformed-truncated", func() []byte {
		m := msg(mixed(textPart("x\r\n"), attach("a.txt", "text/plain", []byte("abc"))))
		return m[:bytes.LastIndex(m, []byte("--"+boundary+"--"))]
	}, "malformed multipart not closed (truncated) in message body", nil},
	{"malformed-truncated-reject", func() []byte {
		m := msg(mixed(textPart("x\r\n"), attach("a.txt", "text/plain", []byte("abc"))))
		return m[:bytes.LastIndex(m, []byte("--"+boundary+"--"))]
	}, "malformed multipart not closed (truncated) in message body", func(o *Options) { o.Malformed = scan.AdviseReject }},
	{"malformed-no-boundary-param", func() []byte {
		return []byte(strings.ReplaceAll(string(msg(mixed(textPart("x\r\n")))), "; boundary=\""+boundary+"\"", ""))
	}, "malformed multipart without a boundary in header", nil},
	{"malformed-wrong-boundary", func() []byte {
		return []byte(strings.ReplaceAll(string(msg(mixed(textPart("x\r\n")))), "boundary=\""+boundary+"\"", "boundary=\"other\""))
	}, "malformed multipart without its boundary line in message body", nil},
	{"malformed-base64", func() []byte {
		return msg(mixed(textPart("x\r\n"), rawPartRaw("application/octet-stream; name=\"a.bin\"", "", "base64", []byte("TVqQ!!AAMAAAAEAAAA\r\n//8A#\r\n"))))
	}, "malformed base64 with characters outside its alphabet in part 2", nil},
	{"malformed-base64-exe", func() []byte {
		// Junk in the base64 hides nothing: the decoder skips it.
		enc := base64.StdEncoding.EncodeToString(fakePE())
		enc = enc[:10] + "*" + enc[10:]
		return msg(mixed(textPart("x\r\n"), rawPartRaw("application/octet-stream; name=\"a.bin\"", "", "base64", []byte(enc+"\r\n"))))
	}, "executable pe in part 2", nil},
	{"malformed-header-line", func() []byte {
		return msg(mixed(textPart("x\r\n"), []byte("Content-Type: text/plain\r\nthis is not a header\r\n\r\nbody\r\n")))
	}, "malformed header line without a field name in part 2", nil},
	{"malformed-cte", func() []byte {
		return msg(mixed(textPart("x\r\n"), rawPartRaw("text/plain", "", "x-gzip64", []byte("abc\r\n"))))
	}, `malformed unknown Content-Transfer-Encoding "x-gzip64" in part 2`, nil},
	{"malformed-two-content-types", func() []byte {
		return msg(mixed(textPart("x\r\n"), []byte("Content-Type: text/plain\r\nContent-Type: application/octet-stream; name=\"a.exe\"\r\n\r\nbody\r\n")))
	}, "banned-extension exe in part 2", nil},
	{"malformed-qp", func() []byte { return msg(part("text/plain", "quoted-printable", "", []byte("a =ZZ b=\r\nc\r\n"))) }, "malformed quoted-printable with bad escapes in part 1", nil},
	{"malformed-accept", func() []byte { return msg(part("text/plain", "quoted-printable", "", []byte("a =ZZ b\r\n"))) }, "", func(o *Options) { o.Malformed = scan.AdviseNone }},

	// Header and body rules.
	{"header-rule", func() []byte {
		return []byte("From: a@example.com\r\nSubject: =?utf-8?q?ADV=3A_cheap?=\r\nMIME-Version: 1.0\r\n\r\nhi\r\n")
	}, "header-rule #1", func(o *Options) {
		o.HeaderRules = []string{"reject Subject /^ADV:/ No advertising here", "tag X-Mailer /bulk/i"}
	}},
	{"header-rule-tempfail", func() []byte {
		return []byte("From: a@example.com\r\nX-Mailer: BULK mailer\r\nMIME-Version: 1.0\r\n\r\nhi\r\n")
	}, "header-rule #2", func(o *Options) {
		o.HeaderRules = []string{"reject Subject /^ADV:/", "tempfail X-Mailer /bulk/i Try later"}
	}},
	{"header-rule-miss", func() []byte { return []byte("From: a@example.com\r\nSubject: hello\r\n\r\nhi\r\n") }, "", func(o *Options) {
		o.HeaderRules = []string{"reject Subject /^ADV:/"}
	}},
	{"body-rule", func() []byte {
		return msg(mixedType("multipart/alternative", textPart("plain\r\n"), part("text/html; charset=iso-8859-1", "quoted-printable", "", []byte("<b>Gr=FC=DFe</b> from the lottery=\r\n winner\r\n"))))
	}, "body-rule #1 (?i)lottery winner in part 2", func(o *Options) {
		o.BodyRules = []string{"reject /lottery winner/i You did not win", "tag /grüße/i"}
	}},
	{"body-rule-charset", func() []byte {
		return msg(part("text/plain; charset=iso-8859-1", "quoted-printable", "", []byte("Gr=FC=DFe\r\n")))
	}, "body-rule #1", func(o *Options) {
		o.BodyRules = []string{"tag /Grüße/"}
	}},
}

// Building blocks of hand-built messages.

const boundary = "==b0und4ry"

func msg(body []byte) []byte {
	return append([]byte("From: Sender <sender@example.com>\r\nTo: rcpt@example.org\r\nSubject: test\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <t@example.com>\r\nMIME-Version: 1.0\r\n"), body...)
}

// part is a header block and body; the header block ends with the empty line.
func part(ctype, cte, disposition string, data []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "Content-Type: %s\r\n", ctype)
	if disposition != "" {
		fmt.Fprintf(&b, "Content-Disposition: %s\r\n", disposition)
	}
	if cte != "" {
		fmt.Fprintf(&b, "Content-Transfer-Encoding: %s\r\n", cte)
	}
	b.WriteString("\r\n")
	if cte == "base64" {
		b.WriteString(b64(data))
	} else {
		b.Write(data)
	}
	return b.Bytes()
}

func b64(data []byte) string {
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(enc) > 76 {
		b.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	b.WriteString(enc + "\r\n")
	return b.String()
}

func textPart(s string) []byte { return part("text/plain; charset=us-ascii", "7bit", "", []byte(s)) }

func attach(name, ctype string, data []byte) []byte {
	return part(ctype+"; name=\""+name+"\"", "base64", "attachment; filename=\""+name+"\"", data)
}

// rawPart takes its header values as written and base64-encodes data.
func rawPart(ctype, disposition, cte string, data []byte) []byte {
	return part(ctype, cte, disposition, data)
}

// rawPartRaw writes data as it is, with optional extra header lines.
func rawPartRaw(ctype, disposition, cte string, data []byte, extra ...string) []byte {
	var b bytes.Buffer
	if ctype != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", ctype)
	}
	if disposition != "" {
		fmt.Fprintf(&b, "Content-Disposition: %s\r\n", disposition)
	}
	if cte != "" {
		fmt.Fprintf(&b, "Content-Transfer-Encoding: %s\r\n", cte)
	}
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	b.WriteString("\r\n")
	b.Write(data)
	return b.Bytes()
}

func mixed(parts ...[]byte) []byte { return mixedType("multipart/mixed", parts...) }

func mixedType(ctype string, parts ...[]byte) []byte {
	// Nested multiparts need their own boundaries: a suffix by depth.
	bnd := boundary
	for _, p := range parts {
		if i := bytes.Index(p, []byte("boundary=\""+boundary)); i >= 0 {
			j := bytes.IndexByte(p[i+len("boundary=\""):], '"')
			inner := string(p[i+len("boundary=\"") : i+len("boundary=\"")+j])
			if len(inner)+1 > len(bnd) {
				bnd = inner + "x"
			}
		}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "Content-Type: %s; boundary=\"%s\"\r\n\r\nThis is a multi-part message in MIME format.\r\n", ctype, bnd)
	for _, p := range parts {
		fmt.Fprintf(&b, "\r\n--%s\r\n", bnd)
		b.Write(bytes.TrimSuffix(p, []byte("\r\n")))
	}
	fmt.Fprintf(&b, "\r\n--%s--\r\n", bnd)
	return b.Bytes()
}

// fakePE is the smallest thing with a Windows program's headers: a DOS
// header pointing at "PE\0\0" and a COFF header.
func fakePE() []byte {
	b := make([]byte, 0x200)
	copy(b, "MZ")
	binary.LittleEndian.PutUint16(b[2:], 0x90)
	binary.LittleEndian.PutUint16(b[4:], 3)
	binary.LittleEndian.PutUint32(b[0x3c:], 0x80)
	copy(b[0x40:], "This program cannot be run in DOS mode.\r\r\n$")
	copy(b[0x80:], "PE\x00\x00\x4c\x01\x01\x00")
	return b
}

func fakeELF() []byte {
	return append([]byte("\x7fELF\x02\x01\x01\x00"), make([]byte, 56)...)
}

func fakePDF(embedded []byte) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n")
	if embedded != nil {
		fmt.Fprintf(&b, "2 0 obj << /Type /EmbeddedFile /Length %d >>\nstream\n", len(embedded))
		b.Write(embedded)
		b.WriteString("\nendstream endobj\n")
	}
	b.WriteString("trailer << /Root 1 0 R >>\n%%EOF\n")
	return b.Bytes()
}

func fakeRTF(obj []byte) []byte {
	var b bytes.Buffer
	b.WriteString("{\\rtf1\\ansi\\deff0 {\\fonttbl{\\f0 Times;}}\r\n{\\object\\objemb{\\*\\objclass Package}{\\*\\objdata\r\n")
	// An OLE1 header, then the file in hex, 64 digits a line.
	hexed := fmt.Sprintf("%x", append([]byte("\x01\x05\x00\x00\x02\x00\x00\x00\x08\x00\x00\x00Package\x00"), obj...))
	for len(hexed) > 64 {
		b.WriteString(hexed[:64] + "\r\n")
		hexed = hexed[64:]
	}
	b.WriteString(hexed + "\r\n}}}\r\n")
	return b.Bytes()
}

func uuencode(name string, data []byte) string {
	var b strings.Builder
	fmt.Fprintf(&b, "begin 644 %s\r\n", name)
	enc := func(c byte) byte {
		if c == 0 {
			return '`'
		}
		return c + ' '
	}
	for len(data) > 0 {
		n := min(45, len(data))
		line := data[:n]
		data = data[n:]
		b.WriteByte(enc(byte(n)))
		for i := 0; i < n; i += 3 {
			var g [3]byte
			copy(g[:], line[i:min(i+3, n)])
			b.WriteByte(enc(g[0] >> 2))
			b.WriteByte(enc((g[0]<<4 | g[1]>>4) & 63))
			b.WriteByte(enc((g[1]<<2 | g[2]>>6) & 63))
			b.WriteByte(enc(g[2] & 63))
		}
		b.WriteString("\r\n")
	}
	b.WriteString("`\r\nend\r\n")
	return b.String()
}

type zipEntry struct {
	name      string
	data      []byte
	store     bool
	encrypted bool
}

var fixedTime = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

func zipOf(entries ...zipEntry) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: fixedTime}
		if e.store {
			h.Method = zip.Store
		}
		if e.encrypted {
			h.Flags |= 1 // traditional PKWARE encryption; the data is not really encrypted
			h.Method = zip.Store
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			panic(err)
		}
		w.Write(e.data)
	}
	zw.Close()
	return b.Bytes()
}

func gzipOf(data []byte) []byte {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	zw.ModTime = fixedTime
	zw.Write(data)
	zw.Close()
	return b.Bytes()
}

func tarOf(files map[string][]byte) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, name := range sortedKeys(files) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), ModTime: fixedTime, Typeflag: tar.TypeReg, Format: tar.FormatUSTAR})
		tw.Write(files[name])
	}
	tw.Close()
	return b.Bytes()
}

func sortedKeys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

func goldenOptions(c goldenCase) Options {
	o := DefaultOptions()
	if c.opts != nil {
		c.opts(&o)
	}
	return o
}

// goldenOutput is what a golden file holds: the report, then the result.
func goldenOutput(rep Report) string {
	r := rep.Result()
	return rep.String() + fmt.Sprintf("result: advice=%s code=%d enhanced=%q reply=%q\nrule: %s\n", r.Advice, r.Code, r.Enhanced, r.Reply, r.Rule)
}

func TestGolden(t *testing.T) {
	names := map[string]bool{}
	for _, c := range goldenCases {
		if names[c.name] {
			t.Fatalf("two cases named %s", c.name)
		}
		names[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			emlPath := filepath.Join("testdata", "msgs", c.name+".eml")
			goldenPath := filepath.Join("testdata", "msgs", c.name+".golden")
			built := c.build()
			if *update {
				os.MkdirAll(filepath.Dir(emlPath), 0o755)
				if err := os.WriteFile(emlPath, built, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			eml, err := os.ReadFile(emlPath)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(eml, built) {
				t.Errorf("%s differs from what its builder makes (run go test -update)", emlPath)
			}
			rep, err := Walk(bytes.NewReader(eml), goldenOptions(c))
			if err != nil {
				t.Fatal(err)
			}
			got := goldenOutput(rep)
			res := rep.Result()
			switch {
			case c.want == "" && res.Advice != scan.AdviseNone:
				t.Errorf("advice %s (%s), want none", res.Advice, res.Rule)
			case c.want != "" && !strings.HasPrefix(res.Rule, c.want):
				t.Errorf("rule %q, want it to start with %q", res.Rule, c.want)
			}
			if *update {
				if err := os.WriteFile(goldenPath, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(goldenPath)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s:\n got:\n%s\nwant:\n%s", goldenPath, got, want)
			}
		})
	}
	// No stale files.
	files, _ := filepath.Glob(filepath.Join("testdata", "msgs", "*"))
	for _, f := range files {
		base := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(f), ".eml"), ".golden")
		if !names[base] {
			t.Errorf("%s has no case in goldenCases", f)
		}
	}
}

// rar5Of builds a RAR 5 archive of stored (uncompressed) members;
// encrypted marks them with a file encryption record (the data is not
// really encrypted).
func rar5Of(encrypted bool, files ...zipEntry) []byte {
	vintOf := func(v uint64) []byte {
		var b []byte
		for {
			c := byte(v & 0x7f)
			v >>= 7
			if v != 0 {
				b = append(b, c|0x80)
				continue
			}
			return append(b, c)
		}
	}
	block := func(body []byte) []byte {
		size := vintOf(uint64(len(body)))
		crc := crc32.ChecksumIEEE(append(append([]byte(nil), size...), body...))
		out := binary.LittleEndian.AppendUint32(nil, crc)
		return append(append(out, size...), body...)
	}
	out := []byte("Rar!\x1a\x07\x01\x00")
	out = append(out, block(append(append(vintOf(1), vintOf(0)...), vintOf(0)...))...) // main header
	for _, f := range files {
		var extra []byte
		if encrypted {
			rec := append(vintOf(1), make([]byte, 40)...) // type 1: file encryption
			extra = append(vintOf(uint64(len(rec))), rec...)
		}
		var h []byte
		h = append(h, vintOf(2)...) // file header
		flags := uint64(2)          // data area
		if extra != nil {
			flags |= 1
		}
		h = append(h, vintOf(flags)...)
		if extra != nil {
			h = append(h, vintOf(uint64(len(extra)))...)
		}
		h = append(h, vintOf(uint64(len(f.data)))...) // data size
		h = append(h, vintOf(4)...)                   // file flags: CRC32
		h = append(h, vintOf(uint64(len(f.data)))...) // unpacked size
		h = append(h, vintOf(0x20)...)                // attributes
		h = binary.LittleEndian.AppendUint32(h, crc32.ChecksumIEEE(f.data))
		h = append(h, vintOf(0)...) // compression: version 0, method 0 (stored)
		h = append(h, vintOf(0)...) // host OS: Windows
		h = append(h, vintOf(uint64(len(f.name)))...)
		h = append(h, f.name...)
		h = append(h, extra...)
		out = append(out, block(h)...)
		out = append(out, f.data...)
	}
	return append(out, block(append(append(vintOf(5), vintOf(0)...), vintOf(0)...))...) // end of archive
}

// rar4Of builds a RAR 4 archive of stored members.
func rar4Of(files ...zipEntry) []byte {
	le := binary.LittleEndian
	block := func(typ byte, flags uint16, body []byte) []byte {
		h := []byte{typ}
		h = le.AppendUint16(h, flags)
		h = le.AppendUint16(h, uint16(7+len(body)))
		h = append(h, body...)
		crc := uint16(crc32.ChecksumIEEE(h))
		return append(le.AppendUint16(nil, crc), h...)
	}
	out := []byte("Rar!\x1a\x07\x00")
	out = append(out, block(0x73, 0, make([]byte, 6))...)
	for _, f := range files {
		var b []byte
		b = le.AppendUint32(b, uint32(len(f.data))) // packed size
		b = le.AppendUint32(b, uint32(len(f.data))) // unpacked size
		b = append(b, 2)                            // host OS: Windows
		b = le.AppendUint32(b, crc32.ChecksumIEEE(f.data))
		b = le.AppendUint32(b, 0) // time
		b = append(b, 20, 0x30)   // version, method: stored
		b = le.AppendUint16(b, uint16(len(f.name)))
		b = le.AppendUint32(b, 0x20)
		b = append(b, f.name...)
		flags := uint16(0x8000)
		if f.encrypted {
			flags |= 0x04
		}
		out = append(out, block(0x74, flags, b)...)
		out = append(out, f.data...)
	}
	return append(out, block(0x7b, 0x4000, nil)...)
}
