package config

import (
	"reflect"
	"testing"

	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/scan/mime"
)

func TestMIMEDefaultsMatchScanner(t *testing.T) {
	o, err := Default().MIME.Options()
	if err != nil {
		t.Fatal(err)
	}
	want := mime.DefaultOptions()
	want.HeaderRules, want.BodyRules = []string{}, []string{}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("Default().MIME.Options()\n got %+v\nwant %+v", o, want)
	}
	if _, err := mime.New(o); err != nil {
		t.Errorf("mime.New(defaults): %v", err)
	}
}

func TestMIMEParse(t *testing.T) {
	tests := []struct {
		doc  string
		want func(*MIME, *mime.Options)
	}{
		{"[mime]\nenabled = false", func(m *MIME, o *mime.Options) { m.Enabled = false }},
		{"[mime]\nbanned_extensions = [\"exe\", \"SCR\"]", func(m *MIME, o *mime.Options) {
			m.BannedExtensions = []string{"exe", "SCR"}
			o.BannedExtensions = []string{"exe", "SCR"}
		}},
		{"[mime]\nbanned_types = []", func(m *MIME, o *mime.Options) { m.BannedTypes, o.BannedTypes = []string{}, []string{} }},
		{"[mime]\narchive_depth = 0\narchive_max_size = \"1MiB\"", func(m *MIME, o *mime.Options) {
			m.ArchiveDepth, m.ArchiveMaxSize = 0, MiB
			o.ArchiveDepth, o.ArchiveMaxSize = 0, 1<<20
		}},
		{"[mime]\nencrypted_archives = \"tag\"\nover_limit = \"tempfail\"\nmalformed = \"reject\"", func(m *MIME, o *mime.Options) {
			m.EncryptedArchives, m.OverLimit, m.Malformed = "tag", "tempfail", "reject"
			o.EncryptedArchives, o.OverLimit, o.Malformed = scan.AdviseTag, scan.AdviseTempFail, scan.AdviseReject
		}},
		{"[mime]\nencrypted_archives = \"accept\"\nover_limit = \"accept\"\nmalformed = \"accept\"", func(m *MIME, o *mime.Options) {
			m.EncryptedArchives, m.OverLimit, m.Malformed = "accept", "accept", "accept"
			o.EncryptedArchives, o.OverLimit, o.Malformed = scan.AdviseNone, scan.AdviseNone, scan.AdviseNone
		}},
		{"[mime]\nmax_depth = 5\nmax_parts = 50\nmax_header_bytes = \"64k\"\nmax_text_bytes = 0", func(m *MIME, o *mime.Options) {
			m.MaxDepth, m.MaxParts, m.MaxHeaderBytes, m.MaxTextBytes = 5, 50, 64*KiB, 0
			o.MaxDepth, o.MaxParts, o.MaxHeaderBytes, o.MaxTextBytes = 5, 50, 64<<10, 0
		}},
		{"[mime]\nreply = \"No {name} here\"", func(m *MIME, o *mime.Options) { m.Reply, o.Reply = "No {name} here", "No {name} here" }},
		{"[mime]\nheader_rules = [\"reject Subject /^ADV:/i No ads\"]\nbody_rules = ['tag /viagra/i']", func(m *MIME, o *mime.Options) {
			m.HeaderRules, o.HeaderRules = []string{"reject Subject /^ADV:/i No ads"}, []string{"reject Subject /^ADV:/i No ads"}
			m.BodyRules, o.BodyRules = []string{"tag /viagra/i"}, []string{"tag /viagra/i"}
		}},
	}
	for _, tt := range tests {
		c, err := Parse([]byte(tt.doc), "t.toml")
		if err != nil {
			t.Errorf("Parse(%q):\n%v", tt.doc, err)
			continue
		}
		want := Default()
		wantOpts, _ := want.MIME.Options()
		tt.want(&want.MIME, &wantOpts)
		if !reflect.DeepEqual(c.MIME, want.MIME) {
			t.Errorf("Parse(%q).MIME\n got %+v\nwant %+v", tt.doc, c.MIME, want.MIME)
		}
		o, err := c.MIME.Options()
		if err != nil {
			t.Errorf("Parse(%q).MIME.Options(): %v", tt.doc, err)
			continue
		}
		if !reflect.DeepEqual(o, wantOpts) {
			t.Errorf("Parse(%q).MIME.Options()\n got %+v\nwant %+v", tt.doc, o, wantOpts)
		}
		if _, err := mime.New(o); err != nil {
			t.Errorf("mime.New(Parse(%q)): %v", tt.doc, err)
		}
	}
}
