package mime

import (
	"bufio"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

func TestSplitter(t *testing.T) {
	long := strings.Repeat("y", 10000)
	tests := []struct {
		name      string
		boundary  string
		body      string
		parts     []string
		started   bool
		truncated bool
	}{
		{"crlf", "b", "preamble\r\n--b\r\nA: 1\r\n\r\none\r\n--b\r\n\r\ntwo\r\n--b--\r\nepilogue\r\n",
			[]string{"A: 1\r\n\r\none", "\r\ntwo"}, true, false},
		{"lf", "b", "--b\nA: 1\n\none\n--b--\n", []string{"A: 1\n\none"}, true, false},
		{"padding and no final newline", "b", "--b \t\r\n\r\nx\r\n--b--", []string{"\r\nx"}, true, false},
		{"close with trailing junk", "b", "--b\r\n\r\nx\r\n--b--junk\r\nmore\r\n", []string{"\r\nx"}, true, false},
		{"longer boundary is not ours", "b", "--b\r\n\r\nx\r\n--bb\r\ny\r\n--b--\r\n", []string{"\r\nx\r\n--bb\r\ny"}, true, false},
		{"delimiter only at line start", "b", "--b\r\n\r\nx --b\r\n--b--\r\n", []string{"\r\nx --b"}, true, false},
		{"empty part", "b", "--b\r\n--b--\r\n", []string{""}, true, false},
		{"blank lines kept", "b", "--b\r\n\r\nx\r\n\r\n\r\n--b--\r\n", []string{"\r\nx\r\n\r\n"}, true, false},
		{"truncated", "b", "--b\r\n\r\nx\r\n", []string{"\r\nx\r\n"}, true, true},
		{"truncated in the preamble", "b", "no delimiter at all\r\n", nil, false, false},
		{"close first", "b", "--b--\r\n", nil, true, false},
		{"long line", "b", "--b\r\n\r\n" + long + "\r\n--b--\r\n", []string{"\r\n" + long}, true, false},
		{"long line ending in CR", "b", "--b\r\n\r\n" + long + "\r\r\n--b--\r\n", []string{"\r\n" + long + "\r"}, true, false},
		{"bare CR stays", "b", "--b\r\n\r\na\rb\r\n--b--\r\n", []string{"\r\na\rb"}, true, false},
	}
	for _, tt := range tests {
		for _, small := range []bool{false, true} {
			var r io.Reader = strings.NewReader(tt.body)
			if small {
				r = iotest.OneByteReader(r)
			}
			sp := newSplitter(bufio.NewReaderSize(r, 4096), tt.boundary)
			var got []string
			for {
				p := sp.next()
				if p == nil {
					break
				}
				var b []byte
				var err error
				if small {
					b, err = io.ReadAll(iotest.OneByteReader(p))
				} else {
					b, err = io.ReadAll(p)
				}
				if err != nil {
					t.Fatalf("%s: %v", tt.name, err)
				}
				got = append(got, string(b))
			}
			if !reflect.DeepEqual(got, tt.parts) || sp.started != tt.started || sp.truncated() != tt.truncated {
				t.Errorf("%s (small reads %v): parts %q started %v truncated %v; want %q %v %v",
					tt.name, small, got, sp.started, sp.truncated(), tt.parts, tt.started, tt.truncated)
			}
		}
	}
}

// TestSplitterUnread: a part not read to its end is skipped by next.
func TestSplitterUnread(t *testing.T) {
	sp := newSplitter(bufio.NewReader(strings.NewReader("--b\r\n\r\n"+strings.Repeat("z\r\n", 5000)+"--b\r\n\r\nsecond\r\n--b--\r\n")), "b")
	first := sp.next()
	first.Read(make([]byte, 10))
	second := sp.next()
	b, _ := io.ReadAll(second)
	if string(b) != "\r\nsecond" || sp.next() != nil {
		t.Errorf("second part %q", b)
	}
}
