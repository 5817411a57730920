package scan

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
)

// DefaultSpoolMemory is how much of a message a Spool keeps in memory
// before it moves to a temporary file.
const DefaultSpoolMemory = 256 << 10

// Spool keeps one message for scanners whose protocol needs the whole
// message, or its length, before they can send it (SPAMC's Content-length,
// rspamd's HTTP body). It fills while DATA arrives: in memory up to a small
// bound, then in a 0600 temporary file, so memory per session stays flat.
// It is written by one goroutine; readers made by Reader may be used
// concurrently once writing has ended.
type Spool struct {
	dir  string
	max  int
	mem  bytes.Buffer
	file *os.File
	size int64
	err  error
}

// NewSpool makes an empty spool. dir is where the temporary file goes (""
// for os.TempDir()); memory is the in-memory bound (<= 0: DefaultSpoolMemory).
func NewSpool(dir string, memory int) *Spool {
	if memory <= 0 {
		memory = DefaultSpoolMemory
	}
	return &Spool{dir: dir, max: memory}
}

// Write appends p. After a failure every later Write returns the same error.
func (s *Spool) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.file == nil && s.mem.Len()+len(p) > s.max {
		f, err := os.CreateTemp(s.dir, "nobounce-spool-*")
		if err == nil {
			// CreateTemp makes the file 0600 already; the chmod keeps it so
			// whatever the platform.
			err = f.Chmod(0o600)
			if err == nil {
				_, err = f.Write(s.mem.Bytes())
			}
			if err != nil {
				f.Close()
				os.Remove(f.Name())
			}
		}
		if err != nil {
			s.err = fmt.Errorf("spool: %w", err)
			return 0, s.err
		}
		s.file = f
		s.mem = bytes.Buffer{}
	}
	var n int
	if s.file != nil {
		n, s.err = s.file.Write(p)
		if s.err != nil {
			s.err = fmt.Errorf("spool %s: %w", s.file.Name(), s.err)
		}
	} else {
		n, _ = s.mem.Write(p)
	}
	s.size += int64(n)
	return n, s.err
}

// Size is the number of bytes written.
func (s *Spool) Size() int64 { return s.size }

// Err is the first write error, if any.
func (s *Spool) Err() error { return s.err }

// Reader returns a new reader of the whole message from its start.
func (s *Spool) Reader() io.Reader {
	if s.file != nil {
		return io.NewSectionReader(s.file, 0, s.size)
	}
	return bytes.NewReader(s.mem.Bytes())
}

// Close removes the temporary file, if any. The spool is unusable after.
func (s *Spool) Close() error {
	s.mem = bytes.Buffer{}
	if s.file == nil {
		return nil
	}
	name := s.file.Name()
	err := s.file.Close()
	if rerr := os.Remove(name); err == nil {
		err = rerr
	}
	s.file = nil
	return err
}

// SpoolScanner is a Scanner that reads the whole message from the Spool the
// Stream fills. Its Job's Write is never called; its Finish runs once the
// spool holds the whole message, so the time at the end of the message is
// the scanner's own.
type SpoolScanner interface {
	Scanner
	BeginSpooled(ctx context.Context, env *Envelope, sp *Spool) Job
}
