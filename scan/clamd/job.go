package clamd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	lib "github.com/baruwa-enterprise/clamd"

	"github.com/nobounce/nobounce/scan"
)

// job is one message on its way to clamd.
//
// Write puts bytes into a synchronous pipe (handoff); a goroutine (run) hands
// the other end to the library's ScanReader, which reads it in 1 KiB pieces
// and sends each as an INSTREAM chunk. A Write therefore returns once the
// library has taken all its bytes: back-pressure from clamd, and no copy of
// the message here.
//
// Every way out unblocks both ends of the pipe: when run ends it closes the
// read end with its error (so Write returns it); Abort, the timeout and the
// caller's ctx close the read end at once and again through an AfterFunc (so
// the library's next read fails and it gives up).
type job struct {
	s      *Scanner
	env    *scan.Envelope
	start  time.Time
	ctx    context.Context // Begin's ctx and Abort
	cancel context.CancelCauseFunc
	pipe   *handoff
	body   countingReader // pipe, counted; used by run only
	done   chan struct{}  // closed when run has returned
	res    scan.Result    // run's result, written before done is closed

	mu     sync.Mutex
	server string       // address in use, for a result made before run ends
	final  *scan.Result // what Finish returned
}

// countingReader counts the message bytes the library has taken: while it
// is zero, no clamd has seen anything of the message and failing over is safe.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// Begin starts a scan. It does not block: connecting happens in the job's
// goroutine while the caller writes (a Write waits for it).
func (s *Scanner) Begin(ctx context.Context, env *scan.Envelope) scan.Job {
	j := &job{s: s, env: env, start: time.Now(), done: make(chan struct{})}
	// No clock on the whole scan here: a slow SMTP client may take minutes
	// to send a large message. While bytes flow, the library's deadline on
	// each read and write (Options.Timeout) catches a clamd that stalls;
	// Finish puts Options.Timeout on the wait for the answer.
	j.ctx, j.cancel = context.WithCancelCause(ctx)
	j.pipe = newHandoff()
	j.body.r = j.pipe
	context.AfterFunc(j.ctx, func() { j.pipe.CloseRead(fmt.Errorf("clamd: %w", context.Cause(j.ctx))) })
	go j.run()
	return j
}

// Write streams p to clamd. It blocks until clamd's side has taken all of p,
// and fails as soon as the scan has ended for any reason.
func (j *job) Write(p []byte) (int, error) {
	return j.pipe.Write(p)
}

// Finish ends the message and waits for clamd's answer, at most until ctx
// is done or the scan's own deadline passes.
func (j *job) Finish(ctx context.Context) scan.Result {
	j.mu.Lock()
	if j.final != nil {
		defer j.mu.Unlock()
		return *j.final
	}
	j.mu.Unlock()

	j.pipe.CloseWrite(io.EOF) // the zero-length chunk follows
	wait, stop := context.WithTimeoutCause(j.ctx, j.s.opts.Timeout,
		fmt.Errorf("%w after %v", ErrTimeout, j.s.opts.Timeout))
	defer stop()
	var r scan.Result
	select {
	case <-j.done:
		r = j.res
	case <-wait.Done():
		r = j.failedNow(context.Cause(wait))
	case <-ctx.Done():
		r = j.failedNow(context.Cause(ctx))
	}
	j.release(errors.New("scan finished"))

	j.mu.Lock()
	defer j.mu.Unlock()
	if j.final == nil {
		j.final = &r
	}
	return *j.final
}

// Abort abandons the scan. It does not wait: the goroutine ends at its next
// read of the message, or at the latest when the library's deadline on the
// connection (Options.Timeout) passes.
func (j *job) Abort() { j.release(errAborted) }

// release cancels the job's context and closes the pipe now, so that a
// Write right after Abort fails (the AfterFunc runs asynchronously).
func (j *job) release(cause error) {
	j.cancel(cause)
	j.pipe.CloseRead(fmt.Errorf("clamd: %w", context.Cause(j.ctx)))
}

// failedNow is the result when we stop waiting for run: run's own if it has
// just ended, else a failure for err.
func (j *job) failedNow(err error) scan.Result {
	select {
	case <-j.done:
		return j.res
	default:
	}
	j.mu.Lock()
	srv := j.server
	j.mu.Unlock()
	if srv == "" {
		srv = j.s.servers[0].name
	}
	return scan.Result{
		Scanner: "clamd",
		Status:  scan.Failed,
		Err:     fmt.Errorf("clamd %s: %w", srv, err),
		Server:  srv,
		Elapsed: time.Since(j.start),
	}
}

func (j *job) run() {
	r := j.scan()
	r.Scanner = "clamd"
	r.Elapsed = time.Since(j.start)
	j.res = r
	if r.Status == scan.Failed {
		j.pipe.CloseRead(r.Err) // a blocked or later Write returns it
	} else {
		j.pipe.CloseRead(nil)
	}
	close(j.done)
}

func (j *job) queueID() string {
	if j.env == nil {
		return ""
	}
	return j.env.QueueID
}

