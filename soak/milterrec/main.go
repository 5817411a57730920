//go:build soak

// Command milterrec is a recording proxy for the milter protocol: it sits
// between an MTA and a milter, forwards every byte both ways, and writes
// what the MTA sent, so that real Postfix and Sendmail traffic can seed
// milter/fuzz_test.go's FuzzPackets.
//
//	milterrec -listen 127.0.0.1:11000 -upstream 127.0.0.1:10029 -dir /tmp/rec -seeds milter/testdata/fuzz/FuzzPackets -name postfix
//
// For each MTA connection it writes, in -dir, NAME-N.trace (every packet of
// both directions, decoded one per line) and, in -seeds, one file in the
// go test fuzz corpus format holding the MTA's bytes after its option
// negotiation packet (FuzzPackets sends its own negotiation first). Seeds
// are named NAME-SHA so that the same conversation is stored once.
// It stops on SIGTERM/SIGINT or after -max connections.
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "loopback `ADDR` to accept MTA connections on")
	upstream := flag.String("upstream", "", "the milter's `ADDR` (host:port, or a path for a unix socket)")
	dir := flag.String("dir", ".", "folder for the decoded traces")
	seeds := flag.String("seeds", "", "folder for fuzz corpus files (none when empty)")
	name := flag.String("name", "mta", "prefix of the files written")
	maxConns := flag.Int("max", 1000, "stop after this many connections")
	flag.Parse()
	if *upstream == "" {
		log.Fatal("milterrec: -upstream is required")
	}
	if h, _, err := net.SplitHostPort(*listen); err != nil || !net.ParseIP(h).IsLoopback() {
		log.Fatalf("milterrec: -listen %q: loopback addresses only", *listen)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(ln.Addr().String()) // the harness reads the port from here
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sigs; ln.Close() }()

	var wg sync.WaitGroup
	var n atomic.Int64
	for i := 0; i < *maxConns; i++ {
		c, err := ln.Accept()
		if err != nil {
			break
		}
		id := n.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := proxy(c, *upstream, *dir, *seeds, fmt.Sprintf("%s-%d", *name, id), *name); err != nil {
				log.Printf("milterrec: connection %d: %v", id, err)
			}
		}()
	}
	ln.Close()
	wg.Wait()
}

func proxy(c net.Conn, upstream, dir, seeds, trace, name string) error {
	defer c.Close()
	network := "tcp"
	if strings.HasPrefix(upstream, "/") {
		network = "unix"
	}
	u, err := net.DialTimeout(network, upstream, 10*time.Second)
	if err != nil {
		return err
	}
	defer u.Close()
	var fromMTA, fromMilter bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		io.Copy(io.MultiWriter(c, &fromMilter), u)
		c.(*net.TCPConn).CloseWrite()
	}()
	io.Copy(io.MultiWriter(u, &fromMTA), c)
	if cw, ok := u.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	wg.Wait()

	var t bytes.Buffer
	fmt.Fprintf(&t, "# MTA -> milter\n")
	decode(&t, fromMTA.Bytes())
	fmt.Fprintf(&t, "# milter -> MTA\n")
	decode(&t, fromMilter.Bytes())
	if err := os.WriteFile(filepath.Join(dir, trace+".trace"), t.Bytes(), 0o644); err != nil {
		return err
	}
	if seeds == "" {
		return nil
	}
	data := afterOptneg(fromMTA.Bytes())
	if len(data) == 0 {
		return nil
	}
	sum := sha256.Sum256(data)
	path := filepath.Join(seeds, name+"-"+hex.EncodeToString(sum[:8]))
	body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
	return os.WriteFile(path, []byte(body), 0o644)
}

// afterOptneg drops the leading option negotiation packet, if any.
func afterOptneg(b []byte) []byte {
	if len(b) >= 5 && b[4] == 'O' {
		n := int(binary.BigEndian.Uint32(b))
		if 4+n <= len(b) {
			return b[4+n:]
		}
	}
	return b
}

// decode writes one line per packet: its command letter and its data, NULs
// shown as |, long data cut.
func decode(w io.Writer, b []byte) {
	for len(b) >= 5 {
		n := int(binary.BigEndian.Uint32(b))
		if n < 1 || 4+n > len(b) {
			fmt.Fprintf(w, "?? %d bytes left, frame length %d\n", len(b), n)
			return
		}
		code, data := b[4], b[5:4+n]
		b = b[4+n:]
		var s string
		switch code {
		case 'O':
			s = fmt.Sprintf("% x", data)
		default:
			s = strings.ReplaceAll(string(data), "\x00", "|")
			if len(s) > 160 {
				s = fmt.Sprintf("%s... (%d bytes)", s[:160], len(data))
			}
			s = strings.ReplaceAll(strings.ReplaceAll(s, "\r", `\r`), "\n", `\n`)
		}
		fmt.Fprintf(w, "%c %s\n", code, s)
	}
	if len(b) > 0 {
		fmt.Fprintf(w, "?? %d trailing bytes\n", len(b))
	}
}
