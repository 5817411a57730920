package mime

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestDecoders(t *testing.T) {
	tests := []struct {
		cte     string
		in      string
		want    string
		problem string
	}{
		{"base64", "aGVsbG8g\r\nd29ybGQ=\r\n", "hello world", ""},
		{"BASE64", "aGVs bG8=", "hello", ""},
		{"base64", "aGV*sbG8=", "hello", "base64 with characters outside its alphabet"},
		{"base64", "aGVsbA==aGVsbA==", "hellhell", ""}, // concatenated encodings
		{"base64", "aGVsbG8", "hello", "base64 with a partial last group"},
		{"base64", "aGVsbG", "hell", "base64 with a partial last group"},
		{"base64", "a", "", "base64 with a partial last group"},
		{"base64", "", "", ""},
		{"quoted-printable", "caf=C3=A9 =\r\nau lait=20\r\n", "café au lait \r\n", ""},
		{"quoted-printable", "a=3d=3Db", "a==b", ""},
		{"quoted-printable", "a =ZZ b", "a =ZZ b", "quoted-printable with bad escapes"},
		{"quoted-printable", "soft =  \r\nbreak", "soft break", ""},
		{"quoted-printable", "end=", "end=", "quoted-printable with bad escapes"},
		{"quoted-printable", "end=4", "end=4", "quoted-printable with bad escapes"},
		{"7bit", "as is=ZZ", "as is=ZZ", ""},
		{"x-uuencode", "junk\r\nbegin 644 a.txt\r\n%:&5L;&\\`\r\n`\r\nend\r\ntrailer\r\n", "hello", ""},
		{"x-uuencode", "no begin line\r\n", "", "uuencode without a begin line"},
		{"x-uuencode", "begin 644 a\r\n%:&5L\r\n`\r\nend\r\n", "hel\x00\x00", ""}, // trailing spaces dropped by an encoder
		{"x-uuencode", "begin 644 a\r\n%\x01\x02\x03\x04\r\nend\r\n", "", "uuencode with bad lines"},
	}
	for _, tt := range tests {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tt.in)
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			d, known := newDecoder(tt.cte, r)
			if !known {
				t.Fatalf("%s: not known", tt.cte)
			}
			got, err := io.ReadAll(d)
			if err != nil || string(got) != tt.want || d.problem() != tt.problem {
				t.Errorf("%s %q (one byte reads %v) = %q, %v, problem %q; want %q, problem %q", tt.cte, tt.in, oneByte, got, err, d.problem(), tt.want, tt.problem)
			}
		}
	}
	if _, known := newDecoder("x-gzip64", strings.NewReader("")); known {
		t.Error("x-gzip64 is known")
	}
}

// TestBase64Long decodes a long input read in odd pieces.
func TestBase64Long(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdefghij\x00\xff"), 5000)
	d := newBase64(iotest.HalfReader(strings.NewReader(b64(data))))
	got, err := io.ReadAll(d)
	if err != nil || !bytes.Equal(got, data) || d.problem() != "" {
		t.Errorf("got %d bytes, %v, problem %q; want %d bytes", len(got), err, d.problem(), len(data))
	}
}
