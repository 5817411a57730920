package spamd

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nobounce/nobounce/sockaddr"
)

// behaviour is what the fake spamd does with each connection. The zero
// value reads the request and answers a clean SYMBOLS reply.
type behaviour struct {
	answer   string        // the whole answer, written after the request was read; "" = okAnswer
	drip     time.Duration // write the answer one byte at a time, this long apart
	noReply  bool          // read the request, then never answer nor close
	silent   bool          // read the request, then close without a word
	noRead   bool          // accept, then never read: the client's writes stall
	closeNow bool          // accept, then close at once
	early    string        // answer this after the request line and close, without reading the message
}

// okAnswer is spamd's answer for a clean message.
const okAnswer = "SPAMD/1.1 0 EX_OK\r\nContent-length: 24\r\nSpam: False ; 1.2 / 5.0\r\n\r\nMISSING_DATE,MISSING_MID"

// request is what the fake received on one connection.
type request struct {
	line    string            // "SYMBOLS SPAMC/1.5"
	headers map[string]string // as sent
	order   []string          // header names in order
	body    []byte
	ok      bool // the body was as long as Content-length said
}

// fakeSpamd speaks enough of SPAMC to produce on demand the faults a real
// spamd cannot: truncated and garbled answers, slow drip, hangs. It listens
// on a unix socket and on 127.0.0.1:0.
type fakeSpamd struct {
	t    testing.TB
	b    behaviour
	unix sockaddr.Addr
	tcp  sockaddr.Addr

	accepted chan struct{}
	quit     chan struct{}

	mu    sync.Mutex
	lns   []net.Listener
	conns map[net.Conn]bool
	reqs  []*request
	dead  bool
	wg    sync.WaitGroup
}

func newFake(t testing.TB, b behaviour) *fakeSpamd {
	t.Helper()
	return newFakeAt(t, b, filepath.Join(t.TempDir(), "spamd.sock"))
}

func newFakeAt(t testing.TB, b behaviour, path string) *fakeSpamd {
	t.Helper()
	f := &fakeSpamd{t: t, b: b, accepted: make(chan struct{}, 1024), quit: make(chan struct{}), conns: map[net.Conn]bool{}}
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

func (f *fakeSpamd) addr(network string) sockaddr.Addr {
	if network == "unix" {
		return f.unix
	}
	return f.tcp
}

// kill stops listening and drops every connection, like a spamd that died.
func (f *fakeSpamd) kill() {
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

func (f *fakeSpamd) close() {
	f.kill()
	f.wg.Wait()
}

func (f *fakeSpamd) received() []*request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*request(nil), f.reqs...)
}

func (f *fakeSpamd) accept(l net.Listener) {
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

func (f *fakeSpamd) serve(c net.Conn) {
	switch {
	case f.b.closeNow:
		return
	case f.b.noRead:
		<-f.quit
		return
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return
	}
	req := &request{line: strings.TrimRight(line, "\r\n"), headers: map[string]string{}}
	if f.b.early != "" {
		io.WriteString(c, f.b.early)
		return
	}
	for {
		h, err := br.ReadString('\n')
		if err != nil {
			return
		}
		h = strings.TrimRight(h, "\r\n")
		if h == "" {
			break
		}
		k, v, _ := strings.Cut(h, ": ")
		req.headers[k] = v
		req.order = append(req.order, k)
	}
	if strings.HasPrefix(req.line, "PING ") {
		io.WriteString(c, "SPAMD/1.5 0 PONG\r\n")
		return
	}
	n, err := strconv.Atoi(req.headers["Content-length"])
	if err != nil {
		io.WriteString(c, "SPAMD/1.0 76 Bad header line: no Content-length\r\n")
		return
	}
	var body bytes.Buffer
	m, _ := io.CopyN(&body, br, int64(n))
	req.body, req.ok = body.Bytes(), m == int64(n)
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	if !req.ok {
		return
	}
	switch {
	case f.b.noReply:
		<-f.quit
		return
	case f.b.silent:
		return
	}
	answer := f.b.answer
	if answer == "" {
		answer = okAnswer
	}
	if f.b.drip > 0 {
		for i := 0; i < len(answer); i++ {
			if _, err := c.Write([]byte{answer[i]}); err != nil {
				return
			}
			select {
			case <-f.quit:
				return
			case <-time.After(f.b.drip):
			}
		}
		return
	}
	io.WriteString(c, answer)
}

// refusedAddr returns an address where nothing listens.
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
	case "missing":
		return sockaddr.Addr{Network: "unix", Address: filepath.Join(t.TempDir(), "missing.sock")}
	}
	t.Fatalf("refusedAddr: unknown kind %q", kind)
	return sockaddr.Addr{}
}

// message returns a test message in wire form, size bytes long.
func message(size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.org\r\nTo: b@example.org\r\nSubject: test\r\n\r\n")
	line := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz", 2) + "\r\n"
	for i := 0; b.Len() < size; i++ {
		b.WriteString(line[i%len(line):])
	}
	return b.Bytes()[:max(size, 0)]
}
