package verdict

import (
	"strings"
	"testing"
)

func TestSanitize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"plain", "Eicar-Signature", 0, "Eicar-Signature"},
		{"clamd name", "Win.Test.EICAR_HDB-1", 0, "Win.Test.EICAR_HDB-1"},
		{"empty", "", 0, ""},
		{"only spaces", "   ", 0, ""},
		{"only controls", "\r\n\t\x00", 0, ""},
		{"CR", "a\rb", 0, "a b"},
		{"LF", "a\nb", 0, "a b"},
		{"CRLF injection", "Eicar\r\n250 2.0.0 Ok", 0, "Eicar 250 2.0.0 Ok"},
		{"NUL", "a\x00b", 0, "a b"},
		{"TAB", "a\tb", 0, "a b"},
		{"VT FF", "a\v\fb", 0, "a b"},
		{"other control", "a\x1bb\x7f", 0, "a?b?"},
		{"non-ASCII bytes each one ?", "Vírus", 0, "V??rus"},
		{"invalid UTF-8", "a\xff\xfeb", 0, "a??b"},
		{"nothing decoded", "=?utf-8?q?caf=C3=A9?= %41", 0, "=?utf-8?q?caf=C3=A9?= pct41"},
		{"collapse", "a    b \t\r\n c", 0, "a b c"},
		{"trim", "  a b  ", 0, "a b"},
		{"percent s", "%s", 0, "pcts"},
		{"percent percent", "%%", 0, "pctpct"},
		{"percent n", "Trojan.%n%x", 0, "Trojan.pctnpctx"},
		{"lone percent", "100 %", 0, "100 pct"},
		{"percent after space", "a %s", 0, "a pcts"},
		{"default max", strings.Repeat("a", 300), 0, strings.Repeat("a", 197) + "..."},
		{"negative max", strings.Repeat("a", 300), -1, strings.Repeat("a", 197) + "..."},
		{"exactly max", strings.Repeat("a", 10), 10, strings.Repeat("a", 10)},
		{"one over", strings.Repeat("a", 11), 10, "aaaaaaa..."},
		{"max with trailing spaces not cut", "aaaaaaaaaa     ", 10, "aaaaaaaaaa"},
		{"cut at space", "aaaaaa bbbbbbb", 10, "aaaaaa..."},
		{"cut counts replacement", "%%%%", 10, "pctpctp..."},
		{"tiny max", "abcdef", 3, "abc"},
		{"tiny max trims", "a bcdef", 2, "a"},
		{"max one", "abc", 1, "a"},
		{"long after collapse fits", "a" + strings.Repeat(" ", 500) + "b", 5, "a b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Sanitize(tt.in, tt.max)
			if got != tt.want {
				t.Errorf("Sanitize(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
			}
			checkSanitized(t, tt.in, tt.max, got)
		})
	}
}

// checkSanitized asserts Sanitize's invariants.
func checkSanitized(t *testing.T, in string, max int, got string) {
	t.Helper()
	limit := max
	if limit <= 0 {
		limit = DefaultSanitizeMax
	}
	if len(got) > limit {
		t.Errorf("Sanitize(%q, %d): %d bytes, over %d", in, max, len(got), limit)
	}
	for i := 0; i < len(got); i++ {
		if c := got[i]; c < 0x20 || c > 0x7e || c == '%' {
			t.Fatalf("Sanitize(%q, %d) = %q: byte %#x at %d", in, max, got, c, i)
		}
	}
	if strings.HasPrefix(got, " ") || strings.HasSuffix(got, " ") || strings.Contains(got, "  ") {
		t.Errorf("Sanitize(%q, %d) = %q: stray spaces", in, max, got)
	}
	if again := Sanitize(got, max); again != got {
		t.Errorf("Sanitize not idempotent: %q → %q → %q", in, got, again)
	}
}

func FuzzSanitize(f *testing.F) {
	for _, s := range []string{
		"Eicar-Signature", "", " ", "%s", "%%", "%n%x%", "a\r\nb", "\x00\t", "Vírus\xff",
		strings.Repeat("%", 300), strings.Repeat("a ", 150), "aaaaaa bbbbbbb",
	} {
		f.Add(s, 0)
		f.Add(s, 3)
		f.Add(s, 10)
	}
	f.Fuzz(func(t *testing.T, s string, max int) {
		if max > 4096 {
			max %= 4096
		}
		checkSanitized(t, s, max, Sanitize(s, max))
	})
}

func BenchmarkSanitize(b *testing.B) {
	s := "Win.Test.EICAR_HDB-1 with some\r\nnoise %s and \xff bytes"
	for b.Loop() {
		Sanitize(s, 0)
	}
}
