package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/nobounce/nobounce/verdict"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.err from the current output")

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default().Validate():\n%v", err)
	}
}

func TestExampleIsDefault(t *testing.T) {
	const path = "../examples/nobounce.toml"
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s):\n%v", path, err)
	}
	if want := Default(); !reflect.DeepEqual(c, want) {
		t.Errorf("%s differs from Default():\n got %+v\nwant %+v", path, c, want)
	}
	// Every key is in the example: a new option must be documented there.
	data, _ := os.ReadFile(path)
	var raw map[string]any
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		t.Fatal(err)
	}
	have := make(map[string]bool)
	for _, k := range md.Keys() {
		have[k.String()] = true
	}
	for _, k := range leafKeys(reflect.TypeFor[Config](), "") { // no key needs quoting
		if !have[k] {
			t.Errorf("%s does not list %s", path, k)
		}
	}
}

// leafKeys lists the dotted keys of every value in a config struct.
func leafKeys(t reflect.Type, path string) []string {
	var keys []string
	f := fieldsOf(t)
	for _, k := range f.keys {
		ft := t.Field(f.index[k]).Type
		if isTable(ft) {
			keys = append(keys, leafKeys(ft, path+k+".")...)
		} else {
			keys = append(keys, path+k)
		}
	}
	return keys
}

// TestRoundTrip writes Default() with the TOML encoder and parses it back:
// every field type has a decoder, and MarshalText output parses.
func TestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(Default()); err != nil {
		t.Fatal(err)
	}
	c, err := Parse(buf.Bytes(), "encoded")
	if err != nil {
		t.Fatalf("Parse(encoded Default()):\n%v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("round trip:\n got %+v\nwant %+v", c, Default())
	}
}

func TestParseEmpty(t *testing.T) {
	for _, doc := range []string{"", "\n", "# nothing here\n", "[scan]\n[clamd]\n[headers]\n"} {
		c, err := Parse([]byte(doc), "empty.toml")
		if err != nil {
			t.Errorf("Parse(%q): %v", doc, err)
		}
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("Parse(%q) = %+v, want Default()", doc, c)
		}
	}
}

func TestParseValues(t *testing.T) {
	tests := []struct {
		doc  string
		want func(*Config)
	}{
		{`listen = "unix:/run/nobounce/milter.sock"`, func(c *Config) { c.Listen = "unix:/run/nobounce/milter.sock" }},
		{`listen = "inet:10029@127.0.0.1"`, func(c *Config) { c.Listen = "inet:10029@127.0.0.1" }},
		{`socket_mode = "0600"`, func(c *Config) { c.SocketMode = "0600" }},
		{`socket_mode = "660"`, func(c *Config) { c.SocketMode = "660" }},
		{`socket_group = "postfix"`, func(c *Config) { c.SocketGroup = "postfix" }},
		{`max_sessions = 1`, func(c *Config) { c.MaxSessions = 1 }},
		{`read_timeout = "1h30m"`, func(c *Config) { c.ReadTimeout.Duration = 90 * time.Minute }},
		{`drain_timeout = "0s"`, func(c *Config) { c.DrainTimeout.Duration = 0 }},
		{`eom_timeout = "299s"`, func(c *Config) { c.EOMTimeout.Duration = 299 * time.Second }},
		{`log_level = "debug"`, func(c *Config) { c.LogLevel = "debug" }},
		{`log_format = "json"`, func(c *Config) { c.LogFormat = "json" }},
		{"[scan]\nmax_size = 1048576", func(c *Config) { c.Scan.MaxSize = 1048576 }},
		{"[scan]\nmax_size = \"10MB\"", func(c *Config) { c.Scan.MaxSize = 10_000_000 }},
		{"[scan]\nmax_size = \"512k\"", func(c *Config) { c.Scan.MaxSize = 512 * 1024 }},
		{"scan.max_size = \"1GiB\"", func(c *Config) { c.Scan.MaxSize = 1 << 30 }},
		{"[scan]\noversize = \"accept\"", func(c *Config) { c.Scan.Oversize = "accept" }},
		{"[clamd]\naddresses = []", func(c *Config) { c.Clamd.Addresses = []string{} }},
		{"[clamd]\naddresses = [\"inet:127.0.0.1:3310\", \"unix:/run/clamav/clamd.ctl\"]",
			func(c *Config) { c.Clamd.Addresses = []string{"inet:127.0.0.1:3310", "unix:/run/clamav/clamd.ctl"} }},
		{"[clamd]\non_error = \"accept\"\ntimeout = \"2m\"\nconnect_timeout = \"1s\"", func(c *Config) {
			c.Clamd.OnError = "accept"
			c.Clamd.Timeout.Duration = 2 * time.Minute
			c.Clamd.ConnectTimeout.Duration = time.Second
		}},
		{"[clamd]\nreply = \"Malware detected ({virus})\"", func(c *Config) { c.Clamd.Reply = "Malware detected ({virus})" }},
		{"[headers]\nadd = false", func(c *Config) { c.Headers.Add = false }},
		{"headers = { scanned = \"\", status = \"X-Scan\" }", func(c *Config) { c.Headers.Scanned, c.Headers.Status = "", "X-Scan" }},
	}
	for _, tt := range tests {
		c, err := Parse([]byte(tt.doc), "t.toml")
		if err != nil {
			t.Errorf("Parse(%q):\n%v", tt.doc, err)
			continue
		}
		want := Default()
		tt.want(&want)
		if !reflect.DeepEqual(c, want) {
			t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.doc, c, want)
		}
	}
}

