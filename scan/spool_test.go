package scan

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestSpoolMemoryThenFile(t *testing.T) {
	dir := t.TempDir()
	sp := NewSpool(dir, 16)
	sp.Write([]byte("0123456789"))
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Fatalf("spooled to disk under the memory bound: %v", files)
	}
	sp.Write([]byte("abcdefghij"))
	files, _ := os.ReadDir(dir)
	if len(files) != 1 {
		t.Fatalf("want one spool file over the bound, got %v", files)
	}
	fi, _ := os.Stat(filepath.Join(dir, files[0].Name()))
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("spool file mode %o, want 600", fi.Mode().Perm())
	}
	for i := 0; i < 2; i++ { // readers are independent
		got, _ := io.ReadAll(sp.Reader())
		if string(got) != "0123456789abcdefghij" || sp.Size() != 20 {
			t.Fatalf("read %q, size %d", got, sp.Size())
		}
	}
	sp.Close()
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Errorf("spool file left after Close: %v", files)
	}
}

// spoolScanner answers from the spool it was given at Finish.
type spoolScanner struct {
	got []byte
}

func (s *spoolScanner) Name() string { return "spool" }
func (s *spoolScanner) Begin(ctx context.Context, env *Envelope) Job {
	panic("Begin on a SpoolScanner")
}
func (s *spoolScanner) BeginSpooled(ctx context.Context, env *Envelope, sp *Spool) Job {
	return &spoolJob{s: s, sp: sp}
}

type spoolJob struct {
	s  *spoolScanner
	sp *Spool
}

func (j *spoolJob) Write(p []byte) (int, error) { panic("Write on a spooled job") }
func (j *spoolJob) Finish(ctx context.Context) Result {
	j.s.got, _ = io.ReadAll(j.sp.Reader())
	return Result{Status: Clean}
}
func (j *spoolJob) Abort() {}

func TestStreamSpool(t *testing.T) {
	dir := t.TempDir()
	ss := &spoolScanner{}
	direct := &memScanner{name: "direct"}
	s := Open(context.Background(), []Scanner{ss, direct}, &Envelope{}, Options{SpoolDir: dir, SpoolMemory: 8})
	want := bytes.Repeat([]byte("spooled line\r\n"), 100)
	for i := 0; i < len(want); i += 100 {
		s.Write(want[i:min(i+100, len(want))])
	}
	res := s.Finish(context.Background())
	if !bytes.Equal(ss.got, want) || res[0].Status != Clean || res[0].Scanner != "spool" {
		t.Errorf("spool scanner read %d bytes (want %d), result %+v", len(ss.got), len(want), res[0])
	}
	if direct.jobs[0].buf.Len() != len(want) {
		t.Errorf("direct scanner got %d bytes", direct.jobs[0].buf.Len())
	}
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Errorf("spool file left after Finish: %v", files)
	}
	// Abort removes it too.
	s = Open(context.Background(), []Scanner{ss}, &Envelope{}, Options{SpoolDir: dir, SpoolMemory: 8})
	s.Write(want)
	s.Abort()
	if files, _ := os.ReadDir(dir); len(files) != 0 {
		t.Errorf("spool file left after Abort: %v", files)
	}
}
