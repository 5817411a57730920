package spamd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/nobounce/nobounce/scan"
)

// job is one message for spamd: the spool bookkeeping is scan.SpooledJob's;
// the exchange with spamd (scan) runs at Finish.
type job struct {
	*scan.SpooledJob
	s   *Scanner
	env *scan.Envelope
}

// BeginSpooled starts a scan of the message that sp holds once the stream
// has ended; sp belongs to the caller.
func (s *Scanner) BeginSpooled(ctx context.Context, env *scan.Envelope, sp *scan.Spool) scan.Job {
	return s.newJob(ctx, env, sp, false)
}

// Begin starts a scan that keeps its own spool, filled by Write (for use
// without a scan.Stream). Bytes past MaxSize are not kept.
func (s *Scanner) Begin(ctx context.Context, env *scan.Envelope) scan.Job {
	return s.newJob(ctx, env, scan.NewSpool("", 0), true)
}

func (s *Scanner) newJob(ctx context.Context, env *scan.Envelope, sp *scan.Spool, own bool) *job {
	j := &job{s: s, env: env}
	j.SpooledJob = scan.NewSpooledJob(ctx, "spamd", sp, own, s.opts.MaxSize, errAborted, j.scan)
	return j
}

func (j *job) queueID() string {
	if j.env == nil {
		return ""
	}
	return j.env.QueueID
}

// failed is a Failed result naming the server.
func failed(server string, err error) scan.Result {
	return scan.Result{Status: scan.Failed, Server: server, Err: fmt.Errorf("spamd %s: %w", server, err)}
}

func (j *job) scan(ctx context.Context) scan.Result {
	first := j.s.servers[0].name
	if err := j.Ctx.Err(); err != nil {
		return failed(first, context.Cause(j.Ctx))
	}
	if err := ctx.Err(); err != nil {
		return failed(first, context.Cause(ctx))
	}
	if j.Over() || j.Spool.Size() > j.s.opts.MaxSize {
		return scan.Result{Status: scan.Clean, Skipped: SkippedTooLarge,
			Rule: fmt.Sprintf("over max_size %d", j.s.opts.MaxSize)}
	}
	if err := j.Spool.Err(); err != nil {
		return failed(first, err)
	}

	// One clock for everything from here: Timeout, the caller's ctx, Abort.
	wctx, cancel := context.WithTimeoutCause(j.Ctx, j.s.opts.Timeout,
		fmt.Errorf("%w after %v", ErrTimeout, j.s.opts.Timeout))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { cancel() })
	defer stop()
	cause := func() error {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return context.Cause(wctx)
	}

	var errs []string
	last := first
	var lastErr error // the last server's failure after it took the connection
	for _, sv := range j.s.order() {
		last = sv.name
		if wctx.Err() != nil {
			break
		}
		conn, err := j.s.dial(wctx, sv)
		if err != nil {
			if wctx.Err() != nil {
				break // our clock, not spamd's fault
			}
			j.s.markDown(sv, err)
			j.s.log.Debug("spamd unreachable, trying the next address", "addr", sv.name, "queue_id", j.queueID(), "err", err)
			errs = append(errs, fmt.Sprintf("%s: %v", sv.name, err))
			lastErr = nil
			continue
		}
		j.s.markUp(sv)
		rp, err := j.exchange(wctx, conn)
		if err != nil {
			if wctx.Err() != nil || errors.Is(err, ErrTimeout) {
				if wctx.Err() != nil {
					err = cause()
				}
				return failed(sv.name, withEarlier(err, errs))
			}
			j.s.log.Warn("spamd failed, trying the next address", "addr", sv.name, "queue_id", j.queueID(), "err", err)
			errs = append(errs, fmt.Sprintf("%s: %v", sv.name, err))
			lastErr = err
			continue
		}
		advice, rule := j.s.advise(rp)
		return scan.Result{
			Status: scan.Clean,
			Server: sv.name,
			Advice: advice,
			Rule:   rule,
			Spam:   &scan.Spam{Score: rp.Score, Required: rp.Required, Symbols: rp.Symbols, IsSpam: rp.IsSpam},
		}
	}
	if wctx.Err() != nil {
		return failed(last, withEarlier(cause(), errs))
	}
	if lastErr != nil {
		return failed(last, withEarlier(lastErr, errs[:len(errs)-1]))
	}
	return failed(last, fmt.Errorf("no spamd reachable: %s", strings.Join(errs, "; ")))
}

// withEarlier adds what happened at the addresses tried before to err.
func withEarlier(err error, errs []string) error {
	if len(errs) == 0 {
		return err
	}
	return fmt.Errorf("%w (after %s)", err, strings.Join(errs, "; "))
}

// exchange sends the request and the message on conn and reads the
// answer. conn is closed on return; ctx's end interrupts every read and
// write.
func (j *job) exchange(ctx context.Context, conn net.Conn) (*reply, error) {
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	size := j.Spool.Size()
	received := ""
	if !j.s.opts.NoReceived {
		received = ReceivedHeader(j.env, time.Now())
	}
	_, werr := io.WriteString(conn, requestHeader(int64(len(received))+size, j.s.opts.User)+received)
	if werr == nil {
		var n int64
		n, werr = io.Copy(conn, j.Spool.Reader())
		if werr == nil && n != size {
			werr = fmt.Errorf("spool gave %d of %d bytes", n, size)
			return nil, werr
		}
	}
	if werr == nil {
		// spamd reads exactly Content-length bytes; the half-close only
		// makes a short message an immediate error instead of a wait.
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}
	rp, rerr := parseReply(conn)
	var er *errReply
	var err error
	switch {
	case errors.As(rerr, &er):
		// spamd's own word on what went wrong beats our write error.
		return nil, rerr
	case werr != nil:
		err = fmt.Errorf("sending the message: %w", werr)
	case rerr != nil:
		err = rerr
	default:
		return rp, nil
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
		// The connection's deadline is ctx's: it went off a moment before
		// ctx itself.
		err = fmt.Errorf("%w after %v (%w)", ErrTimeout, j.s.opts.Timeout, err)
	}
	return nil, err
}