// TestGolden parses every testdata/bad/*.toml and compares the error text
// with the .err file beside it. Run with -update to rewrite them.
func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(strings.TrimSuffix(name, ".toml"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(data, name)
			if err == nil {
				t.Fatalf("%s parsed without error", file)
			}
			var errs Errors
			if !errors.As(err, &errs) {
				t.Fatalf("error is %T, want Errors", err)
			}
			for _, e := range errs {
				var ce *Error
				if !errors.As(e, &ce) || ce.File != name || ce.Line == 0 && ce.Key == "" {
					t.Errorf("problem without position: %#v", e)
				}
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".toml") + ".err"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if got != string(want) {
				t.Errorf("%s:\n got:\n%s\nwant:\n%s", file, got, want)
			}
		})
	}
}

func TestValidateWithoutFile(t *testing.T) {
	c := Default()
	c.Listen = "inet:"
	c.MaxSessions = -1
	c.EOMTimeout.Duration = 10 * time.Minute
	c.Clamd.OnError = "Accept"
	c.Headers.Status = "Bad Name"
	err := c.Validate()
	want := `listen: socket address "inet:": missing port in address
max_sessions: must be more than 0, got -1
eom_timeout: must be below 5m0s, got 10m0s: Postfix (milter_content_timeout) and Sendmail (T=E:5m) give up on the milter at 5m0s, and their default action would answer instead of nobounce
clamd.on_error: unknown value "Accept" (want one of: tempfail, accept)
headers.status: "Bad Name" is not a header field name (RFC 5322 §3.6.8: printable ASCII without spaces or ':'; "" adds none)`
	if err == nil || err.Error() != want {
		t.Errorf("Validate():\n%v\nwant:\n%s", err, want)
	}
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 5 {
		t.Errorf("want 5 problems in an Errors, got %#v", err)
	}
}

func TestValidateNilWhenValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// A nil Errors must not hide in a non-nil error.
	if _, err := Parse(nil, "x"); err != nil {
		t.Fatalf("Parse(nil) = %#v", err)
	}
}

func TestLoadMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.toml")
	_, err := Load(path)
	if err == nil || err.Error() != path+": no such file or directory" {
		t.Errorf("Load(missing) = %v", err)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "f.toml", Line: 3, Key: "clamd.reply", Msg: "bad"}, "f.toml:3: clamd.reply: bad"},
		{Error{File: "f.toml", Key: "eom_timeout", Msg: "bad"}, "f.toml: eom_timeout: bad"},
		{Error{File: "f.toml", Line: 2, Msg: "syntax error: x"}, "f.toml:2: syntax error: x"},
		{Error{Line: 2, Key: "k", Msg: "bad"}, "line 2: k: bad"},
		{Error{Key: "k", Msg: "bad"}, "k: bad"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	es := Errors{&Error{Key: "a", Msg: "x"}, &Error{Key: "b", Msg: "y"}}
	if es.Error() != "a: x\nb: y" {
		t.Errorf("Errors.Error() = %q", es.Error())
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		err  string
	}{
		{"1048576", 1048576, ""},
		{"0", 0, ""},
		{"100B", 100, ""},
		{"512k", 512 << 10, ""},
		{"512K", 512 << 10, ""},
		{"512KiB", 512 << 10, ""},
		{"512kB", 512000, ""},
		{"512KB", 512000, ""},
		{"25MiB", 25 << 20, ""},
		{"25M", 25 << 20, ""},
		{"25mib", 25 << 20, ""},
		{"10MB", 10_000_000, ""},
		{"10 MB", 10_000_000, ""},
		{" 2G ", 2 << 30, ""},
		{"2GB", 2_000_000_000, ""},
		{"2GiB", 2 << 30, ""},
		{"", 0, `bad size "" (want a whole number of bytes with an optional unit: 1048576, "512k", "25MiB", "10MB")`},
		{"MB", 0, `bad size "MB" (want a whole number of bytes with an optional unit: 1048576, "512k", "25MiB", "10MB")`},
		{"-1", 0, `bad size "-1" (want a whole number of bytes with an optional unit: 1048576, "512k", "25MiB", "10MB")`},
		{"1.5MB", 0, `bad size "1.5MB": unknown unit ".5MB" (want B, k, KiB, KB, M, MiB, MB, G, GiB, GB)`},
		{"10TB", 0, `bad size "10TB": unknown unit "TB" (want B, k, KiB, KB, M, MiB, MB, G, GiB, GB)`},
		{"9223372036854775807", 9223372036854775807, ""},
		{"9223372036854775808", 0, `bad size "9223372036854775808": too large`},
		{"8589934592G", 0, `bad size "8589934592G": too large`},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("ParseSize(%q) error = %v, want %s", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestSizeString(t *testing.T) {
	for s, want := range map[Size]string{
		0: "0", 1: "1", 1000: "1000", 1024: "1KiB", 512 << 10: "512KiB", 25 << 20: "25MiB",
		1 << 30: "1GiB", 1<<30 + 1<<20: "1025MiB", 10_000_000: "10000000",
	} {
		if got := s.String(); got != want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(s), got, want)
		}
		back, err := ParseSize(s.String())
		if err != nil || back != s {
			t.Errorf("ParseSize(%q) = %d, %v", s.String(), back, err)
		}
	}
}

func TestDuration(t *testing.T) {
	var d Duration
	if err := d.UnmarshalText([]byte("1h30m")); err != nil || d.Duration != 90*time.Minute {
		t.Errorf("UnmarshalText(1h30m) = %v, %v", d, err)
	}
	if b, _ := d.MarshalText(); string(b) != "1h30m0s" {
		t.Errorf("MarshalText = %q", b)
	}
	for _, bad := range []string{"", "30", "5 min", "1d"} {
		if err := d.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) succeeded", bad)
		}
	}
	// flag.TextVar works with it.
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.TextVar(&d, "eom-timeout", Duration{time.Minute}, "")
	if err := fs.Parse([]string{"-eom-timeout", "90s"}); err != nil || d.Duration != 90*time.Second {
		t.Errorf("flag: %v, %v", d, err)
	}
}

func TestSocketFileMode(t *testing.T) {
	c := Default()
	if m, err := c.SocketFileMode(); err != nil || m != 0o660 {
		t.Errorf("SocketFileMode() = %v, %v", m, err)
	}
	for mode, ok := range map[string]bool{
		"0600": true, "600": true, "0": true, "0770": true, "0775": true,
		"0662": false, "0777": false, "0o660": false, "1660": false, "0800": false, "": false, "rw": false,
	} {
		c.SocketMode = mode
		if _, err := c.SocketFileMode(); (err == nil) != ok {
			t.Errorf("SocketFileMode(%q): %v", mode, err)
		}
	}
}

