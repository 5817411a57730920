package mime

import (
	"testing"

	"github.com/nobounce/nobounce/scan"
)

func TestParseRule(t *testing.T) {
	tests := []struct {
		in     string
		header bool
		action scan.Advice
		field  string
		re     string
		reply  string
		err    string
	}{
		{"reject Subject /^ADV:/i No ads here", true, scan.AdviseReject, "Subject", "(?i)^ADV:", "No ads here", ""},
		{"  tag   x-mailer   /bulk/  ", true, scan.AdviseTag, "X-Mailer", "bulk", "", ""},
		{`tempfail List-Id /a\/b/sm`, true, scan.AdviseTempFail, "List-Id", "(?sm)a/b", "", ""},
		{`reject /a\\/ trailing`, false, scan.AdviseReject, "", `a\\`, "trailing", ""},
		{"reject /viagra/ Not here / really", false, scan.AdviseReject, "", "viagra", "Not here / really", ""},
		{"", false, 0, "", "", "", `empty (want "ACTION /regexp/flags [reply text]")`},
		{"deny /x/", false, 0, "", "", "", `unknown action "deny" (want reject, tempfail or tag): "ACTION /regexp/flags [reply text]"`},
		{"reject /x/", true, 0, "", "", "", `no header field name before the regular expression: "ACTION Field-Name /regexp/flags [reply text]"`},
		{"reject Sub:ject /x/", true, 0, "", "", "", `"Sub:ject" is not a header field name`},
		{"reject Subject x", true, 0, "", "", "", `no regular expression between slashes: "ACTION Field-Name /regexp/flags [reply text]"`},
		{"reject /x", false, 0, "", "", "", "regular expression without its closing slash"},
		{"reject //", false, 0, "", "", "", "empty regular expression"},
		{"reject /x/g", false, 0, "", "", "", `unknown flag "g" after the regular expression (want i, s or m)`},
		{"reject /(/", false, 0, "", "", "", "regular expression: error parsing regexp: missing closing ): `(`"},
		{"reject /x/ 100% sure", false, 0, "", "", "", "reply text contains '%', which Postfix and Sendmail read as a format directive"},
		{"reject /x/ caf\u00e9", false, 0, "", "", "", "reply text has a byte that is not printable ASCII (0xc3) at 4"},
	}
	for _, tt := range tests {
		r, err := ParseRule(tt.in, tt.header)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseRule(%q) error = %v, want %s", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRule(%q): %v", tt.in, err)
			continue
		}
		if r.Action != tt.action || r.Field != tt.field || r.Re.String() != tt.re || r.Reply != tt.reply {
			t.Errorf("ParseRule(%q) = %v %q /%s/ %q; want %v %q /%s/ %q", tt.in, r.Action, r.Field, r.Re, r.Reply, tt.action, tt.field, tt.re, tt.reply)
		}
	}
}

func TestNewErrors(t *testing.T) {
	o := DefaultOptions()
	o.BannedExtensions = append(o.BannedExtensions, ".exe", "a/b")
	o.BannedTypes = []string{"pe", "docx"}
	o.HeaderRules = []string{"reject /x/"}
	o.BodyRules = []string{"reject /(/"}
	o.MaxDepth, o.MaxParts, o.MaxHeaderBytes, o.ArchiveDepth = 0, 0, 10, -1
	o.Malformed = 9
	_, err := New(o)
	want := `mime: banned extension "a/b": want an extension without dot, such as "exe"
banned type "docx": unknown (known: pe, elf, macho, zip, gzip, bzip2, xz, tar, 7z, rar, arj, cab, chm, cpio, ace, lzh, szdd, sis, lnk, iso, vhdx, cfb, pdf, rtf, tnef, binhex)
header rule 1: no header field name before the regular expression: "ACTION Field-Name /regexp/flags [reply text]"
body rule 1: regular expression: error parsing regexp: missing closing ): ` + "`(`" + `
archive depth -1: must not be negative
max depth 0: must be more than 0
max parts 0: must be more than 0
max header bytes 10: must be at least 1024
malformed: unknown advice 9`
	if err == nil || err.Error() != want {
		t.Errorf("New:\n%v\nwant:\n%s", err, want)
	}
	if _, err := New(DefaultOptions()); err != nil {
		t.Errorf("New(DefaultOptions()): %v", err)
	}
}
