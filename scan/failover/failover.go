// Package failover keeps the health of a scanner's servers: which to try
// first for the next message, which failed and when. A scanner with several
// addresses is a failover pool, not a load balancer: every message goes to
// the first server not marked down; one that fails to connect is skipped
// for a while; when all are down they are still tried, oldest failure
// first, so that a scan never fails without an attempt.
package failover

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/nobounce/nobounce/scan"
)

// Pool is the state of one scanner's servers. It is safe for concurrent use.
type Pool struct {
	scanner   string
	retryDown time.Duration
	log       *slog.Logger

	mu      sync.Mutex
	servers []server
}

type server struct {
	name      string
	down      bool
	failedAt  time.Time
	downUntil time.Time
}

// New makes a pool for the named servers (addresses as configured), all up.
// scanner names the scanner in logs; retryDown is how long a failed server
// is skipped.
func New(scanner string, names []string, retryDown time.Duration, log *slog.Logger) *Pool {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pool{scanner: scanner, retryDown: retryDown, log: log}
	for _, n := range names {
		p.servers = append(p.servers, server{name: n})
	}
	return p
}

// Len is the number of servers.
func (p *Pool) Len() int { return len(p.servers) }

// Name is server i's address as configured.
func (p *Pool) Name(i int) string { return p.servers[i].name }

// Order lists the servers to try for a new message, by index: those not
// marked down (or whose retryDown has passed) in configured order, then the
// ones marked down, oldest failure first.
func (p *Pool) Order() []int {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	up := make([]int, 0, len(p.servers))
	var down []int
	for i, sv := range p.servers {
		if sv.down && now.Before(sv.downUntil) {
			down = append(down, i)
		} else {
			up = append(up, i)
		}
	}
	slices.SortStableFunc(down, func(a, b int) int { return p.servers[a].failedAt.Compare(p.servers[b].failedAt) })
	return append(up, down...)
}

// Down marks server i down for retryDown after err (a failed connection).
func (p *Pool) Down(i int, err error) {
	now := time.Now()
	p.mu.Lock()
	sv := &p.servers[i]
	was := sv.down
	sv.down, sv.failedAt, sv.downUntil = true, now, now.Add(p.retryDown)
	p.mu.Unlock()
	if !was {
		p.log.Warn(p.scanner+" down", "addr", sv.name, "err", err, "retry_in", p.retryDown)
	}
}

// Up marks server i up: it answered.
func (p *Pool) Up(i int) {
	p.mu.Lock()
	sv := &p.servers[i]
	was := sv.down
	sv.down = false
	p.mu.Unlock()
	if was {
		p.log.Info(p.scanner+" up", "addr", sv.name)
	}
}

// IsDown reports whether server i is marked down now.
func (p *Pool) IsDown(i int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.servers[i].down && time.Now().Before(p.servers[i].downUntil)
}

// Ping checks every server at once with check and returns their health in
// configured order, marking each up or down. A check that failed because
// ctx ended says nothing about the server and changes nothing.
func (p *Pool) Ping(ctx context.Context, check func(ctx context.Context, i int) error) []scan.Health {
	out := make([]scan.Health, len(p.servers))
	var wg sync.WaitGroup
	for i := range p.servers {
		wg.Go(func() {
			h := scan.Health{Addr: p.servers[i].name}
			start := time.Now()
			err := check(ctx, i)
			h.Latency = time.Since(start)
			switch {
			case err == nil:
				h.Up = true
				p.Up(i)
			case ctx.Err() != nil:
				h.Err = fmt.Errorf("%s %s: %w", p.scanner, h.Addr, context.Cause(ctx))
			default:
				h.Err = fmt.Errorf("%s %s: %w", p.scanner, h.Addr, err)
				p.Down(i, err)
			}
			out[i] = h
		})
	}
	wg.Wait()
	return out
}
