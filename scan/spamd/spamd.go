// Package spamd asks SpamAssassin's daemon about each message, with the
// SPAMC/1.5 protocol (spamd(1); the request and answer are described in
// protocol.go), and turns its score into advice under nobounce's policy:
// reject at Options.RejectAt (default 10), tag at Options.TagAt (default
// spamd's own required score, usually 5), otherwise nothing.
//
// SPAMC sends the message's length before the message, so spamd gets it
// only once it is complete: the scanner reads it from the scan.Spool that
// fills while DATA arrives (scan.SpoolScanner), and the whole exchange with
// spamd happens at the end of the message. spamd answers one request per
// connection and then closes it, so every message gets a new connection;
// on loopback that costs well under a millisecond beside spamd's own
// hundreds.
//
// Several addresses form a failover pool, like scan/clamd's: every message
// goes to the first address not marked down; one that cannot be connected
// to is marked down for Options.RetryDown and the next is tried. Since the
// message stays in the spool and a check changes nothing, a spamd that
// fails after taking the connection (closes it, answers an error or
// garbage) hands the message to the next address too, without being
// marked down; a timeout does not, as the time is spent. Every address is
// tried at most once per message, all within Options.Timeout.
//
// In front of the message spamd gets the Received header field the MTA
// will add (ReceivedHeader): SPAMC has no other way to tell spamd the
// SMTP client's address, HELO and reverse name.
//
// A message over Options.MaxSize (default 1 MiB) is not sent at all: the
// result is Clean with Skipped "too large". spamd is slow on big messages
// and spam is small; the virus scan of such a message still runs.
package spamd

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/scan/failover"
	"github.com/nobounce/nobounce/sockaddr"
)

// Defaults for the zero values of Options.
const (
	DefaultTimeout        = 60 * time.Second
	DefaultConnectTimeout = 5 * time.Second
	DefaultRetryDown      = 30 * time.Second
	DefaultMaxSize        = 1 << 20
	DefaultRejectAt       = 10.0
)

// SkippedTooLarge is Result.Skipped for a message over Options.MaxSize.
const SkippedTooLarge = "too large"

// ErrTimeout is in the error of a scan that did not finish within
// Options.Timeout.
var ErrTimeout = errors.New("scan timed out")

// errAborted is the cause of a job cancelled by Abort.
var errAborted = errors.New("scan aborted")

// Options configure a Scanner.
type Options struct {
	// Addrs are the spamd sockets ("inet:127.0.0.1:783", "unix:/path"), in
	// order of preference. At least one.
	Addrs []sockaddr.Addr
	// Timeout bounds the scan at the end of the message: from then until
	// spamd's answer, connection attempts and failover included.
	// Default 60s.
	Timeout time.Duration
	// ConnectTimeout bounds each connection attempt and each PING.
	// Default 5s.
	ConnectTimeout time.Duration
	// RetryDown is how long an address whose connection failed is skipped
	// (tried only when every address is down). Default 30s.
	RetryDown time.Duration
	// MaxSize is the largest message (wire form, bytes) sent to spamd;
	// a larger one is not spam-scanned (Skipped "too large"). Default 1 MiB.
	MaxSize int64
	// User is sent as SPAMC's User: header, naming whose preferences spamd
	// applies; "" sends none (spamd's default user).
	User string
	// TagAt is the score from which the advice is to tag; 0 means spamd's
	// own verdict (its required score, 5 by default). +Inf never tags.
	TagAt float64
	// RejectAt is the score from which the advice is to reject; 0 means
	// DefaultRejectAt (10). +Inf never rejects.
	RejectAt float64
	// NoReceived leaves out the Received header field the scanner
	// otherwise puts in front of the message for spamd (ReceivedHeader),
	// so that spamd gets the message exactly as the MTA passed it.
	NoReceived bool
	// Logger receives state changes of the addresses. Default: discard.
	Logger *slog.Logger
}

// Scanner is a scan.SpoolScanner backed by one or more spamd. It is safe
// for concurrent use.
type Scanner struct {
	opts    Options
	log     *slog.Logger
	servers []*server
	pool    *failover.Pool // their health, by index
}

// server is one spamd address.
type server struct {
	i    int // index in the pool
	addr sockaddr.Addr
	name string // addr.String(), used in results and logs
}

