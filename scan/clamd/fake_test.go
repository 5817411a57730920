package clamd

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/nobounce/nobounce/sockaddr"
)

// behaviour is what the fake clamd does with each connection. The zero value
// reads the stream and answers "stream: OK".
type behaviour struct {
	reply      string // answer after the stream, without the "\n"; "" means "stream: OK"
	noNewline  bool   // send reply without its "\n", then close
	noRead     bool   // accept, then never read: the client's writes stall
	noReply    bool   // read the whole stream, then never answer nor close
	silent     bool   // read the whole stream, then close without an answer
	closeAfter int64  // close without a word when a chunk would take the stream past this many bytes
	limit      int64  // StreamMaxLength: answer "INSTREAM size limit exceeded. ERROR" and close, as clamd does
	record     bool   // keep each stream's bytes (tests); else count them (benchmarks)
}

// stream is what the fake received on one INSTREAM connection.
type stream struct {
	data     []byte // when recording
	size     int64
	chunks   int
	maxChunk int
	complete bool // the zero-length chunk came
}

// fakeClamd speaks enough of clamd's protocol (PING, INSTREAM with "n"
// prefix) to produce on demand the faults a real clamd cannot. It listens on
// a unix socket in a temporary directory and on 127.0.0.1:0.
type fakeClamd struct {
	t    testing.TB
	b    behaviour
	unix sockaddr.Addr
	tcp  sockaddr.Addr

	accepted chan struct{} // one token per accepted connection (best effort)
	quit     chan struct{}

	mu      sync.Mutex
	lns     []net.Listener
	conns   map[net.Conn]bool
	streams []*stream
	dead    bool
	wg      sync.WaitGroup
}

func newFake(t testing.TB, b behaviour) *fakeClamd {
	t.Helper()
	return newFakeAt(t, b, filepath.Join(t.TempDir(), "clamd.sock"))
}

// newFakeAt is newFake with the unix socket at path.
func newFakeAt(t testing.TB, b behaviour, path string) *fakeClamd {
	t.Helper()
	f := &fakeClamd{
		t:        t,
		b:        b,
		accepted: make(chan struct{}, 1024),
		quit:     make(chan struct{}),
		conns:    map[net.Conn]bool{},
	}
	lu, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	lt, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		lu.Close()
		t.Fatal(err)
	}
	f.unix = sockaddr.Addr{Network: "unix", Address: path}
	f.tcp = sockaddr.Addr{Network: "tcp", Address: lt.Addr().String()}
	f.lns = []net.Listener{lu, lt}
	for _, l := range f.lns {
		f.wg.Go(func() { f.accept(l) })
	}
	t.Cleanup(f.close)
	return f
}

// addr returns the unix or the TCP address.
func (f *fakeClamd) addr(network string) sockaddr.Addr {
	if network == "unix" {
		return f.unix
	}
	return f.tcp
}

// kill stops listening and drops every connection at once, like a clamd
// that died. It does not wait for the handlers.
func (f *fakeClamd) kill() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead {
		return
	}
	f.dead = true
	close(f.quit)
	for _, l := range f.lns {
		l.Close()
	}
	for c := range f.conns {
		c.Close()
	}
}

func (f *fakeClamd) close() {
	f.kill()
	f.wg.Wait()
}

// received returns the streams received so far.
func (f *fakeClamd) received() []*stream {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*stream(nil), f.streams...)
}

func (f *fakeClamd) accept(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		if f.dead {
			f.mu.Unlock()
			c.Close()
			return
		}
		f.conns[c] = true
		f.wg.Add(1)
		f.mu.Unlock()
		select {
		case f.accepted <- struct{}{}:
		default:
		}
		go func() {
			defer f.wg.Done()
			f.serve(c)
			c.Close()
			f.mu.Lock()
			delete(f.conns, c)
			f.mu.Unlock()
		}()
	}
}

func (f *fakeClamd) serve(c net.Conn) {
	if f.b.noRead {
		<-f.quit
		return
	}
	br := bufio.NewReaderSize(c, 64<<10)
	cmd, err := br.ReadString('\n')
	if err != nil {
		return
	}
	switch cmd {
	case "nPING\n":
		io.WriteString(c, "PONG\n")
		return
	case "nINSTREAM\n":
	default:
		io.WriteString(c, "UNKNOWN COMMAND\n")
		return
	}
	s := &stream{}
	f.mu.Lock()
	f.streams = append(f.streams, s)
	f.mu.Unlock()
	var dst bytes.Buffer
	var h [4]byte
	for {
		if _, err := io.ReadFull(br, h[:]); err != nil {
			return
		}
		n := int64(binary.BigEndian.Uint32(h[:]))
		if n == 0 {
			break
		}
		if f.b.limit > 0 && s.size+n > f.b.limit {
			io.WriteString(c, "INSTREAM size limit exceeded. ERROR\n")
			return
		}
		if f.b.closeAfter > 0 && s.size+n > f.b.closeAfter {
			return
		}
		var w io.Writer = io.Discard
		if f.b.record {
			w = &dst
		}
		if _, err := io.CopyN(w, br, n); err != nil {
			return
		}
		f.mu.Lock()
		s.size += n
		s.chunks++
		s.maxChunk = max(s.maxChunk, int(n))
		f.mu.Unlock()
	}
	f.mu.Lock()
	s.complete = true
	s.data = dst.Bytes()
	f.mu.Unlock()
	switch {
	case f.b.noReply:
		io.Copy(io.Discard, c) // until the client gives up
	case f.b.silent:
	default:
		reply := f.b.reply
		if reply == "" {
			reply = "stream: OK"
		}
		if !f.b.noNewline {
			reply += "\n"
		}
		io.WriteString(c, reply)
	}
}

// refusedAddr returns an address where nothing listens: a TCP port just
// closed, or a unix socket file whose listener is gone (connect gives
// ECONNREFUSED), or a unix path that does not exist.
func refusedAddr(t testing.TB, kind string) sockaddr.Addr {
	t.Helper()
	switch kind {
	case "tcp":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		a := l.Addr().String()
		l.Close()
		return sockaddr.Addr{Network: "tcp", Address: a}
	case "unix":
		path := filepath.Join(t.TempDir(), "dead.sock")
		l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		l.SetUnlinkOnClose(false)
		l.Close()
		return sockaddr.Addr{Network: "unix", Address: path}
	case "missing":
		return sockaddr.Addr{Network: "unix", Address: filepath.Join(t.TempDir(), "missing.sock")}
	}
	t.Fatalf("refusedAddr: unknown kind %q", kind)
	return sockaddr.Addr{}
}

// message returns a test message in wire form, about size bytes long.
func message(size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.org\r\nTo: b@example.org\r\nSubject: test\r\n\r\n")
	line := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz", 2) + "\r\n"
	for i := 0; b.Len() < size; i++ {
		b.WriteString(line[i%len(line):])
	}
	return b.Bytes()[:max(size, 0)]
}
