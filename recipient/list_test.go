package recipient

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseList(t *testing.T) {
	const file = `# recipients of example.test
alice@example.test
Bob@Example.Test      # case is ignored

@example.org
!postmaster@example.org
	carol@example.net	
`
	d, err := ParseList(strings.NewReader(file))
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]Status{
		"alice@example.test":      Exists,
		"ALICE@EXAMPLE.TEST":      Exists,
		"bob@example.test":        Exists,
		"nobody@example.test":     Unknown,
		"anyone@example.org":      Exists,
		"postmaster@example.org":  Unknown,
		"carol@example.net":       Exists,
		"dave@example.net":        Unknown,
		"alice@elsewhere.test":    Unsure, // not covered
		"alice@sub.example.test":  Unsure,
		"no-domain":               Unsure,
		"postmaster@EXAMPLE.ORG.": Unsure,
	}
	for addr, want := range tests {
		if got := d.Lookup(addr); got != want {
			t.Errorf("Lookup(%q) = %v, want %v", addr, got, want)
		}
	}
	if d.Len() != 5 || !d.Covers("EXAMPLE.net") || d.Covers("elsewhere.test") {
		t.Errorf("Len %d, Covers wrong", d.Len())
	}
}

func TestParseListErrors(t *testing.T) {
	tests := []struct {
		file string
		want []string // one per bad line
	}{
		{"alice\n", []string{"line 1: \"alice\": want user@domain"}},
		{"ok@example.test\nalice@\n@\n!@example.test\n", []string{"line 2:", "line 3: \"@\": not a domain", "line 4:"}},
		{"two words@example.test\n", []string{"line 1:"}},
		{"a@b..c\n", []string{"line 1:"}},
		{"a@example.test\x00\n", []string{"line 1:"}},
		{strings.Repeat("x", MaxListLine+10) + "@example.test\nok@example.test\n" + strings.Repeat("y", 70000) + "\n",
			[]string{"line 1: longer than", "line 3: longer than"}},
		{"!@\n@a b\n", []string{"line 1:", "line 2:"}},
	}
	for _, tt := range tests {
		_, err := ParseList(strings.NewReader(tt.file))
		if err == nil {
			t.Errorf("ParseList(%q) accepted it", clip(tt.file))
			continue
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != len(tt.want) {
			t.Errorf("ParseList(%q): %d problems, want %d:\n%v", clip(tt.file), len(lines), len(tt.want), err)
			continue
		}
		for i, w := range tt.want {
			if !strings.HasPrefix(lines[i], w) {
				t.Errorf("ParseList(%q): problem %d %q, want %q...", clip(tt.file), i+1, lines[i], w)
			}
		}
		var le ListError
		if !errors.As(err, &le) {
			t.Errorf("ParseList(%q): %T is not a ListError", clip(tt.file), err)
		}
	}
}

func TestListReload(t *testing.T) {
	path := writeList(t, "alice@example.test\n")
	l, err := LoadList(path, quiet)
	if err != nil {
		t.Fatal(err)
	}
	l.CheckInterval = time.Millisecond
	if l.Lookup("bob@example.test") != Unknown {
		t.Fatal("bob before the change")
	}
	// A change is picked up...
	write := func(s string, age time.Duration) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		mt := time.Now().Add(age)
		os.Chtimes(path, mt, mt) // a distinct mtime even on coarse clocks
		time.Sleep(5 * time.Millisecond)
	}
	write("alice@example.test\nbob@example.test\n", time.Second)
	if got := l.Lookup("bob@example.test"); got != Exists {
		t.Fatalf("bob after adding him: %v", got)
	}
	// ...a broken file is not: the last good list stays.
	write("alice@example.test\nbroken line\n", 2*time.Second)
	if got := l.Lookup("bob@example.test"); got != Exists {
		t.Fatalf("bob after a broken change: %v, want the last good list", got)
	}
	// A removed file keeps the list too.
	os.Remove(path)
	time.Sleep(5 * time.Millisecond)
	if got := l.Lookup("alice@example.test"); got != Exists {
		t.Fatalf("alice after the file went: %v", got)
	}
	// And a good file again is used.
	write("carol@example.test\n", 3*time.Second)
	if got := l.Lookup("alice@example.test"); got != Unknown {
		t.Fatalf("alice after the fix: %v", got)
	}
	if _, err := LoadList(path+".missing", quiet); err == nil {
		t.Error("LoadList of a missing file succeeded")
	}
}

func FuzzParseList(f *testing.F) {
	for _, s := range []string{
		"alice@example.test\n@example.org\n!bob@example.org\n", "# c\n\n", "@\n", "!x\n", "a@b\r\nc@d", "\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseList(strings.NewReader(s))
		if err != nil {
			return
		}
		// Every entry that parsed answers for itself.
		for _, line := range strings.Split(s, "\n") {
			if i := strings.IndexByte(line, '#'); i >= 0 {
				line = line[:i]
			}
			e := strings.TrimSpace(line)
			switch {
			case e == "":
			case strings.HasPrefix(e, "!"):
				if d.Lookup(e[1:]) != Unknown {
					t.Fatalf("exception %q: %v", e, d.Lookup(e[1:]))
				}
			case strings.HasPrefix(e, "@"):
				if !d.Covers(e[1:]) {
					t.Fatalf("wildcard %q does not cover its domain", e)
				}
			default:
				if got := d.Lookup(e); got == Unsure {
					t.Fatalf("entry %q: %v", e, got)
				}
			}
		}
	})
}
