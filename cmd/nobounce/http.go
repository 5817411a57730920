package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/nobounce/nobounce/metrics"
	"github.com/nobounce/nobounce/milter"
	"github.com/nobounce/nobounce/scan"
)

// startHTTP serves /metrics and /healthz on addr until ctx is done.
func startHTTP(ctx context.Context, addr string, reg *metrics.Registry, srv *milter.Server, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics_listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", reg)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		healthz(w, r, srv.Settings().Scanners)
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		hs.Shutdown(shut)
	}()
	go func() {
		if err := hs.Serve(ln); err != nil && err != http.ErrServerClosed {
			logger.Error("metrics server failed", "error", err)
		}
	}()
	return nil
}

// healthz answers 200 when every scanner has at least one server that
// answers, else 503; the body lists each server.
func healthz(w http.ResponseWriter, r *http.Request, scanners []scan.Scanner) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	var b strings.Builder
	ok := true
	for _, sc := range scanners {
		p, isPinger := sc.(scan.Pinger)
		if !isPinger {
			fmt.Fprintf(&b, "%s: no health check\n", sc.Name())
			continue
		}
		up := false
		for _, h := range p.Ping(ctx) {
			if h.Up {
				up = true
				fmt.Fprintf(&b, "%s %s: up (%s)\n", sc.Name(), h.Addr, h.Latency.Round(time.Microsecond))
			} else {
				fmt.Fprintf(&b, "%s %s: down: %v\n", sc.Name(), h.Addr, h.Err)
			}
		}
		ok = ok && up
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "unhealthy\n", b.String())
		return
	}
	fmt.Fprint(w, "ok\n", b.String())
}
