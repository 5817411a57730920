package scan

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrOversize is the error of every job a Stream abandoned because the
// message outgrew the scan size limit.
var ErrOversize = errors.New("message larger than the scan size limit")

// Stream feeds one message to several scanners at once. It is used by one
// goroutine (the milter session); the scanners run concurrently behind their
// jobs.
type Stream struct {
	jobs     []*streamJob
	spool    *Spool // nil unless a SpoolScanner takes part
	size     int64
	maxSize  int64
	oversize bool
	cancel   context.CancelFunc
}

type streamJob struct {
	name    string
	job     Job
	start   time.Time
	spooled bool  // reads the spool instead of Write
	err     error // first write error: the job wants no more input
}

// Options bound one message's scan.
type Options struct {
	// MaxSize bounds the bytes scanned; past it the jobs are abandoned and
	// Oversize reports true, so that the caller's policy decides: a scan is
	// never silently truncated. <= 0 means no limit.
	MaxSize int64
	// SpoolDir and SpoolMemory place the spool of SpoolScanners; see NewSpool.
	SpoolDir    string
	SpoolMemory int
}

// Open starts a job on every scanner. Scanners that need the whole message
// (SpoolScanner) share one Spool that fills as the message streams in.
func Open(ctx context.Context, scanners []Scanner, env *Envelope, o Options) *Stream {
	ctx, cancel := context.WithCancel(ctx)
	s := &Stream{maxSize: o.MaxSize, cancel: cancel}
	for _, sc := range scanners {
		j := &streamJob{name: sc.Name(), start: time.Now()}
		if ss, ok := sc.(SpoolScanner); ok {
			if s.spool == nil {
				s.spool = NewSpool(o.SpoolDir, o.SpoolMemory)
			}
			j.job, j.spooled = ss.BeginSpooled(ctx, env, s.spool), true
		} else {
			j.job = sc.Begin(ctx, env)
		}
		s.jobs = append(s.jobs, j)
	}
	return s
}

// Write hands p to every job still listening. It never fails: a job that
// fails keeps its error for Finish, and the others go on.
func (s *Stream) Write(p []byte) (int, error) {
	n := len(p)
	if s.oversize {
		s.size += int64(n)
		return n, nil
	}
	s.size += int64(n)
	if s.maxSize > 0 && s.size > s.maxSize {
		s.MarkOversize()
		return n, nil
	}
	if s.spool != nil && s.spool.Err() == nil {
		if _, err := s.spool.Write(p); err != nil {
			for _, j := range s.jobs {
				if j.spooled && j.err == nil {
					j.err = err
				}
			}
		}
	}
	for _, j := range s.jobs {
		if j.err != nil || j.spooled {
			continue
		}
		if _, err := j.job.Write(p); err != nil {
			j.err = err
		}
	}
	return n, nil
}

// MarkOversize abandons every job as if the message had outgrown the scan
// size limit; the caller uses it when a part it keeps itself (the header
// block) is over its own bound.
func (s *Stream) MarkOversize() {
	if s.oversize {
		return
	}
	s.oversize = true
	for _, j := range s.jobs {
		j.job.Abort()
		if j.err == nil {
			j.err = ErrOversize
		}
	}
	s.closeSpool()
}

func (s *Stream) closeSpool() {
	if s.spool != nil {
		s.spool.Close()
		s.spool = nil
	}
}

// Size is the number of message bytes written so far.
func (s *Stream) Size() int64 { return s.size }

// Oversize reports whether the message outgrew the scan size limit.
func (s *Stream) Oversize() bool { return s.oversize }

// Finish ends the message and collects every scanner's answer, waiting for
// all of them concurrently until ctx is done. Results are in scanner order.
// After an oversize message it returns no results.
func (s *Stream) Finish(ctx context.Context) []Result {
	defer s.cancel()
	if s.oversize {
		return nil
	}

	results := make([]Result, len(s.jobs))
	var wg sync.WaitGroup
	for i, j := range s.jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := j.job.Finish(ctx)
			if r.Scanner == "" {
				r.Scanner = j.name
			}
			if r.Status == Clean && j.err != nil {
				// A job that refused input cannot have seen the whole message.
				r.Status, r.Threat = Failed, ""
				r.Err = fmt.Errorf("%s: write: %w", j.name, j.err)
			}
			if r.Elapsed == 0 {
				r.Elapsed = time.Since(j.start)
			}
			results[i] = r
		}()
	}
	wg.Wait()
	for _, j := range s.jobs {
		j.job.Abort()
	}
	s.closeSpool()
	return results
}

// Abort abandons every job: the message was aborted by the MTA.
func (s *Stream) Abort() {
	for _, j := range s.jobs {
		j.job.Abort()
	}
	s.cancel()
	s.closeSpool()
}
