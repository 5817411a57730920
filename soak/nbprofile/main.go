//go:build soak

// Command nbprofile runs nobounce's milter server in-process, set up as
// `nobounce serve` sets it up with built-in defaults (optionally with one
// clamd and one rspamd), and writes a CPU profile of the whole run: the profile behind the
// fix proposals in docs/benchmarks.md.
//
//	nbprofile -listen 127.0.0.1:10040 [-clamd unix:/path] [-rspamd http://127.0.0.1:11333] -cpuprofile cpu.out [-memprofile mem.out] -seconds 30
//	go tool pprof -top cpu.out
//	go tool pprof -sample_index=alloc_space -top mem.out
package main

import (
	"flag"
	"log"
	"log/slog"
	"net"
	"os"
	"runtime/pprof"
	"time"

	"github.com/nobounce/nobounce/config"
	"github.com/nobounce/nobounce/milter"
	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/scan/clamd"
	"github.com/nobounce/nobounce/scan/rspamd"
	"github.com/nobounce/nobounce/sockaddr"
	"github.com/nobounce/nobounce/verdict"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:10040", "loopback `ADDR` for the milter")
	clamdAddr := flag.String("clamd", "", "clamd `ADDR` (unix:/path); none when empty")
	rspamdURL := flag.String("rspamd", "", "rspamd normal worker `URL` (http://127.0.0.1:11333); none when empty")
	out := flag.String("cpuprofile", "cpu.out", "CPU profile `FILE`")
	memOut := flag.String("memprofile", "", "also write a heap profile (allocations since the start) to `FILE`")
	seconds := flag.Int("seconds", 30, "profile this long, then exit")
	flag.Parse()

	c := config.Default()
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	st := &milter.Settings{
		OnError:    map[string]verdict.OnError{},
		Policy:     c.Policy("profile"),
		Scan:       scan.Options{MaxSize: int64(c.Scan.MaxSize)},
		Roles:      map[string]verdict.Role{},
		EOMTimeout: c.EOMTimeout.Duration,
	}
	if *clamdAddr != "" {
		a, err := sockaddr.Parse(*clamdAddr)
		if err != nil {
			log.Fatal(err)
		}
		sc, err := clamd.New(clamd.Options{Addrs: []sockaddr.Addr{a}, Timeout: c.Clamd.Timeout.Duration,
			ConnectTimeout: c.Clamd.ConnectTimeout.Duration, Logger: logger})
		if err != nil {
			log.Fatal(err)
		}
		st.Scanners = append(st.Scanners, sc)
		st.OnError[sc.Name()] = c.Clamd.OnErrorPolicy()
	}
	if *rspamdURL != "" {
		sc, err := rspamd.New(rspamd.Options{URLs: []string{*rspamdURL}, Timeout: c.Rspamd.Timeout.Duration,
			ConnectTimeout: c.Rspamd.ConnectTimeout.Duration, MaxSize: int64(c.Rspamd.MaxSize), Logger: logger})
		if err != nil {
			log.Fatal(err)
		}
		st.Scanners = append(st.Scanners, sc)
		st.OnError[sc.Name()] = c.Rspamd.OnErrorPolicy()
		st.Roles[sc.Name()] = verdict.RoleSpam
		st.Policy.SpamHeaders = true
	}
	srv := milter.NewServer(milter.Options{Logger: logger, MaxSessions: 250}, st)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	pprof.StartCPUProfile(f)
	go srv.Serve(ln)
	time.Sleep(time.Duration(*seconds) * time.Second)
	pprof.StopCPUProfile()
	f.Close()
	if *memOut != "" {
		m, err := os.Create(*memOut)
		if err != nil {
			log.Fatal(err)
		}
		pprof.Lookup("allocs").WriteTo(m, 0)
		m.Close()
	}
}
