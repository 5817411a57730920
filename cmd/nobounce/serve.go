package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"log/slog"

	"github.com/nobounce/nobounce/config"
	"github.com/nobounce/nobounce/metrics"
	"github.com/nobounce/nobounce/milter"
	"github.com/nobounce/nobounce/sockaddr"
)

func serveCmd(args []string, stderr io.Writer) int {
	fs := newFlagSet("serve", stderr)
	var o overrides
	cfgPath := fs.String("config", "", "configuration `FILE` (TOML); without it built-in defaults serve")
	fs.StringVar(&o.listen, "listen", "", "milter `SOCKET` to listen on: unix:/path or inet:host:port (overrides the file)")
	o.addSharedFlags(fs)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return exitError
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "nobounce serve: unexpected argument %q\n", pos[0])
		return exitError
	}
	cfg, err := loadConfig(*cfgPath, &o)
	if err != nil {
		fmt.Fprintf(stderr, "nobounce serve: %v\n", err)
		return exitError
	}
	logger := newLogger(cfg, stderr)
	var reg *metrics.Registry
	if cfg.MetricsListen != "" {
		reg = metrics.New()
	}
	proc := process{metrics: milter.NewMetrics(reg), caches: &milter.RecipientCaches{}}
	st, err := buildSettings(cfg, logger, proc)
	if err != nil {
		logger.Error("cannot start", "error", err)
		return exitError
	}
	addr, _ := sockaddr.Parse(cfg.Listen) // Validate parsed it already
	mode, _ := strconv.ParseUint(cfg.SocketMode, 8, 32)
	ln, err := milter.Listen(addr, os.FileMode(mode), cfg.SocketGroup)
	if err != nil {
		logger.Error("cannot start", "error", err)
		return exitError
	}
	srv := milter.NewServer(milter.Options{
		ReadTimeout:  cfg.ReadTimeout.Duration,
		WriteTimeout: cfg.WriteTimeout.Duration,
		MaxSessions:  cfg.MaxSessions,
		Logger:       logger,
		Metrics:      proc.metrics,
	}, st)

	httpCtx, stopHTTP := context.WithCancel(context.Background())
	defer stopHTTP()
	if reg != nil {
		srv.RegisterMetrics(reg)
		if err := startHTTP(httpCtx, cfg.MetricsListen, reg, srv, logger); err != nil {
			logger.Error("cannot start", "error", err)
			ln.Close()
			return exitError
		}
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("serving", "version", versionString(), "listen", addr.String(), "clamd", cfg.Clamd.Addresses,
		"max_sessions", cfg.MaxSessions, "metrics", cfg.MetricsListen, "config", *cfgPath)

	for {
		select {
		case err := <-served:
			if err != nil {
				logger.Error("server failed", "error", err)
				return exitError
			}
			return exitOK
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				cfg = reload(*cfgPath, &o, cfg, srv, logger, proc)
				continue
			}
			logger.Info("stopping: draining sessions", "signal", sig.String(), "sessions", srv.Sessions(),
				"drain_timeout", cfg.DrainTimeout.Duration)
			ctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout.Duration)
			err := srv.Shutdown(ctx)
			cancel()
			if err != nil && !errors.Is(err, context.Canceled) {
				logger.Warn("stopped", "error", err)
			} else {
				logger.Info("stopped")
			}
			<-served
			return exitOK
		}
	}
}

// reload builds the whole new configuration before swapping it in; a file
// that doesn't load or validate leaves the running one untouched. Socket and
// session limits are fixed for the life of the process.
func reload(path string, o *overrides, old config.Config, srv *milter.Server, logger *slog.Logger, proc process) config.Config {
	cfg, err := loadConfig(path, o)
	if err != nil {
		logger.Error("reload failed: keeping the running configuration", "config", path, "error", err.Error())
		return old
	}
	st, err := buildSettings(cfg, logger, proc)
	if err != nil {
		logger.Error("reload failed: keeping the running configuration", "config", path, "error", err.Error())
		return old
	}
	srv.SetSettings(st)
	if cfg.Listen != old.Listen || cfg.SocketMode != old.SocketMode || cfg.SocketGroup != old.SocketGroup ||
		cfg.MaxSessions != old.MaxSessions || cfg.ReadTimeout != old.ReadTimeout || cfg.WriteTimeout != old.WriteTimeout {
		logger.Warn("reload: listen, socket_*, max_sessions and read/write timeouts change only on restart")
	}
	logger.Info("reloaded", "config", path, "clamd", cfg.Clamd.Addresses)
	return cfg
}
