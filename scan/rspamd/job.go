package rspamd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/nobounce/nobounce/scan"
)

// job is one message for rspamd: the spool bookkeeping is scan.SpooledJob's;
// the exchange with rspamd (scan) runs at Finish.
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
	j.SpooledJob = scan.NewSpooledJob(ctx, "rspamd", sp, own, s.opts.MaxSize, errAborted, j.scan)
	return j
}

func (j *job) queueID() string {
	if j.env == nil {
		return ""
	}
	return j.env.QueueID
}

func failed(server string, err error) scan.Result {
	return scan.Result{Status: scan.Failed, Server: server, Err: fmt.Errorf("rspamd %s: %w", server, err)}
}

// withEarlier adds what happened at the URLs tried before to err.
func withEarlier(err error, errs []string) error {
	if len(errs) == 0 {
		return err
	}
	return fmt.Errorf("%w (after %s)", err, strings.Join(errs, "; "))
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
	var lastErr error // the last URL's failure after it took the connection
	for _, sv := range j.s.order() {
		last = sv.name
		if wctx.Err() != nil {
			break
		}
		r, err := j.exchange(wctx, sv)
		switch {
		case err == nil:
			j.s.markUp(sv)
			r.Server = sv.name
			return r
		case wctx.Err() != nil:
			return failed(sv.name, withEarlier(cause(), errs))
		case isDialError(err):
			j.s.markDown(sv, err)
			j.s.log.Debug("rspamd unreachable, trying the next URL", "url", sv.name, "queue_id", j.queueID(), "err", err)
			lastErr = nil
		case errors.Is(err, ErrTimeout):
			return failed(sv.name, withEarlier(err, errs))
		default:
			j.s.markUp(sv)
			j.s.log.Warn("rspamd failed, trying the next URL", "url", sv.name, "queue_id", j.queueID(), "err", err)
			lastErr = err
		}
		errs = append(errs, fmt.Sprintf("%s: %v", sv.name, err))
	}
	if wctx.Err() != nil {
		return failed(last, withEarlier(cause(), errs))
	}
	if lastErr != nil {
		return failed(last, withEarlier(lastErr, errs[:len(errs)-1]))
	}
	return failed(last, fmt.Errorf("no rspamd reachable: %s", strings.Join(errs, "; ")))
}

// exchange posts the message to one rspamd and maps its answer.
func (j *job) exchange(ctx context.Context, sv *server) (scan.Result, error) {
	size := j.Spool.Size()
	var body io.Reader = j.Spool.Reader()
	if size == 0 {
		body = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sv.check, body)
	if err != nil {
		return scan.Result{}, err
	}
	req.ContentLength = size
	if size > 0 {
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(j.Spool.Reader()), nil }
	}
	setEnvelope(req.Header, j.env)
	j.s.setPassword(req)

	resp, err := j.s.client.Do(req)
	if err != nil {
		err = unwrapURLError(err)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("connection closed without an answer (%w)", err)
		}
		return scan.Result{}, err
	}
	defer resp.Body.Close()
	answer, err := readLimited(resp, maxAnswer)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
			err = fmt.Errorf("%w after %v (%w)", ErrTimeout, j.s.opts.Timeout, err)
		}
		return scan.Result{}, fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return scan.Result{}, httpError(resp.StatusCode, answer)
	}
	return mapAnswer(answer, policy{tagAt: j.s.opts.TagAt, rejectAt: j.s.opts.RejectAt})
}

// unwrapURLError drops net/http's "Post URL:" wrapping: the error message
// names the URL already.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// httpError explains a status other than 200; rspamd says why in
// {"error": "..."}.
func httpError(code int, body []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return fmt.Errorf("answered HTTP %d: %s", code, truncate(e.Error))
	}
	return fmt.Errorf("answered HTTP %d %q", code, truncate(strings.TrimSpace(string(body))))
}

// readLimited reads an answer of at most limit bytes.
func readLimited(resp *http.Response, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: answer longer than %d bytes", ErrAnswer, limit)
	}
	return b, nil
}

// setEnvelope writes the envelope as rspamd's request headers. Values are
// cleaned of control characters (an HTTP header cannot carry them, and
// net/http would refuse the whole request).
func setEnvelope(h http.Header, env *scan.Envelope) {
	if env == nil {
		return
	}
	set := func(name, v string) {
		if v = clean(v); v != "" {
			h.Add(name, v)
		}
	}
	set("IP", env.ClientAddr)
	set("Helo", env.Helo)
	if name := clean(env.ClientName); strings.HasPrefix(name, "[") {
		// Sendmail names a client without reverse DNS by its address in
		// brackets; rspamd's word for that is "unknown" (Postfix's too).
		h.Set("Hostname", "unknown")
	} else {
		// "" leaves the lookup to rspamd.
		set("Hostname", name)
	}
	switch {
	case env.From != "":
		set("From", env.From)
	case len(env.Rcpts) > 0:
		// A transaction with recipients had a MAIL FROM: this one was the
		// null sender (a bounce), which rspamd reads as "<>".
		h.Set("From", "<>")
	}
	for _, r := range env.Rcpts {
		set("Rcpt", r)
	}
	set("Queue-Id", env.QueueID)
	set("User", env.AuthUser)
	set("MTA-Name", env.MTAName)
}

// clean drops control characters and surrounding space.
func clean(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		s = strings.Map(func(r rune) rune {
			if r < 0x20 || r == 0x7f {
				return -1
			}
			return r
		}, s)
	}
	return strings.TrimSpace(s)
}
