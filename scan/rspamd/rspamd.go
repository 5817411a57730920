// Package rspamd asks rspamd about each message through its HTTP API
// (POST /checkv2 to the normal worker, https://rspamd.com/doc/developers/protocol.html)
// and maps its answer to advice:
//
//	reject                        → reject (550 5.7.1, rspamd's smtp_message as the text when it gives one)
//	soft reject                   → tempfail (451 4.7.1)
//	rewrite subject, add header   → tag (NewSubject gives rspamd's subject)
//	greylist, no action           → nothing
//	discard, quarantine           → reject: nobounce never drops mail silently
//
// "greylist" is accepted as rspamd's own milter accepts it: it names the
// score band in which rspamd's greylist module defers mail, and when that
// module does defer, the action is "soft reject". Options.RejectAt and
// Options.TagAt, when set, replace rspamd's score thresholds.
//
// The envelope goes in rspamd's request headers: IP, Helo, Hostname,
// From, one Rcpt per recipient, Queue-Id, User when the sender
// authenticated, MTA-Name. The message is the request body, read from the
// scan.Spool that filled while DATA arrived (scan.SpoolScanner): the whole
// exchange happens at the end of the message.
//
// Several URLs form a failover pool, like scan/spamd's: a URL that cannot
// be connected to is marked down for Options.RetryDown and the next is
// tried; one that fails after taking the request (an HTTP error, garbage,
// a closed connection) passes the message on without being marked down; a
// timeout does not. rspamd 3.4 closes the connection after every answer
// ("Connection: close"); the client would reuse one if rspamd kept it.
package rspamd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/scan/failover"
)

// Defaults for the zero values of Options.
const (
	DefaultTimeout        = 60 * time.Second
	DefaultConnectTimeout = 5 * time.Second
	DefaultRetryDown      = 30 * time.Second
	// DefaultMaxSize is larger than spamd's: rspamd is quick on big
	// messages and limits its own work inside them (its max_message is
	// 50 MiB), but a limit keeps the time at the end of the message short.
	DefaultMaxSize = 10 << 20
)

// SkippedTooLarge is Result.Skipped for a message over Options.MaxSize.
const SkippedTooLarge = "too large"

// ErrTimeout is in the error of a scan that did not finish within
// Options.Timeout.
var ErrTimeout = errors.New("scan timed out")

// errAborted is the cause of a job cancelled by Abort.
var errAborted = errors.New("scan aborted")

// maxAnswer bounds rspamd's answer (symbols with their options; a message
// with thousands of URLs makes a long one).
const maxAnswer = 8 << 20

// Options configure a Scanner.
type Options struct {
	// URLs of rspamd's normal worker ("http://127.0.0.1:11333"), in order
	// of preference. At least one. /checkv2 and /ping are appended to the
	// path.
	URLs []string
	// Password, when not "", is sent in the Password header (the
	// controller's, or a proxy's that asks for one).
	Password string
	// Timeout bounds the scan at the end of the message: from then until
	// rspamd's answer, connection attempts and failover included.
	// Default 60s.
	Timeout time.Duration
	// ConnectTimeout bounds each connection attempt and each /ping.
	// Default 5s.
	ConnectTimeout time.Duration
	// RetryDown is how long a URL whose connection failed is skipped
	// (tried only when every URL is down). Default 30s.
	RetryDown time.Duration
	// MaxSize is the largest message (wire form, bytes) sent to rspamd; a
	// larger one is not spam-scanned (Skipped "too large"). Default 10 MiB.
	MaxSize int64
	// TagAt, when > 0, is the score from which the advice is to tag, and
	// below which it is nothing, instead of rspamd's "add header" and
	// "rewrite subject" thresholds. 0: rspamd's action decides.
	TagAt float64
	// RejectAt, when > 0, is the score from which the advice is to reject
	// instead of rspamd's "reject" threshold (below it, a message rspamd
	// would reject is tagged). 0: rspamd's action decides. Neither
	// threshold overrides an action a pre-filter forced (GTUBE, settings,
	// force_actions), nor "soft reject".
	RejectAt float64
	// Logger receives state changes of the URLs. Default: discard.
	Logger *slog.Logger
}

// Scanner is a scan.SpoolScanner backed by one or more rspamd. It is safe
// for concurrent use.
type Scanner struct {
	opts    Options
	log     *slog.Logger
	client  *http.Client
	servers []*server
	pool    *failover.Pool // their health, by index
}

