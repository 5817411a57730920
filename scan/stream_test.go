package scan

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// memScanner keeps what it is fed; its job fails after failAfter bytes when
// failAfter > 0, and answers with status.
type memScanner struct {
	name      string
	status    Status
	failAfter int
	jobs      []*memJob
}

func (m *memScanner) Name() string { return m.name }
func (m *memScanner) Begin(ctx context.Context, env *Envelope) Job {
	j := &memJob{m: m}
	m.jobs = append(m.jobs, j)
	return j
}

type memJob struct {
	m       *memScanner
	buf     bytes.Buffer
	aborted bool
}

func (j *memJob) Write(p []byte) (int, error) {
	if j.m.failAfter > 0 && j.buf.Len()+len(p) > j.m.failAfter {
		return 0, errors.New("connection reset")
	}
	return j.buf.Write(p)
}
func (j *memJob) Finish(ctx context.Context) Result {
	return Result{Scanner: j.m.name, Status: j.m.status, Threat: map[bool]string{true: "T"}[j.m.status == Infected]}
}
func (j *memJob) Abort() { j.aborted = true }

func TestStreamFanOut(t *testing.T) {
	a := &memScanner{name: "a", status: Clean}
	b := &memScanner{name: "b", status: Infected}
	s := Open(context.Background(), []Scanner{a, b}, &Envelope{}, Options{})
	s.Write([]byte("Subject: x\r\n\r\n"))
	s.Write([]byte("body\r\n"))
	res := s.Finish(context.Background())
	if len(res) != 2 || res[0].Scanner != "a" || res[0].Status != Clean || res[1].Scanner != "b" || res[1].Status != Infected {
		t.Fatalf("results %+v", res)
	}
	for _, sc := range []*memScanner{a, b} {
		if got := sc.jobs[0].buf.String(); got != "Subject: x\r\n\r\nbody\r\n" {
			t.Errorf("%s saw %q", sc.name, got)
		}
		if !sc.jobs[0].aborted {
			t.Errorf("%s: job not released after Finish", sc.name)
		}
	}
	if s.Size() != 20 {
		t.Errorf("Size() = %d, want 20", s.Size())
	}
}

func TestStreamFailedWriteIsNotClean(t *testing.T) {
	// A scanner that stopped taking input cannot call the message clean;
	// the others go on.
	broken := &memScanner{name: "broken", status: Clean, failAfter: 10}
	ok := &memScanner{name: "ok", status: Clean}
	s := Open(context.Background(), []Scanner{broken, ok}, &Envelope{}, Options{})
	s.Write([]byte("0123456789abcdef"))
	s.Write([]byte("more"))
	res := s.Finish(context.Background())
	if res[0].Status != Failed || res[0].Err == nil {
		t.Errorf("broken scanner: %+v, want Failed with an error", res[0])
	}
	if res[1].Status != Clean || ok.jobs[0].buf.Len() != 20 {
		t.Errorf("healthy scanner: %+v after %d bytes", res[1], ok.jobs[0].buf.Len())
	}
}

func TestStreamFailedWriteKeepsVirus(t *testing.T) {
	// A virus found before the stream broke is still a virus.
	v := &memScanner{name: "v", status: Infected, failAfter: 1}
	s := Open(context.Background(), []Scanner{v}, &Envelope{}, Options{})
	s.Write([]byte("xx"))
	if res := s.Finish(context.Background()); res[0].Status != Infected {
		t.Errorf("got %+v, want Infected", res[0])
	}
}

func TestStreamOversize(t *testing.T) {
	a := &memScanner{name: "a", status: Clean}
	s := Open(context.Background(), []Scanner{a}, &Envelope{}, Options{MaxSize: 10})
	s.Write([]byte("0123456789"))
	if s.Oversize() {
		t.Fatal("exactly max_size is not over it")
	}
	s.Write([]byte("x"))
	s.Write([]byte("yyyy"))
	if !s.Oversize() || s.Size() != 15 {
		t.Fatalf("Oversize %v, Size %d", s.Oversize(), s.Size())
	}
	if !a.jobs[0].aborted || a.jobs[0].buf.Len() != 10 {
		t.Errorf("job not abandoned at the limit: aborted %v, saw %d bytes", a.jobs[0].aborted, a.jobs[0].buf.Len())
	}
	if res := s.Finish(context.Background()); res != nil {
		t.Errorf("an oversize message has no scan results, got %+v", res)
	}
}
