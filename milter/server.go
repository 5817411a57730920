package milter

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/user"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/nobounce/nobounce/sockaddr"
)

// Options are the server's fixed limits; they do not change on reload.
type Options struct {
	ReadTimeout  time.Duration // longest wait for the MTA's next command
	WriteTimeout time.Duration // longest wait to send one reply
	MaxSessions  int           // more concurrent MTA connections are refused with 421
	Logger       *slog.Logger
	Metrics      *Metrics // nil: count nothing
}

// Server accepts MTA connections and runs one Session on each.
type Server struct {
	opts     Options
	log      *slog.Logger
	settings atomic.Pointer[Settings]
	milter   gomilter.Server
	metrics  *Metrics

	mu       sync.Mutex
	conns    map[*deadlineConn]struct{}
	pending  *Session // handed from Accept to NewMilter, same goroutine
	nextID   uint64
	draining atomic.Bool
	done     chan struct{} // closed when the last connection ends while draining
	lns      []net.Listener
}

// NewServer makes a server that handles messages with st until SetSettings.
func NewServer(o Options, st *Settings) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 10 * time.Minute
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 30 * time.Second
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 200
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	s := &Server{opts: o, log: o.Logger, metrics: o.Metrics, conns: map[*deadlineConn]struct{}{}, done: make(chan struct{})}
	s.settings.Store(st)
	s.milter = gomilter.Server{
		NewMilter: s.newMilter,
		// SMFIF_ADDHDRS | SMFIF_CHGHDRS: add our headers, remove forged copies.
		Actions: gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptAddRcpt | gomilter.OptRemoveRcpt | gomilter.OptChangeFrom, // and SMFIF_ADDRCPT | SMFIF_DELRCPT | SMFIF_CHGFROM: BATV (recipient.go)
	}
	return s
}

// Settings returns the settings new messages start with.
func (s *Server) Settings() *Settings { return s.settings.Load() }

// SetSettings makes st the settings of every message that starts from now on;
// messages under way keep theirs.
func (s *Server) SetSettings(st *Settings) { s.settings.Store(st) }

// Sessions is the number of MTA connections open now.
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Serve accepts connections on ln until Shutdown. It returns nil after a
// Shutdown, else the listener's error.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.lns = append(s.lns, ln)
	s.mu.Unlock()
	err := s.milter.Serve(&listener{Listener: ln, srv: s})
	if s.draining.Load() {
		return nil
	}
	return err
}

// newMilter is go-milter's factory. go-milter calls it in its accept loop
// right after Accept returned, which left the new Session in pending. It
// would also call it after a bare accept/reject/tempfail/discard response,
// which this package never sends (see the package comment); should that
// ever happen the fresh Session still works, without the connection's data.
func (s *Server) newMilter() gomilter.Milter {
	s.mu.Lock()
	sess := s.pending
	s.pending = nil
	s.mu.Unlock()
	if sess == nil {
		s.log.Error("go-milter replaced a session backend; connection data lost")
		sess = s.newSession(false)
	}
	return sess
}

func (s *Server) newSession(refuse bool) *Session {
	s.nextID++
	sess := &Session{srv: s, id: s.nextID, refuse: refuse, connMacros: map[string]string{}}
	sess.log = s.log.With("conn", sess.id)
	return sess
}

// listener hands each accepted connection a Session and deadlines.
type listener struct {
	net.Listener
	srv *Server
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	s := l.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	refuse := len(s.conns) >= s.opts.MaxSessions
	sess := s.newSession(refuse)
	if refuse {
		sess.log.Warn("session limit reached: refusing the SMTP client with 421", "max_sessions", s.opts.MaxSessions)
		s.metrics.refused.Inc()
	}
	dc := &deadlineConn{Conn: c, srv: s, sess: sess}
	dc.r = bufio.NewReaderSize(c, 4096)
	dc.w = bufio.NewWriterSize(deadlineWriter{dc}, 4096)
	s.conns[dc] = struct{}{}
	s.pending = sess
	return dc, nil
}