// scan tries the servers in turn until one has taken the message.
func (j *job) scan() scan.Result {
	var errs []string
	var last *server
	for _, sv := range j.s.order() {
		last = sv
		j.mu.Lock()
		j.server = sv.name
		j.mu.Unlock()
		if j.ctx.Err() != nil {
			break
		}
		var resp []*lib.Response
		var err error
		// A unix socket whose listen queue is full refuses a connect with
		// EAGAIN at once (a TCP connect would wait in the SYN queue): clamd is
		// busy, not down. Try again, briefly, within the connect timeout.
		busyUntil := time.Now().Add(j.s.opts.ConnectTimeout)
		for wait := time.Millisecond; ; wait = min(2*wait, 50*time.Millisecond) {
			var c *lib.Client
			c, err = j.s.client(sv.addr, j.s.opts.Timeout)
			if err == nil {
				resp, err = c.ScanReader(j.ctx, &j.body)
			}
			if err == nil || !errors.Is(err, syscall.EAGAIN) || j.body.n != 0 || time.Now().After(busyUntil) {
				break
			}
			select {
			case <-j.ctx.Done():
			case <-time.After(wait):
			}
			if j.ctx.Err() != nil {
				break
			}
		}
		if err != nil && isConnectError(err) && j.body.n == 0 {
			if j.ctx.Err() != nil {
				break // our deadline or Abort, not clamd's fault
			}
			j.s.markDown(sv, err)
			j.s.log.Debug("clamd unreachable, trying the next address", "addr", sv.name, "queue_id", j.queueID(), "err", err)
			errs = append(errs, fmt.Sprintf("%s: %v", sv.name, err))
			continue
		}
		j.s.markUp(sv)
		return j.result(sv, resp, err)
	}
	r := scan.Result{Status: scan.Failed, Server: last.name}
	if err := j.ctx.Err(); err != nil {
		r.Err = fmt.Errorf("clamd %s: %w", last.name, context.Cause(j.ctx))
		if len(errs) > 0 {
			r.Err = fmt.Errorf("clamd %s: %w (after %s)", last.name, context.Cause(j.ctx), strings.Join(errs, "; "))
		}
		return r
	}
	r.Err = fmt.Errorf("clamd %s: no clamd reachable: %s", last.name, strings.Join(errs, "; "))
	return r
}

// result turns the library's answer into a scan.Result.
func (j *job) result(sv *server, resp []*lib.Response, err error) scan.Result {
	r := scan.Result{Server: sv.name}
	// A signature clamd named is an answer even if the connection then
	// misbehaved: never lose a virus to a later error.
	for _, x := range resp {
		if x.Status == "FOUND" {
			r.Status, r.Threat = scan.Infected, x.Signature
			return r
		}
	}
	if sig, ok := foundInRejected(err); ok {
		r.Status, r.Threat = scan.Infected, sig
		return r
	}
	r.Status = scan.Failed
	switch {
	case err != nil:
		r.Err = fmt.Errorf("clamd %s: %w", sv.name, j.explain(sv, err))
	case len(resp) == 0:
		r.Err = fmt.Errorf("clamd %s: connection closed without an answer", sv.name)
	default:
		for _, x := range resp {
			if x.Status != "OK" {
				r.Err = fmt.Errorf("clamd %s: answered %q", sv.name, x.Raw)
				return r
			}
		}
		r.Status = scan.Clean
	}
	return r
}

// invalidPrefix starts the library's error for a line it could not parse.
const invalidPrefix = "Invalid server response: "

// foundInRejected finds a signature name in an answer the library rejected:
// its pattern does not allow a ':' in the name, so "stream: A:B FOUND" is an
// error to it. A virus must not become a temporary failure (retried until
// the sender's server gives up and bounces).
func foundInRejected(err error) (string, bool) {
	if err == nil {
		return "", false
	}
	line, ok := strings.CutPrefix(err.Error(), invalidPrefix)
	if !ok {
		return "", false
	}
	line = strings.TrimRight(line, "\r\n")
	_, rest, ok := strings.Cut(line, ": ")
	sig, found := strings.CutSuffix(rest, " FOUND")
	sig = strings.TrimSpace(sig)
	return sig, ok && found && sig != ""
}

// explain rewords a library error so that a log reader knows what happened.
// The library's errors are plain strings, hence some matching on text.
func (j *job) explain(sv *server, err error) error {
	if j.ctx.Err() != nil {
		// Our timeout, Abort or the caller's ctx closed the pipe under the
		// library; its own error (io.ErrClosedPipe) says nothing.
		return context.Cause(j.ctx)
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "INSTREAM size limit exceeded") {
		return fmt.Errorf("%w: answered %q", ErrSizeLimit, msg)
	}
	if rest, ok := strings.CutPrefix(msg, invalidPrefix); ok {
		return fmt.Errorf("unexpected answer %q", strings.TrimRight(rest, "\r\n"))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		// The library's deadline on the connection, which is Options.Timeout
		// from the last chunk sent: clamd went silent.
		return fmt.Errorf("%w: clamd silent for %v: %w", ErrTimeout, j.s.opts.Timeout, err)
	}
	n := j.body.n
	if n > 0 && (errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)) {
		// clamd closed the connection while we were sending. When that is
		// its size limit it has said so, but the library does not read the
		// answer after a failed write; ask again.
		if line, ok := j.s.probeSizeLimit(j.ctx, sv.addr, n); ok {
			return fmt.Errorf("%w: connection closed after we sent %d bytes, and clamd answers %q to a stream of that size", ErrSizeLimit, n, line)
		}
		return fmt.Errorf("connection closed by clamd after we sent %d bytes: %w", n, err)
	}
	return err
}
