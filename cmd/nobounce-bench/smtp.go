package main

import (
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"time"
)

// runSMTP sends the messages through a real MTA with SMTP sessions of its
// own (cfg.perConn messages per connection, 1 when 0) and counts the
// answers to the final "." by code; the latency is from the final "." to
// that answer.
func runSMTP(addr string, cfg config, wl *workload) stats {
	perConn := max(cfg.perConn, 1)
	var (
		mu   sync.Mutex
		st   = stats{sessions: cfg.sessions, replies: map[string]int{}}
		next int
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if next >= cfg.messages {
			return 0, false
		}
		next++
		return next, true
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < cfg.sessions; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *smtp.Client
			sent := 0
			for {
				i, ok := take()
				if !ok {
					break
				}
				if c == nil {
					conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
					if err == nil {
						conn.SetDeadline(time.Now().Add(cfg.timeout))
						c, err = smtp.NewClient(conn, "localhost")
						if err == nil {
							err = c.Hello("bench.example")
						}
					}
					if err != nil {
						mu.Lock()
						st.errs = append(st.errs, err.Error())
						mu.Unlock()
						c = nil
						continue
					}
					sent = 0
				}
				m := wl.get(i)
				kind, d, err := smtpMessage(c, m)
				sent++
				mu.Lock()
				if err != nil {
					st.errs = append(st.errs, err.Error())
				} else {
					st.n++
					st.bytes += int64(m.size())
					if d > 0 {
						st.lat = append(st.lat, d)
					}
					st.replies[kind]++
				}
				mu.Unlock()
				if err != nil || sent >= perConn {
					c.Quit()
					c.Close()
					c = nil
				}
			}
			if c != nil {
				c.Quit()
				c.Close()
			}
		}()
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	return st
}

// smtpMessage sends one transaction. A refusal before the data is counted
// as "CODE@STAGE"; the answer to the final "." as its code, 250 as "accept".
func smtpMessage(c *smtp.Client, m *message) (string, time.Duration, error) {
	refused := func(stage string, err error) (string, time.Duration, error) {
		var te *textproto.Error
		if errors.As(err, &te) {
			c.Reset()
			return fmt.Sprintf("%d@%s", te.Code, stage), 0, nil
		}
		return "", 0, fmt.Errorf("%s: %w", stage, err)
	}
	if err := c.Mail("bench@remote.test"); err != nil {
		return refused("MAIL", err)
	}
	if err := c.Rcpt("alice@example.test"); err != nil {
		return refused("RCPT", err)
	}
	w, err := c.Data()
	if err != nil {
		return refused("DATA", err)
	}
	var b strings.Builder
	for _, h := range m.headers {
		b.WriteString(h[0])
		b.WriteString(": ")
		b.WriteString(strings.ReplaceAll(h[1], "\n", "\r\n"))
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	if _, err := w.Write([]byte(b.String())); err != nil {
		return "", 0, err
	}
	if _, err := w.Write(m.body); err != nil {
		return "", 0, err
	}
	t0 := time.Now()
	err = w.Close()
	d := time.Since(t0)
	if err == nil {
		return "accept", d, nil
	}
	var te *textproto.Error
	if errors.As(err, &te) {
		return strconv.Itoa(te.Code), d, nil
	}
	return "", 0, err
}
