package main

import (
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/nobounce/nobounce/config"
	"github.com/nobounce/nobounce/milter"
	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/scan/clamd"
	"github.com/nobounce/nobounce/sockaddr"
	"github.com/nobounce/nobounce/verdict"
)

// overrides are the command-line flags that replace values of the file.
type overrides struct {
	listen string
	clamd  listFlag
}

func (o *overrides) apply(c *config.Config) {
	if o.listen != "" {
		c.Listen = o.listen
	}
	if len(o.clamd) > 0 {
		c.Clamd.Addresses = append([]string(nil), o.clamd...)
	}
}

// loadConfig reads the file (or the defaults when path is ""), applies the
// flags and validates the result.
func loadConfig(path string, o *overrides) (config.Config, error) {
	c := config.Default()
	if path != "" {
		var err error
		if c, err = config.Load(path); err != nil {
			return c, err
		}
	}
	o.apply(&c)
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c, nil
}

// buildSettings turns a valid config into what the milter runs with.
func buildSettings(c config.Config, logger *slog.Logger) (*milter.Settings, error) {
	st := &milter.Settings{
		OnError: map[string]verdict.OnError{},
		Policy:  c.Policy(versionString()),
		Scan:    scan.Options{MaxSize: int64(c.Scan.MaxSize)},
		Roles:   map[string]verdict.Role{},

		SpamSkipAuthenticated: c.Scan.SpamSkipAuthenticated,
		SpamSkipNetworks:      c.Scan.SpamSkipPrefixes(),
		EOMTimeout:            c.EOMTimeout.Duration,
	}
	if len(c.Clamd.Addresses) > 0 {
		var addrs []sockaddr.Addr
		for _, s := range c.Clamd.Addresses {
			a, err := sockaddr.Parse(s)
			if err != nil {
				return nil, fmt.Errorf("clamd: %w", err)
			}
			addrs = append(addrs, a)
		}
		sc, err := clamd.New(clamd.Options{
			Addrs:          addrs,
			Timeout:        c.Clamd.Timeout.Duration,
			ConnectTimeout: c.Clamd.ConnectTimeout.Duration,
			Logger:         logger,
		})
		if err != nil {
			return nil, err
		}
		st.Scanners = append(st.Scanners, scan.Scanner(sc))
		st.OnError[sc.Name()] = c.Clamd.OnErrorPolicy()
	}
	return st, nil
}

func newLogger(c config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if c.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	logger := slog.New(h)
	// go-milter reports connection errors through the standard logger.
	log.SetFlags(0)
	log.SetOutput(logWriter{logger.With("component", "go-milter")})
	return logger
}

type logWriter struct{ l *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.l.Warn(strings.TrimSpace(string(p)))
	return len(p), nil
}
