// Package smtptest runs fake SMTP servers on loopback for tests: they answer
// RCPT TO from a list of users (or accept everything, or answer 4xx), can
// refuse a message after DATA, and count their connections.
package smtptest

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nobounce/nobounce/sockaddr"
)

// Config says how a fake server answers.
type Config struct {
	Users            []string      // addresses that exist; RCPT to others gets 550 5.1.1
	CatchAll         bool          // every RCPT gets 250
	RcptTempFail     bool          // every RCPT gets 451
	RejectNullSender bool          // MAIL FROM:<> gets 553
	RejectData       bool          // the end of DATA gets 550 5.1.1 for unknown recipients (a "C2" server)
	Greeting         string        // a greeting to send instead of 220, then hang up
	Silent           bool          // accept connections and never speak
	Delay            time.Duration // before each RCPT reply
}

// Server is a fake SMTP server on loopback.
type Server struct {
	Addr sockaddr.Addr
	cfg  Config

	mu    sync.Mutex
	conns int
	rcpts []string
	msgs  []string
}

// Start runs a server until the test ends.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &Server{Addr: sockaddr.Addr{Network: "tcp", Address: ln.Addr().String()}, cfg: cfg}
	var wg sync.WaitGroup
	var conns sync.Map
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns++
			b.mu.Unlock()
			conns.Store(c, true)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer conns.Delete(c)
				defer c.Close()
				b.serve(c)
			}()
		}
	}()
	return b
}

func (b *Server) serve(c net.Conn) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	say := func(s string) { c.Write([]byte(s + "\r\n")) }
	if b.cfg.Silent {
		r.ReadString('\n') // until the client goes
		return
	}
	if b.cfg.Greeting != "" {
		say(b.cfg.Greeting)
		return
	}
	say("220 backend.test ESMTP")
	var tx []string // recipients of the transaction
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		cmd := strings.ToUpper(line)
		switch {
		case strings.HasPrefix(cmd, "EHLO"):
			say("250-backend.test")
			say("250 8BITMIME")
		case strings.HasPrefix(cmd, "MAIL FROM:<>") && b.cfg.RejectNullSender:
			say("553 5.7.1 null sender refused")
		case strings.HasPrefix(cmd, "MAIL"):
			tx = nil
			say("250 2.1.0 Ok")
		case strings.HasPrefix(cmd, "RCPT TO:"):
			time.Sleep(b.cfg.Delay)
			addr := strings.Trim(line[len("RCPT TO:"):], "<> ")
			b.mu.Lock()
			b.rcpts = append(b.rcpts, addr)
			b.mu.Unlock()
			tx = append(tx, addr)
			switch {
			case b.cfg.RcptTempFail:
				say("451 4.3.0 try again")
			case b.cfg.CatchAll || b.cfg.RejectData || b.known(addr):
				say("250 2.1.5 Ok")
			default:
				say("550 5.1.1 <" + addr + ">: Recipient address rejected: User unknown in virtual mailbox table")
			}
		case cmd == "DATA":
			say("354 go ahead")
			var msg strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
				msg.WriteString(l)
			}
			b.mu.Lock()
			b.msgs = append(b.msgs, msg.String())
			b.mu.Unlock()
			unknown := ""
			for _, a := range tx {
				if b.cfg.RejectData && !b.known(a) {
					unknown = a
				}
			}
			if unknown != "" {
				say("550 5.1.1 <" + unknown + ">: Recipient address rejected: User unknown")
			} else {
				say("250 2.0.0 queued")
			}
			tx = nil
		case cmd == "RSET":
			tx = nil
			say("250 2.0.0 Ok")
		case cmd == "NOOP":
			say("250 2.0.0 Ok")
		case cmd == "QUIT":
			say("221 2.0.0 Bye")
			return
		default:
			say("502 5.5.2 unknown command")
		}
	}
}

func (b *Server) known(addr string) bool {
	for _, u := range b.cfg.Users {
		if strings.EqualFold(u, addr) {
			return true
		}
	}
	return false
}

// Connections is how many connections the server has accepted.
func (b *Server) Connections() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.conns
}

// Rcpts lists every RCPT TO address received, in order.
func (b *Server) Rcpts() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.rcpts...)
}

// LastMessage is the last message received after DATA, dot-stuffing kept.
func (b *Server) LastMessage() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.msgs) == 0 {
		return ""
	}
	return b.msgs[len(b.msgs)-1]
}