// server is one rspamd URL.
type server struct {
	i     int    // index in the pool
	name  string // the URL as configured
	check string // .../checkv2
	ping  string // .../ping
}

// Health is what Ping learnt about one rspamd URL.
type Health = scan.Health

var (
	_ scan.SpoolScanner = (*Scanner)(nil)
	_ scan.Pinger       = (*Scanner)(nil)
)

// New returns a Scanner for o.URLs. Nothing is dialled yet.
func New(o Options) (*Scanner, error) {
	if len(o.URLs) == 0 {
		return nil, errors.New("rspamd: no URL")
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.RetryDown <= 0 {
		o.RetryDown = DefaultRetryDown
	}
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	if math.IsNaN(o.TagAt) || math.IsNaN(o.RejectAt) || o.TagAt < 0 || o.RejectAt < 0 {
		return nil, errors.New("rspamd: a score threshold is negative or NaN (0 leaves it to rspamd)")
	}
	if strings.ContainsAny(o.Password, "\r\n\x00") {
		return nil, errors.New("rspamd: password contains a line break or NUL")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Scanner{opts: o, log: o.Logger.With("scanner", "rspamd")}
	for _, raw := range o.URLs {
		u, err := ParseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("rspamd: %w", err)
		}
		base := strings.TrimSuffix(u.String(), "/")
		s.servers = append(s.servers, &server{i: len(s.servers), name: raw, check: base + "/checkv2", ping: base + "/ping"})
	}
	s.opts.URLs = slices.Clone(o.URLs)
	s.pool = failover.New("rspamd", s.opts.URLs, s.opts.RetryDown, s.log)
	dialer := &net.Dialer{Timeout: o.ConnectTimeout}
	s.client = &http.Client{
		Transport: &http.Transport{
			Proxy:                 nil, // never an HTTP proxy from the environment
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   o.ConnectTimeout,
			MaxIdleConnsPerHost:   16,
			IdleConnTimeout:       30 * time.Second,
			DisableCompression:    true,
			ResponseHeaderTimeout: 0, // the request's context bounds it
		},
		// An answer is rspamd's or an error: a redirect is not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return s, nil
}

// ParseURL checks an rspamd URL: http or https, a host, no query,
// fragment or user info.
func ParseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("URL %q: %v", raw, err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("URL %q: want http:// or https://", raw)
	case u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("URL %q: no host", raw)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, fmt.Errorf("URL %q: no query or fragment, please (/checkv2 is appended to the path)", raw)
	case u.User != nil:
		return nil, fmt.Errorf("URL %q: no user info, please (use the password option)", raw)
	}
	return u, nil
}

// Name is "rspamd".
func (s *Scanner) Name() string { return "rspamd" }

// order returns the servers to try for a new message (see
// failover.Pool.Order).
func (s *Scanner) order() []*server {
	idx := s.pool.Order()
	out := make([]*server, len(idx))
	for k, i := range idx {
		out[k] = s.servers[i]
	}
	return out
}

func (s *Scanner) markDown(sv *server, err error) { s.pool.Down(sv.i, err) }
func (s *Scanner) markUp(sv *server)              { s.pool.Up(sv.i) }

// isDialError tells whether err means that no connection was made.
func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// Ping asks every URL's /ping at once and returns their health in
// configured order. It updates the state used for failover. Each check is
// bounded by twice ConnectTimeout (connection, then answer).
func (s *Scanner) Ping(ctx context.Context) []Health {
	return s.pool.Ping(ctx, func(ctx context.Context, i int) error {
		pctx, cancel := context.WithTimeout(ctx, 2*s.opts.ConnectTimeout)
		defer cancel()
		req, err := http.NewRequestWithContext(pctx, http.MethodGet, s.servers[i].ping, nil)
		if err != nil {
			return err
		}
		s.setPassword(req)
		resp, err := s.client.Do(req)
		if err != nil {
			return unwrapURLError(err)
		}
		defer resp.Body.Close()
		body, err := readLimited(resp, 512)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != "pong" {
			return fmt.Errorf("answered HTTP %d %q to /ping", resp.StatusCode, truncate(string(body)))
		}
		return nil
	})
}

func (s *Scanner) setPassword(req *http.Request) {
	if s.opts.Password != "" {
		req.Header.Set("Password", s.opts.Password)
	}
}