// Health is what Ping learnt about one spamd address.
type Health = scan.Health

var (
	_ scan.SpoolScanner = (*Scanner)(nil)
	_ scan.Pinger       = (*Scanner)(nil)
)

// New returns a Scanner for o.Addrs. Nothing is dialled yet.
func New(o Options) (*Scanner, error) {
	if len(o.Addrs) == 0 {
		return nil, errors.New("spamd: no address")
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
	if o.RejectAt == 0 {
		o.RejectAt = DefaultRejectAt
	}
	if math.IsNaN(o.TagAt) || math.IsNaN(o.RejectAt) {
		return nil, errors.New("spamd: a score threshold is NaN")
	}
	if o.User != "" && !validUser(o.User) {
		return nil, fmt.Errorf("spamd: user %q: want printable characters without leading or trailing space", o.User)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Scanner{opts: o, log: o.Logger.With("scanner", "spamd")}
	names := make([]string, 0, len(o.Addrs))
	for _, a := range o.Addrs {
		if (a.Network != "unix" && a.Network != "tcp") || a.Address == "" {
			return nil, fmt.Errorf("spamd: address %q: want a unix socket path or a TCP host:port", a)
		}
		s.servers = append(s.servers, &server{i: len(s.servers), addr: a, name: a.String()})
		names = append(names, a.String())
	}
	s.opts.Addrs = slices.Clone(o.Addrs)
	s.pool = failover.New("spamd", names, s.opts.RetryDown, s.log)
	return s, nil
}

// Name is "spamd".
func (s *Scanner) Name() string { return "spamd" }

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

// dial connects to sv within ConnectTimeout and ctx.
func (s *Scanner) dial(ctx context.Context, sv *server) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ConnectTimeout)
	defer cancel()
	return (&net.Dialer{}).DialContext(ctx, sv.addr.Network, sv.addr.Address)
}

// Ping sends PING to every address at once and returns their health in
// configured order. It updates the state used for failover. Each check is
// bounded by ConnectTimeout for the connection and again for the answer.
func (s *Scanner) Ping(ctx context.Context) []Health {
	return s.pool.Ping(ctx, func(ctx context.Context, i int) error {
		conn, err := s.dial(ctx, s.servers[i])
		if err != nil {
			return err
		}
		defer conn.Close()
		dl := time.Now().Add(s.opts.ConnectTimeout)
		if d, ok := ctx.Deadline(); ok && d.Before(dl) {
			dl = d
		}
		conn.SetDeadline(dl)
		stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
		defer stop()
		if _, err := io.WriteString(conn, "PING "+protoVersion+"\r\n\r\n"); err != nil {
			return err
		}
		line, err := readLine(bufio.NewReaderSize(io.LimitReader(conn, maxLine), 512))
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return errors.New("connection closed without an answer to PING")
			}
			return err
		}
		f := strings.Fields(line)
		if len(f) < 3 || !strings.HasPrefix(f[0], "SPAMD/") || f[1] != "0" || f[2] != "PONG" {
			return fmt.Errorf("answered %q to PING", truncate(line))
		}
		return nil
	})
}

// advise applies the policy to spamd's answer.
func (s *Scanner) advise(rp *reply) (scan.Advice, string) {
	score := rp.Score
	tag, tagAt := rp.IsSpam, rp.Required
	if s.opts.TagAt != 0 {
		tagAt = s.opts.TagAt
		tag = score >= tagAt
	}
	switch {
	case score >= s.opts.RejectAt:
		return scan.AdviseReject, "score " + fmtScore(score) + " >= " + fmtScore(s.opts.RejectAt)
	case tag:
		return scan.AdviseTag, "score " + fmtScore(score) + " >= " + fmtScore(tagAt)
	}
	if score >= tagAt {
		// Only with TagAt 0: spamd's own verdict, which rounds the other way.
		return scan.AdviseNone, "score " + fmtScore(score) + ", not spam by spamd's verdict (required " + fmtScore(tagAt) + ")"
	}
	return scan.AdviseNone, "score " + fmtScore(score) + " < " + fmtScore(tagAt)
}

// fmtScore writes a score the short way: "15.3", "10", "-0.5".
func fmtScore(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}
