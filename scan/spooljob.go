package scan

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// SpooledJob is the Job of a SpoolScanner: it holds the message's spool —
// the Stream's, or its own filled by Write when used without a Stream, as
// `nobounce scan` may — and runs the scanner's exchange once, at Finish.
// A scanner embeds it in its own job type and gives it the exchange.
type SpooledJob struct {
	// Ctx is the job's context: Begin's, cancelled by Abort.
	Ctx context.Context
	// Spool holds the message.
	Spool *Spool

	name    string
	maxSize int64
	start   time.Time
	cancel  context.CancelCauseFunc
	aborted error
	run     func(ctx context.Context) Result

	own  bool // Spool was made for this job: Write fills it, the job closes it
	over bool // own spool: outgrew maxSize or closed; nothing to read

	mu    sync.Mutex
	busy  bool    // Finish is reading the spool
	final *Result // what Finish returned
}

// NewSpooledJob makes the job of scanner name for the message in sp (own:
// the job fills it by Write, keeping no more than maxSize bytes, and closes
// it). run is the exchange with the scanner, called once by Finish with
// Finish's ctx; aborted is the cause Abort gives Ctx.
func NewSpooledJob(ctx context.Context, name string, sp *Spool, own bool, maxSize int64, aborted error, run func(ctx context.Context) Result) *SpooledJob {
	j := &SpooledJob{Spool: sp, name: name, maxSize: maxSize, start: time.Now(), aborted: aborted, run: run, own: own}
	j.Ctx, j.cancel = context.WithCancelCause(ctx)
	return j
}

// Over reports whether the job's own spool outgrew maxSize (its bytes were
// dropped), or was closed.
func (j *SpooledJob) Over() bool { return j.over }

// Write appends p to the job's own spool. A Stream never calls it.
func (j *SpooledJob) Write(p []byte) (int, error) {
	if j.Ctx.Err() != nil {
		return 0, fmt.Errorf("%s: %w", j.name, context.Cause(j.Ctx))
	}
	if !j.own {
		return 0, errors.New(j.name + ": Write on a spooled job")
	}
	if j.over {
		return len(p), nil
	}
	if j.Spool.Size()+int64(len(p)) > j.maxSize {
		// Not scanned at all: no need to keep the rest.
		j.over = true
		j.Spool.Close()
		return len(p), nil
	}
	return j.Spool.Write(p)
}

// Abort abandons the scan; a Finish under way returns at once.
func (j *SpooledJob) Abort() {
	j.cancel(j.aborted)
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.busy {
		// A Finish under way closes the spool when it is done with it.
		j.closeOwn()
	}
}

func (j *SpooledJob) closeOwn() {
	if j.own && !j.over {
		j.Spool.Close()
		j.over = true // nothing left to read
	}
}

// Finish runs the exchange once and returns its result, the same on every
// call.
func (j *SpooledJob) Finish(ctx context.Context) Result {
	j.mu.Lock()
	if j.final != nil {
		defer j.mu.Unlock()
		return *j.final
	}
	j.busy = true
	j.mu.Unlock()

	r := j.run(ctx)
	r.Scanner = j.name
	r.Elapsed = time.Since(j.start)

	j.mu.Lock()
	defer j.mu.Unlock()
	j.busy = false
	if j.final == nil {
		j.final = &r
	}
	j.closeOwn()
	return *j.final
}
