package clamd

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/sockaddr"
)

// The benchmarks send one message per iteration, written in 64 KiB pieces as
// the milter hands them over, and report MB/s of message. Besides the
// Scanner ("lib-*", through the library), "raw*-*" send the same INSTREAM
// stream straight over a connection with chunks of 1 KiB (the library's
// size) and 64 KiB: the difference between lib and raw1k is the cost of the
// pipe and of the library's per-chunk allocation; between raw1k and raw64k,
// that of the 1 KiB chunks. With NOBOUNCE_CLAMD set, the real clamd is
// measured too (its StreamMaxLength must allow 10 MB).

func BenchmarkScan1MB(b *testing.B)  { benchmarkScan(b, 1<<20) }
func BenchmarkScan10MB(b *testing.B) { benchmarkScan(b, 10<<20) }

// BenchmarkScan10MBParallel50 scans 10 MB messages from 50 goroutines at
// once (the target load) through the Scanner, and reports the peak of the
// Go heap in use while doing so: it must not grow with message size.
func BenchmarkScan10MBParallel50(b *testing.B) {
	const size = 10 << 20
	piece := message(64 << 10)
	f := newFake(b, behaviour{})
	s := newScanner(b, time.Minute, f.unix)
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak.Store(max(peak.Load(), ms.HeapInuse))
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	b.SetBytes(size)
	b.SetParallelism(max(1, 50/runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			j := s.Begin(b.Context(), nil)
			if err := writeRepeat(j, piece, size, nil); err != nil {
				b.Error(err)
				return
			}
			if r := j.Finish(b.Context()); r.Status != scan.Clean {
				b.Errorf("%v %v", r.Status, r.Err)
				return
			}
		}
	})
	close(stop)
	<-sampled
	b.ReportMetric(float64(peak.Load())/(1<<20), "MiB-heap-peak")
}

func benchmarkScan(b *testing.B, size int) {
	piece := message(64 << 10)
	f := newFake(b, behaviour{})
	targets := []struct {
		name string
		addr sockaddr.Addr
	}{{"fake-unix", f.unix}, {"fake-tcp", f.tcp}}
	if env := os.Getenv("NOBOUNCE_CLAMD"); env != "" {
		a, err := sockaddr.Parse(env)
		if err != nil {
			b.Fatal(err)
		}
		targets = append(targets, struct {
			name string
			addr sockaddr.Addr
		}{"real", a})
	}
	for _, tg := range targets {
		b.Run("lib-"+tg.name, func(b *testing.B) {
			s := newScanner(b, time.Minute, tg.addr)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				j := s.Begin(b.Context(), nil)
				if err := writeRepeat(j, piece, size, nil); err != nil {
					b.Fatal(err)
				}
				if r := j.Finish(b.Context()); r.Status != scan.Clean {
					b.Fatalf("%v %v", r.Status, r.Err)
				}
			}
		})
		for _, chunk := range []int{1 << 10, 64 << 10} {
			b.Run(fmt.Sprintf("raw%dKiB-%s", chunk>>10, tg.name), func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if reply, err := rawInstream(tg.addr, piece, size, chunk); err != nil || reply != "stream: OK" {
						b.Fatalf("%q %v", reply, err)
					}
				}
			})
		}
	}
}

// rawInstream sends size bytes (piece repeated) with INSTREAM in chunks of
// the given size, one write per chunk, and returns clamd's answer: the
// baseline the Scanner is measured against.
func rawInstream(a sockaddr.Addr, piece []byte, size, chunk int) (string, error) {
	conn, err := net.Dial(a.Network, a.Address)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(time.Minute))
	if _, err := io.WriteString(conn, "nINSTREAM\n"); err != nil {
		return "", err
	}
	frame := make([]byte, 4+chunk)
	for sent := 0; sent < size; {
		n := 0
		for n < chunk && sent < size {
			off := sent % len(piece)
			c := copy(frame[4+n:4+min(chunk, n+size-sent)], piece[off:])
			n += c
			sent += c
		}
		binary.BigEndian.PutUint32(frame, uint32(n))
		if _, err := conn.Write(frame[:4+n]); err != nil {
			return "", err
		}
	}
	if _, err := conn.Write([]byte{0, 0, 0, 0}); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line), err
}