// deadlineConn puts a deadline on every read and write, and ends the
// connection between messages once the server is draining.
//
// It also buffers both ways. The MTA sends a macro packet and its command
// together, and go-milter reads each packet in two reads: one read from the
// socket serves them all. go-milter writes each reply packet on its own:
// the replies wait in w until the session next reads (an answer is always
// followed by a read of the MTA's next command), so the two headers and the
// "continue" of an end of message leave in one write.
type deadlineConn struct {
	net.Conn
	srv    *Server
	sess   *Session
	closed sync.Once
	r      *bufio.Reader // used by the session's goroutine only
	wmu    sync.Mutex    // w: the session's goroutine, and Close
	w      *bufio.Writer
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	if err := c.flush(); err != nil {
		return 0, err
	}
	if c.srv.draining.Load() && !c.sess.inMessage() {
		return 0, io.EOF
	}
	if c.r.Buffered() == 0 {
		if err := c.Conn.SetReadDeadline(time.Now().Add(c.srv.opts.ReadTimeout)); err != nil {
			return 0, err
		}
	}
	n, err := c.r.Read(p)
	if err != nil && c.srv.draining.Load() && !c.sess.inMessage() {
		// Shutdown woke this reader on purpose: end quietly.
		return n, io.EOF
	}
	return n, err
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.w.Write(p)
}

// flush sends the replies written since the last read.
func (c *deadlineConn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.w.Buffered() == 0 {
		return nil
	}
	return c.w.Flush()
}

// deadlineWriter is what w flushes into: the socket, with a deadline.
type deadlineWriter struct{ c *deadlineConn }

func (d deadlineWriter) Write(p []byte) (int, error) {
	if err := d.c.Conn.SetWriteDeadline(time.Now().Add(d.c.srv.opts.WriteTimeout)); err != nil {
		return 0, err
	}
	return d.c.Conn.Write(p)
}

func (c *deadlineConn) Close() error {
	var err error
	c.closed.Do(func() {
		c.flush() // a reply written just before go-milter hung up
		err = c.Conn.Close()
		c.sess.close()
		s := c.srv
		s.mu.Lock()
		delete(s.conns, c)
		if s.draining.Load() && len(s.conns) == 0 {
			close(s.done)
		}
		s.mu.Unlock()
	})
	return err
}

// Shutdown stops accepting, lets every message under way finish, closes
// connections that wait between messages (the MTA then applies its milter
// default action to later messages of that SMTP session, which is tempfail
// in Postfix and Sendmail with F=T), and after ctx is done closes the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.draining.Swap(true) {
		return errors.New("milter: already shut down")
	}
	s.mu.Lock()
	for _, ln := range s.lns {
		ln.Close()
	}
	var idle []*deadlineConn
	for c := range s.conns {
		if !c.sess.inMessage() {
			idle = append(idle, c)
		}
	}
	if len(s.conns) == 0 {
		close(s.done)
	}
	s.mu.Unlock()
	// Wake readers blocked waiting for a command; Read then sees draining.
	for _, c := range idle {
		c.Conn.SetReadDeadline(time.Now())
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	n := len(s.conns)
	all := make([]*deadlineConn, 0, n)
	for c := range s.conns {
		all = append(all, c)
	}
	s.mu.Unlock()
	for _, c := range all {
		c.Close()
	}
	return fmt.Errorf("milter: drain deadline passed, %d connection(s) closed mid-message: %w", n, ctx.Err())
}

// Listen opens the milter socket. A unix socket gets mode and group (never
// world-writable unless mode says so); a stale socket file left by a dead
// instance is replaced, a live one is an error.
func Listen(a sockaddr.Addr, mode os.FileMode, group string) (net.Listener, error) {
	if a.Network != "unix" {
		ln, err := net.Listen(a.Network, a.Address)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", a, err)
		}
		return ln, nil
	}
	if fi, err := os.Lstat(a.Address); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("listen %s: %s exists and is not a socket", a, a.Address)
		}
		if c, err := net.DialTimeout("unix", a.Address, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("listen %s: another process is serving this socket", a)
		}
		if err := os.Remove(a.Address); err != nil {
			return nil, fmt.Errorf("listen %s: remove stale socket: %w", a, err)
		}
	}
	ln, err := net.Listen("unix", a.Address)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", a, err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(true)
	if err := os.Chmod(a.Address, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("listen %s: chmod %o: %w", a, mode, err)
	}
	if group != "" {
		gid, err := lookupGroup(group)
		if err == nil {
			err = os.Chown(a.Address, -1, gid)
		}
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("listen %s: group %s: %w", a, group, err)
		}
	}
	return ln, nil
}

func lookupGroup(g string) (int, error) {
	if id, err := strconv.Atoi(g); err == nil {
		return id, nil
	}
	gr, err := user.LookupGroup(g)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(gr.Gid)
}
