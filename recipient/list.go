package recipient

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The list file names the addresses that exist, one entry a line:
//
//	# a comment; blank lines are ignored
//	alice@example.com       this address exists
//	@example.org            every address of example.org exists...
//	!bob@example.org        ...except this one
//
// A domain that appears in the file, in any entry, is covered by the list:
// its addresses that no entry accepts are unknown. Domains the file does
// not mention are left to the other checks. Matching ignores case.
//
// Limits: MaxListLine bytes per line, MaxListSize bytes per file.
const (
	MaxListLine = 1024
	MaxListSize = 64 << 20
)

// ListData is a parsed list file.
type ListData struct {
	exists   map[string]bool // lower-case address → true
	except   map[string]bool // lower-case address → true
	wildcard map[string]bool // lower-case domain → every address exists
	domains  map[string]bool // every domain mentioned
}

// ListError is one bad line of a list file.
type ListError struct {
	Line int
	Msg  string
}

func (e ListError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// ParseList reads a list file. It reports every bad line (up to 20) in
// one error, as a joined list of ListError.
func ParseList(r io.Reader) (*ListData, error) {
	d := &ListData{exists: map[string]bool{}, except: map[string]bool{}, wildcard: map[string]bool{}, domains: map[string]bool{}}
	br := bufio.NewReaderSize(r, 64<<10)
	var errs []error
	bad := func(n int, format string, args ...any) {
		if len(errs) < 20 {
			errs = append(errs, ListError{n, fmt.Sprintf(format, args...)})
		}
	}
	total := 0
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		total += len(line)
		long := len(line) > MaxListLine+2
		for errors.Is(err, bufio.ErrBufferFull) && total <= MaxListSize { // skip the rest of a long line
			long = true
			line, err = br.ReadSlice('\n')
			total += len(line)
		}
		if total > MaxListSize {
			return nil, fmt.Errorf("more than %d bytes", MaxListSize)
		}
		if long {
			bad(n, "longer than %d bytes", MaxListLine)
		} else if len(line) > 0 {
			parseListLine(d, n, string(line), bad)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return d, nil
}

func parseListLine(d *ListData, n int, line string, bad func(int, string, ...any)) {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	entry := strings.TrimSpace(line)
	if entry == "" {
		return
	}
	if strings.ContainsFunc(entry, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		bad(n, "%q: one address per line, without spaces or control characters", clip(entry))
		return
	}
	entry = strings.ToLower(entry)
	exception := strings.HasPrefix(entry, "!")
	addr := strings.TrimPrefix(entry, "!")
	local, domain, ok := splitAddr(addr)
	switch {
	case strings.HasPrefix(addr, "@") && !exception:
		domain = addr[1:]
		if !validDomain(domain) {
			bad(n, "%q: not a domain after '@'", clip(entry))
			return
		}
		d.wildcard[domain] = true
	case !ok || local == "" || !validDomain(domain):
		bad(n, "%q: want user@domain, @domain or !user@domain", clip(entry))
		return
	case exception:
		d.except[addr] = true
	default:
		d.exists[addr] = true
	}
	d.domains[domain] = true
}

// validDomain is a loose check: letters, digits, '-', '.', '_' and at least
// one label; an address literal ([192.0.2.1]) too.
func validDomain(d string) bool {
	if strings.HasPrefix(d, "[") && strings.HasSuffix(d, "]") && len(d) > 2 {
		return true
	}
	if d == "" || len(d) > 255 || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") {
		return false
	}
	return !strings.ContainsFunc(d, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' || r > 0x7f)
	})
}

// Lookup answers for one address: Exists or Unknown when the list covers its
// domain, Unsure when it does not.
func (d *ListData) Lookup(addr string) Status {
	addr = strings.ToLower(addr)
	_, domain, ok := splitAddr(addr)
	if !ok || !d.domains[domain] {
		return Unsure
	}
	switch {
	case d.except[addr]:
		return Unknown
	case d.exists[addr], d.wildcard[domain]:
		return Exists
	}
	return Unknown
}

// Covers reports whether the list speaks for a domain.
func (d *ListData) Covers(domain string) bool { return d.domains[strings.ToLower(domain)] }

// Len is the number of entries.
func (d *ListData) Len() int { return len(d.exists) + len(d.except) + len(d.wildcard) }

// List is a list file that reloads itself when it changes: at most once
// per CheckInterval a lookup looks at the file's size and modification
// time, and reads it again when either changed. A file that no longer
// parses is logged and the last good list stays in use.
type List struct {
	path string
	log  *slog.Logger
	// CheckInterval is how often a lookup may look at the file; 0 = 1s.
	CheckInterval time.Duration

	data atomic.Pointer[ListData]

	mu      sync.Mutex
	checked time.Time
	stamp   fileStamp
}

type fileStamp struct {
	size  int64
	mtime time.Time
}

// LoadList reads a list file; an unreadable or bad file is an error.
func LoadList(path string, logger *slog.Logger) (*List, error) {
	if logger == nil {
		logger = slog.Default()
	}
	l := &List{path: path, log: logger}
	d, st, err := l.read()
	if err != nil {
		return nil, err
	}
	l.data.Store(d)
	l.stamp, l.checked = st, time.Now()
	return l, nil
}

func (l *List) read() (*ListData, fileStamp, error) {
	b, err := os.ReadFile(l.path)
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("recipient list: %w", err)
	}
	fi, err := os.Stat(l.path)
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("recipient list: %w", err)
	}
	d, err := ParseList(bytes.NewReader(b))
	if err != nil {
		return nil, fileStamp{}, fmt.Errorf("recipient list %s: %w", l.path, err)
	}
	return d, fileStamp{size: fi.Size(), mtime: fi.ModTime()}, nil
}

// Path is the file's path.
func (l *List) Path() string { return l.path }

// Data returns the list in use, reloading it first if the file changed.
func (l *List) Data() *ListData {
	l.maybeReload()
	return l.data.Load()
}

// Lookup is Data().Lookup.
func (l *List) Lookup(addr string) Status { return l.Data().Lookup(addr) }

func (l *List) maybeReload() {
	every := l.CheckInterval
	if every <= 0 {
		every = time.Second
	}
	if !l.mu.TryLock() {
		return // another lookup is looking; use the list as it is
	}
	defer l.mu.Unlock()
	if time.Since(l.checked) < every {
		return
	}
	l.checked = time.Now()
	fi, err := os.Stat(l.path)
	if err != nil {
		l.log.Warn("recipient list: cannot look at the file; keeping the list in use", "path", l.path, "error", err.Error())
		return
	}
	if (fileStamp{size: fi.Size(), mtime: fi.ModTime()}) == l.stamp {
		return
	}
	d, st, err := l.read()
	if err != nil {
		l.log.Error("recipient list changed but does not load; keeping the list in use", "path", l.path, "error", err.Error())
		l.stamp = fileStamp{size: fi.Size(), mtime: fi.ModTime()} // don't retry until it changes again
		return
	}
	l.data.Store(d)
	l.stamp = st
	l.log.Info("recipient list reloaded", "path", l.path, "entries", d.Len())
}

// splitAddr splits at the last '@'.
func splitAddr(addr string) (local, domain string, ok bool) {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return "", "", false
	}
	return addr[:i], addr[i+1:], true
}
