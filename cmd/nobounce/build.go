package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/nobounce/nobounce/config"
	"github.com/nobounce/nobounce/milter"
	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/scan/clamd"
	"github.com/nobounce/nobounce/scan/mime"
	"github.com/nobounce/nobounce/scan/rspamd"
	"github.com/nobounce/nobounce/scan/spamd"
	"github.com/nobounce/nobounce/sockaddr"
	"github.com/nobounce/nobounce/verdict"
)

// overrides are the command-line flags that replace values of the file.
type overrides struct {
	listen string
	clamd  listFlag
	spamd  listFlag
	rspamd listFlag
	verify verifyFlag
}

// addSharedFlags declares the flags serve and scan share: each replaces
// the file's list of that scanner's servers, or of callout backends.
func (o *overrides) addSharedFlags(fs *flag.FlagSet) {
	fs.Var(&o.verify, "verify", verifyUsage)
	fs.Var(&o.clamd, "clamd", "clamd `ADDR`ess, repeatable: unix:/path or inet:host:port (replaces the file's list)")
	fs.Var(&o.spamd, "spamd", "spamd `ADDR`ess, repeatable: inet:host:port or unix:/path (replaces the file's list)")
	fs.Var(&o.rspamd, "rspamd", "rspamd `URL`, repeatable: http://127.0.0.1:11333 (replaces the file's list)")
}

func (o *overrides) apply(c *config.Config) {
	if o.listen != "" {
		c.Listen = o.listen
	}
	if len(o.clamd) > 0 {
		c.Clamd.Addresses = append([]string(nil), o.clamd...)
	}
	if len(o.spamd) > 0 {
		c.Spamd.Addresses = append([]string(nil), o.spamd...)
	}
	if len(o.rspamd) > 0 {
		c.Rspamd.URLs = append([]string(nil), o.rspamd...)
	}
	o.verify.apply(c)
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

// process is what outlives a reload: the counters, and the recipient caches.
type process struct {
	metrics *milter.Metrics
	caches  *milter.RecipientCaches
}

// buildSettings turns a valid config into what the milter runs with.
func buildSettings(c config.Config, logger *slog.Logger, env process) (*milter.Settings, error) {
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
	if c.MIME.Enabled {
		o, err := c.MIME.Options()
		if err != nil {
			return nil, err
		}
		sc, err := mime.New(o)
		if err != nil {
			return nil, err
		}
		st.Scanners = append(st.Scanners, sc)
		st.Roles[sc.Name()] = verdict.RolePolicy
		st.Policy.PolicyHeader = verdict.DefaultPolicyHeader
	}
	if len(c.Spamd.Addresses) > 0 {
		var addrs []sockaddr.Addr
		for _, s := range c.Spamd.Addresses {
			a, err := sockaddr.Parse(s)
			if err != nil {
				return nil, fmt.Errorf("spamd: %w", err)
			}
			addrs = append(addrs, a)
		}
		sc, err := spamd.New(spamd.Options{
			Addrs:          addrs,
			Timeout:        c.Spamd.Timeout.Duration,
			ConnectTimeout: c.Spamd.ConnectTimeout.Duration,
			MaxSize:        int64(c.Spamd.MaxSize),
			User:           c.Spamd.User,
			NoReceived:     !c.Spamd.ReceivedHeader,
			TagAt:          c.Spamd.TagAt,
			RejectAt:       c.Spamd.RejectAt,
			Logger:         logger,
		})
		if err != nil {
			return nil, err
		}
		st.Scanners = append(st.Scanners, sc)
		st.OnError[sc.Name()] = c.Spamd.OnErrorPolicy()
		st.Roles[sc.Name()] = verdict.RoleSpam
		st.Policy.SpamHeaders = true
	}
	if len(c.Rspamd.URLs) > 0 {
		sc, err := rspamd.New(rspamd.Options{
			URLs:           c.Rspamd.URLs,
			Password:       c.Rspamd.Password,
			Timeout:        c.Rspamd.Timeout.Duration,
			ConnectTimeout: c.Rspamd.ConnectTimeout.Duration,
			MaxSize:        int64(c.Rspamd.MaxSize),
			TagAt:          c.Rspamd.TagAt,
			RejectAt:       c.Rspamd.RejectAt,
			Logger:         logger,
		})
		if err != nil {
			return nil, err
		}
		st.Scanners = append(st.Scanners, sc)
		st.OnError[sc.Name()] = c.Rspamd.OnErrorPolicy()
		if c.Rspamd.RewriteSubject {
			st.NewSubject = func(results []scan.Result) (string, bool) {
				for _, r := range results {
					if subj, ok := rspamd.NewSubject(r); ok {
						return subj, true
					}
				}
				return "", false
			}
		}
		st.Roles[sc.Name()] = verdict.RoleSpam
		st.Policy.SpamHeaders = true
	}
	rs, err := milter.BuildRecipient(c, logger, env.metrics, env.caches)
	if err != nil {
		return nil, err
	}
	st.Recipient = rs
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
