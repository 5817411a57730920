package mime

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/nobounce/nobounce/scan"
)

// The SpamAssassin public corpus (testbed/corpus.sh): 6 046 real messages,
// ham and spam of 2002. Every one must walk without an error, and the
// default policy must reject no ham. The tests are skipped when the corpus
// has not been fetched (NOBOUNCE_CORPUS names its folder; else the cache
// folder of testbed/corpus.sh is tried).

var corpusLabels = []string{"easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"}

// corpusDir returns the corpus folder, or "" when it is not there.
func corpusDir() string {
	if d := os.Getenv("NOBOUNCE_CORPUS"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	d := filepath.Join(home, ".cache", "nobounce", "spam-assassin")
	if _, err := os.Stat(filepath.Join(d, ".complete")); err != nil {
		return ""
	}
	return d
}

// corpusMessage reads a corpus file in wire form: the mbox "From " line
// dropped, CRLF line ends (as the milter hands messages over).
func corpusMessage(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return wireForm(b), nil
}

// wireForm drops an mbox "From " line and makes every line end CRLF.
func wireForm(b []byte) []byte {
	if bytes.HasPrefix(b, []byte("From ")) {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n"))
}

func corpusFiles(t testing.TB) map[string][]string {
	dir := corpusDir()
	if dir == "" {
		t.Skip("corpus not fetched: run `bash testbed/corpus.sh` (or set NOBOUNCE_CORPUS)")
	}
	files := map[string][]string{}
	for _, l := range corpusLabels {
		fs, _ := filepath.Glob(filepath.Join(dir, "data", l, "*.txt"))
		sort.Strings(fs)
		files[l] = fs
	}
	return files
}

func isHam(label string) bool { return strings.Contains(label, "ham") }

// TestCorpus walks the whole corpus with the default options and reports,
// per label, how many messages each advice and rule would apply to. It
// fails on any error, and on any ham the default policy would reject or
// defer.
func TestCorpus(t *testing.T) {
	files := corpusFiles(t)
	s, err := New(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	type tally struct {
		msgs, errs int
		advice     [4]int
		rules      map[string]int
	}
	var mu sync.Mutex
	stats := map[string]*tally{}
	total := 0
	for _, label := range corpusLabels {
		st := &tally{rules: map[string]int{}}
		stats[label] = st
		var wg sync.WaitGroup
		sem := make(chan struct{}, 2)
		for _, f := range files[label] {
			total++
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				msg, err := corpusMessage(f)
				if err != nil {
					t.Error(err)
					return
				}
				rep, err := s.Walk(bytes.NewReader(msg))
				res := rep.Result()
				mu.Lock()
				defer mu.Unlock()
				st.msgs++
				if err != nil {
					st.errs++
					t.Errorf("%s: %v", f, err)
				}
				st.advice[res.Advice]++
				seen := map[string]bool{}
				for _, h := range rep.Hits {
					key := h.Rule
					if h.Rule == RuleMalformed || h.Rule == RuleOverLimit || h.Rule == RuleBannedExtension || h.Rule == RuleBannedType || h.Rule == RuleExecutable {
						key += " " + h.Detail
					}
					if !seen[key] {
						seen[key] = true
						st.rules[key]++
					}
				}
				if isHam(label) && res.Advice >= scan.AdviseTempFail {
					t.Errorf("ham %s: %s: %s", label, filepath.Base(f), res.Rule)
				}
			}()
		}
		wg.Wait()
	}
	if total != 6046 {
		t.Errorf("%d messages in the corpus, want 6046", total)
	}
	for _, label := range corpusLabels {
		st := stats[label]
		t.Logf("%-10s %4d messages, %d errors; reject %d, tempfail %d, tag %d, none %d",
			label, st.msgs, st.errs, st.advice[scan.AdviseReject], st.advice[scan.AdviseTempFail], st.advice[scan.AdviseTag], st.advice[scan.AdviseNone])
		var keys []string
		for k := range st.rules {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			t.Logf("    %-60s %4d", k, st.rules[k])
		}
	}
}

// BenchmarkWalkCorpus measures the walker on corpus messages (the first 500
// of each label, in memory), in MB/s of wire-form message.
func BenchmarkWalkCorpus(b *testing.B) {
	files := corpusFiles(b)
	var msgs [][]byte
	var size int64
	for _, label := range corpusLabels {
		for _, f := range files[label][:min(500, len(files[label]))] {
			m, err := corpusMessage(f)
			if err != nil {
				b.Fatal(err)
			}
			msgs = append(msgs, m)
			size += int64(len(m))
		}
	}
	s, err := New(DefaultOptions())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		for _, m := range msgs {
			if _, err := s.Walk(bytes.NewReader(m)); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(len(msgs)), "msgs/op")
}

// BenchmarkWalkLarge measures the walker on one 10 MB attachment of
// random bytes, base64-encoded (a 13.5 MB message), and on the same bytes
// zipped (stored), which is spooled and listed.
func BenchmarkWalkLarge(b *testing.B) {
	data := make([]byte, 10<<20)
	for i := range data {
		data[i] = byte(i*7919 + i>>9)
	}
	for _, c := range []struct {
		name string
		msg  []byte
	}{
		{"octet-stream", msg(mixed(textPart("x\r\n"), attach("data.bin", "application/octet-stream", data)))},
		{"zip", msg(mixed(textPart("x\r\n"), attach("data.zip", "application/zip", zipOf(zipEntry{name: "data.bin", data: data, store: true}))))},
	} {
		b.Run(c.name, func(b *testing.B) {
			o := DefaultOptions()
			o.TempDir = b.TempDir()
			s, err := New(o)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(c.msg)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Walk(bytes.NewReader(c.msg)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