func TestPolicy(t *testing.T) {
	c := Default()
	p := c.Policy("0.1.0")
	want := verdict.DefaultPolicy()
	want.ScannedValue = "nobounce 0.1.0 with ClamAV"
	if p != want {
		t.Errorf("Policy() = %+v, want %+v", p, want)
	}
	if c.Clamd.OnErrorPolicy() != verdict.OnErrorTempFail {
		t.Error("default on_error is not tempfail")
	}

	c.Scan.Oversize = "tempfail"
	c.Clamd.Addresses = nil
	c.Clamd.Reply = "Malware: {virus}"
	c.Clamd.OnError = "accept"
	c.Headers = Headers{Add: false, Scanned: "X-A", Status: ""}
	p = c.Policy("")
	want = verdict.DefaultPolicy()
	want.VirusText, want.Oversize, want.AddHeaders = "Malware: {virus}", verdict.OversizeTempFail, false
	want.ScannedHeader, want.StatusHeader, want.ScannedValue = "X-A", "", "nobounce"
	if p != want {
		t.Errorf("Policy() = %+v, want %+v", p, want)
	}
	if c.Clamd.OnErrorPolicy() != verdict.OnErrorAccept {
		t.Error("on_error accept")
	}
	c.Scan.Oversize = "accept"
	if c.Policy("").Oversize != verdict.OversizeAccept {
		t.Error("oversize accept")
	}
}

func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/bad/*.toml")
	seeds = append(seeds, "../examples/nobounce.toml")
	for _, s := range seeds {
		if data, err := os.ReadFile(s); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("a.b.c.d = 1\n[x.y]\n[[z]]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.toml")
		if err == nil {
			// What Parse accepts, Validate accepts.
			if verr := c.Validate(); verr != nil {
				t.Fatalf("Parse accepted what Validate refuses:\n%v", verr)
			}
			return
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error is %#v, want a non-empty Errors", err)
		}
		for _, e := range errs {
			if _, ok := e.(*Error); !ok {
				t.Fatalf("problem is %T", e)
			}
		}
	})
}

// TestParseLargeInput: on big or hostile files problems are capped (each
// key's line costs a pass over the document). How fast that is, is for
// BenchmarkParseLargeInput: machines here are shared and noisy.
func TestParseLargeInput(t *testing.T) {
	var b strings.Builder
	for i := 0; b.Len() < MaxFileSize-100; i++ {
		fmt.Fprintf(&b, "key%d = %d\n", i, i)
	}
	_, err := Parse([]byte(b.String()), "big.toml")
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != maxProblems+1 || errs[maxProblems].Error() != "big.toml: too many problems (50), stopping" {
		t.Errorf("want %d problems and a last word, got %d:\n%v", maxProblems, len(errs), err)
	}

	// Many keys in one unknown implicit table, and a deep one.
	b.Reset()
	for i := range 20000 {
		fmt.Fprintf(&b, "x.k%d = 1\n", i)
	}
	b.WriteString(strings.Repeat("a.", 5000) + "z = 1\n")
	_, err = Parse([]byte(b.String()), "implicit.toml")
	if err == nil || !strings.HasPrefix(err.Error(), "implicit.toml:1: x: unknown key at the top level") {
		t.Errorf("got %v", err)
	}

	b.WriteString("# padding\n" + strings.Repeat("#", MaxFileSize))
	if _, err := Parse([]byte(b.String()), "huge.toml"); err == nil || !strings.Contains(err.Error(), "a configuration file is at most 1048576") {
		t.Errorf("huge file: %v", err)
	}
}

func TestImplicitTableLines(t *testing.T) {
	doc := "# comment\n\n[unknown.sub]\nk = 1\n\n[clamd]\nextra.deep.key = 2\n"
	_, err := Parse([]byte(doc), "f.toml")
	// The lines and keys matter here; the lists of known keys grow with
	// features and are checked by the golden files.
	var lines []string
	if err != nil {
		for _, l := range strings.Split(err.Error(), "\n") {
			l, _, _ = strings.Cut(l, " (known:")
			lines = append(lines, l)
		}
	}
	want := "f.toml:3: unknown: unknown key at the top level\nf.toml:7: clamd.extra: unknown key in [clamd]"
	if got := strings.Join(lines, "\n"); got != want {
		t.Errorf("got:\n%v\nwant:\n%s", got, want)
	}
}

func BenchmarkParseLargeInput(b *testing.B) {
	var sb strings.Builder
	for i := 0; sb.Len() < MaxFileSize-100; i++ {
		fmt.Fprintf(&sb, "key%d = %d\n", i, i)
	}
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		Parse(data, "big.toml")
	}
}
