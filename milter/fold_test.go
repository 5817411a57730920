package milter

import (
	"strings"
	"testing"
)

func TestFold(t *testing.T) {
	tests := []struct{ name, value, want string }{
		{"X-Virus-Status", "Clean", "Clean"},
		{"X-Spam-Status", "Yes, score=15.3 required=5.0 tests=AAAAAAAAAA,BBBBBBBBBB,CCCCCCCCCC,DDDDDDDDDD,EEEEEEEEEE scanner=spamd",
			"Yes, score=15.3 required=5.0 tests=AAAAAAAAAA,BBBBBBBBBB,\r\n\tCCCCCCCCCC,DDDDDDDDDD,EEEEEEEEEE scanner=spamd"},
		{"X", strings.Repeat("z", 100), strings.Repeat("z", 100)},
	}
	for _, tt := range tests {
		got := fold(tt.name, tt.value)
		if got != tt.want {
			t.Errorf("fold(%q):\n got %q\nwant %q", tt.value, got, tt.want)
		}
		for i, line := range strings.Split(got, "\r\n") {
			w := len(line)
			if i == 0 {
				w += len(tt.name) + 2
			}
			if w > foldWidth && strings.ContainsAny(strings.TrimSpace(line), " ,") {
				t.Errorf("line %d of %q is %d wide and could break", i, got, w)
			}
		}
		// Unfolding gives the value back (RFC 5322 §2.2.3), up to the
		// space a fold after a comma adds.
		unfolded := strings.ReplaceAll(got, "\r\n\t", " ")
		if strings.ReplaceAll(unfolded, ", ", ",") != strings.ReplaceAll(tt.value, ", ", ",") {
			t.Errorf("unfolded %q != %q", unfolded, tt.value)
		}
	}
}

func FuzzFold(f *testing.F) {
	f.Add("X-Spam-Status", "Yes, score=1 tests=A,B,C")
	f.Fuzz(func(t *testing.T, name, value string) {
		got := fold(name, value)
		if strings.ReplaceAll(strings.ReplaceAll(got, "\r\n\t", ""), " ", "") != strings.ReplaceAll(value, " ", "") {
			t.Fatalf("fold lost characters: %q -> %q", value, got)
		}
	})
}
