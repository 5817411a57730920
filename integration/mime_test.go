//go:build integration

package integration

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The content policy ([mime] of examples/nobounce.toml, on by default)
// through the real MTAs: a program attached, or zipped, is refused with
// 550 5.7.1 at the end of DATA by the MIME rules alone (clamd's database
// knows neither file); a PDF and a text file are delivered.

// fakeProgram is the smallest thing with a Windows program's headers: a DOS
// header pointing at "PE\0\0". No antivirus signature matches it.
func fakeProgram() []byte {
	b := make([]byte, 0x200)
	copy(b, "MZ")
	binary.LittleEndian.PutUint16(b[2:], 0x90)
	binary.LittleEndian.PutUint16(b[4:], 3)
	binary.LittleEndian.PutUint32(b[0x3c:], 0x80)
	copy(b[0x40:], "This program cannot be run in DOS mode.\r\r\n$")
	copy(b[0x80:], "PE\x00\x00\x4c\x01\x01\x00")
	return b
}

func zipWith(t *testing.T, name string, data []byte) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestMIMEPolicy(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pdf := []byte("%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n" +
		"trailer << /Root 1 0 R >>\n%%EOF\n")
	cases := []struct {
		name   string
		file   string
		ctype  string
		reject string // the reply's start, or "" when the message is delivered
	}{
		{"exe", write("setup.exe", fakeProgram()), "application/octet-stream", `550 5.7.1 Attachment "setup.exe" is not allowed here`},
		{"zip holding an exe", write("tools.zip", zipWith(t, "tools/run.exe", fakeProgram())), "application/zip", `550 5.7.1 Attachment "tools.zip" is not allowed here`},
		{"pdf", write("invoice.pdf", pdf), "application/pdf", ""},
		{"text", write("notes.txt", []byte("Meeting notes.\nNothing to run here.\n")), "text/plain", ""},
	}
	for _, m := range env.mtas {
		t.Run(m.name, func(t *testing.T) {
			logsOnFailure(t, m)
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					tok := token("mime")
					tr := swaks(t, m, "--header", "Subject: "+c.name+" "+tok,
						"--body", "See the attachment.\n",
						"--attach-type", c.ctype, "--attach", "@"+c.file)
					reply := dataReply(tr)
					if c.reject != "" {
						requireCode(t, reply, c.reject, tr)
						recordRefused(m, tok)
						return
					}
					requireCode(t, reply, "250", tr)
					recordAccepted(m, tok)
					got := findDelivered(m, tok, 20*time.Second)
					if len(got) != 1 {
						t.Fatalf("delivered %d copies, want 1", len(got))
					}
					if !bytes.Contains(got[0].body, []byte(filepath.Base(c.file))) {
						t.Errorf("the delivered message does not hold %s", filepath.Base(c.file))
					}
					for _, h := range got[0].header {
						if strings.HasPrefix(strings.ToLower(h), "x-content-policy:") {
							t.Errorf("clean message tagged: %s", h)
						}
					}
				})
			}
		})
	}
}
