// Package clamd scans messages with ClamAV's daemon. Each message is streamed
// to clamd with the INSTREAM command (clamd(8), "COMMANDS"; the chunk framing
// is a 4-byte big-endian length before each chunk and a zero length at the
// end) while it arrives from the MTA, so that the answer is ready when the
// client sends the final ".".
//
// The protocol work is done by github.com/baruwa-enterprise/clamd. This
// package adds what a mail filter needs around it: back-pressure without a
// copy of the message, a deadline on every wait, failover between several
// clamd addresses, and errors that say what went wrong.
//
// Several addresses form a failover pool, not a load balancer: every message
// goes to the first address that is not marked down. An address whose
// connection fails is marked down for Options.RetryDown and the next one is
// tried; that is only possible before clamd has taken any byte of the
// message. Once bytes went to a clamd, any failure is a scan.Failed result:
// a message is never let through unscanned because a server failed halfway.
package clamd

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"slices"
	"strings"
	"time"

	lib "github.com/baruwa-enterprise/clamd"

	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/scan/failover"
	"github.com/nobounce/nobounce/sockaddr"
)

// Defaults for the zero values of Options.
const (
	DefaultTimeout        = 60 * time.Second
	DefaultConnectTimeout = 5 * time.Second
	DefaultRetryDown      = 30 * time.Second
)

// ErrSizeLimit is in the error of a scan that clamd refused because the
// message is larger than its StreamMaxLength. Callers may apply their
// over-size policy to it (errors.Is).
var ErrSizeLimit = errors.New("size limit exceeded (clamd StreamMaxLength)")

// ErrTimeout is in the error of a scan that did not finish within
// Options.Timeout.
var ErrTimeout = errors.New("scan timed out")

// errAborted is the cause of a job cancelled by Abort.
var errAborted = errors.New("scan aborted")

// Options configure a Scanner.
type Options struct {
	// Addrs are the clamd sockets, in order of preference. At least one.
	Addrs []sockaddr.Addr
	// Timeout bounds the wait for clamd's answer after the end of the
	// message, and each read and write on the connection while the message
	// streams (so a stalled clamd is caught, while a slow SMTP client is
	// not). Default 60s.
	Timeout time.Duration
	// ConnectTimeout bounds each connection attempt and each PING.
	// Default 5s.
	ConnectTimeout time.Duration
	// RetryDown is how long an address whose connection failed is skipped
	// (tried only when every address is down). Default 30s.
	RetryDown time.Duration
	// Logger receives state changes of the addresses. Default: discard.
	Logger *slog.Logger
}

// Scanner is a scan.Scanner backed by one or more clamd. It is safe for
// concurrent use.
type Scanner struct {
	opts    Options
	log     *slog.Logger
	servers []*server
	pool    *failover.Pool // their health, by index
}

// server is one clamd address.
type server struct {
	i    int // index in the pool
	addr sockaddr.Addr
	name string // addr.String(), used in results and logs
}

// Health is what Ping learnt about one clamd address.
type Health = scan.Health

var _ scan.Scanner = (*Scanner)(nil)

// New returns a Scanner for o.Addrs. Nothing is dialled yet; a unix socket
// that does not exist yet is not an error here (clamd may start later).
func New(o Options) (*Scanner, error) {
	if len(o.Addrs) == 0 {
		return nil, errors.New("clamd: no address")
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
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Scanner{opts: o, log: o.Logger.With("scanner", "clamd")}
	for _, a := range o.Addrs {
		if (a.Network != "unix" && a.Network != "tcp") || a.Address == "" {
			return nil, fmt.Errorf("clamd: address %q: want a unix socket path or a TCP host:port", a)
		}
		s.servers = append(s.servers, &server{i: len(s.servers), addr: a, name: a.String()})
	}
	s.opts.Addrs = slices.Clone(o.Addrs)
	names := make([]string, len(s.servers))
	for i, sv := range s.servers {
		names[i] = sv.name
	}
	s.pool = failover.New("clamd", names, s.opts.RetryDown, s.log)
	return s, nil
}

// Name is "clamd".
func (s *Scanner) Name() string { return "clamd" }

// client returns a library client for a. lib.NewClient checks that a unix
// socket exists, so it is made per use: clamd may come up after us.
func (s *Scanner) client(a sockaddr.Addr, cmdTimeout time.Duration) (*lib.Client, error) {
	c, err := lib.NewClient(a.Network, a.Address)
	if err != nil {
		return nil, &connectError{err}
	}
	c.SetConnTimeout(s.opts.ConnectTimeout)
	c.SetCmdTimeout(cmdTimeout)
	c.SetConnRetries(0)
	return c, nil
}

// connectError marks a failure to reach clamd at all: nothing was sent.
type connectError struct{ err error }

func (e *connectError) Error() string { return e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// isConnectError tells whether err means that no connection was made.
func isConnectError(err error) bool {
	var ce *connectError
	if errors.As(err, &ce) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// order returns the servers to try for a new scan (see failover.Pool.Order).
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

// Ping sends PING to every address at once and returns their health in
// configured order. It updates the state used for failover. Each check is
// bounded by ConnectTimeout for the connection and again for the answer (the
// library honours ctx only while connecting).
func (s *Scanner) Ping(ctx context.Context) []Health {
	return s.pool.Ping(ctx, func(ctx context.Context, i int) error {
		c, err := s.client(s.servers[i].addr, s.opts.ConnectTimeout)
		if err != nil {
			return err
		}
		pong, err := c.Ping(ctx)
		if err == nil && !pong {
			err = errors.New("no PONG in the answer to PING")
		}
		return err
	})
}

// probeSizeLimit asks clamd, on a new connection, whether a stream of n bytes
// is over its INSTREAM limit. It is used when clamd dropped a connection in
// the middle of a stream: clamd then has written "INSTREAM size limit
// exceeded. ERROR" on it, but the library has closed the connection on the
// failed write without reading that line. clamd checks every chunk's length
// against what is left of StreamMaxLength before it reads the chunk, so one
// chunk header announcing n bytes, with no data, gets the same line back at
// once; after the header we close our side, so any other clamd ends the
// connection at once too. It returns clamd's line and whether it is the size
// limit.
func (s *Scanner) probeSizeLimit(ctx context.Context, a sockaddr.Addr, n int64) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.ConnectTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, a.Network, a.Address)
	if err != nil {
		return "", false
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	msg := make([]byte, 0, 16)
	msg = append(msg, "nINSTREAM\n"...)
	msg = binary.BigEndian.AppendUint32(msg, uint32(min(n, math.MaxUint32)))
	if _, err := conn.Write(msg); err != nil {
		return "", false
	}
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	line, _ := bufio.NewReader(io.LimitReader(conn, 512)).ReadString('\n')
	line = strings.TrimSpace(line)
	return line, strings.Contains(line, "size limit exceeded")
}
