package mime

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/nobounce/nobounce/scan"
)

// writeAll feeds msg to a job in pieces of size n.
func writeAll(t *testing.T, j scan.Job, msg []byte, n int) {
	t.Helper()
	for len(msg) > 0 {
		k := min(n, len(msg))
		if _, err := j.Write(msg[:k]); err != nil {
			t.Fatalf("Write: %v", err)
		}
		msg = msg[k:]
	}
}

func sameResult(a, b scan.Result) bool {
	a.Elapsed, b.Elapsed = 0, 0
	return a.Scanner == b.Scanner && a.Status == b.Status && a.Advice == b.Advice && a.Reply == b.Reply &&
		a.Code == b.Code && a.Enhanced == b.Enhanced && a.Rule == b.Rule && a.Err == nil && b.Err == nil
}

// TestJobMatchesWalk: streaming a message through a job, in pieces of any
// size, gives the answer Walk gives on the whole.
func TestJobMatchesWalk(t *testing.T) {
	for _, c := range goldenCases {
		s, err := New(goldenOptions(c))
		if err != nil {
			t.Fatal(err)
		}
		msg := c.build()
		rep, err := s.Walk(bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		want := rep.Result()
		for _, n := range []int{1, 13, 4096, 1 << 20} {
			if n == 1 && len(msg) > 20000 {
				continue
			}
			j := s.Begin(t.Context(), &scan.Envelope{})
			writeAll(t, j, msg, n)
			got := j.Finish(t.Context())
			j.Abort()
			if !sameResult(got, want) {
				t.Errorf("%s in pieces of %d: %+v, want %+v", c.name, n, got, want)
			}
			if got.Scanner != "mime" || got.Elapsed <= 0 {
				t.Errorf("%s: scanner %q elapsed %v", c.name, got.Scanner, got.Elapsed)
			}
		}
	}
}

// TestJobThroughStream runs the scanner in scan's fan-out, as the milter does.
func TestJobThroughStream(t *testing.T) {
	s, _ := New(DefaultOptions())
	msg := goldenByName(t, "zip-exe").build()
	st := scan.Open(t.Context(), []scan.Scanner{s}, &scan.Envelope{}, scan.Options{})
	st.Write(msg[:100])
	st.Write(msg[100:])
	res := st.Finish(t.Context())
	if len(res) != 1 || res[0].Status != scan.Clean || res[0].Advice != scan.AdviseReject || res[0].Scanner != "mime" {
		t.Fatalf("results %+v", res)
	}
}

func goldenByName(t *testing.T, name string) goldenCase {
	for _, c := range goldenCases {
		if c.name == name {
			return c
		}
	}
	t.Fatalf("no golden case %s", name)
	return goldenCase{}
}

// TestJobWritesAfterEarlyEnd: once the walk has stopped looking (a limit),
// writes still succeed: a failing write would make the stream call the scan
// failed.
func TestJobWritesAfterEarlyEnd(t *testing.T) {
	o := DefaultOptions()
	o.MaxHeaderBytes = 1024
	s, _ := New(o)
	j := s.Begin(t.Context(), nil)
	writeAll(t, j, []byte("Subject: x\r\nX-Long: "+string(bytes.Repeat([]byte("a"), 2000))+"\r\n\r\n"), 100)
	writeAll(t, j, bytes.Repeat([]byte("body line\r\n"), 100000), 64<<10)
	r := j.Finish(t.Context())
	if r.Status != scan.Clean || r.Advice != scan.AdviseReject || r.Code != OverLimitCode || r.Enhanced != OverLimitEnhanced {
		t.Errorf("result %+v", r)
	}
}

// TestJobAbort: after Abort, writes fail, the goroutine ends and the spool
// is removed.
func TestJobAbort(t *testing.T) {
	dir := t.TempDir()
	o := DefaultOptions()
	o.TempDir = dir
	s, _ := New(o)
	j := s.Begin(t.Context(), nil).(*job)
	// Half of a message with a large zip: the walker is spooling it.
	big := make([]byte, 3<<20)
	rand.Read(big)
	msg := goldenMsgWithAttachment("big.zip", "application/zip", zipOf(zipEntry{name: "noise.bin", data: big, store: true}))
	writeAll(t, j, msg[:len(msg)/2], 64<<10)
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(files) != 1 {
		t.Fatalf("spool files %v, want one", files)
	}
	fi, err := os.Stat(files[0])
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("spool file mode %v, %v; want 0600", fi.Mode(), err)
	}
	j.Abort()
	if _, err := j.Write([]byte("more")); err == nil {
		t.Error("Write after Abort succeeded")
	}
	select {
	case <-j.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the walk did not end after Abort")
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
		t.Errorf("spool files left: %v", files)
	}
	if r := j.Finish(t.Context()); r.Status != scan.Failed || !errors.Is(r.Err, errAborted) {
		t.Errorf("Finish after Abort: %+v", r)
	}
	j.Abort() // again: harmless
}

// TestJobContext: cancelling the scan's context ends it like Abort.
func TestJobContext(t *testing.T) {
	s, _ := New(DefaultOptions())
	ctx, cancel := context.WithCancel(t.Context())
	j := s.Begin(ctx, nil).(*job)
	writeAll(t, j, []byte("Subject: x\r\n\r\nbody\r\n"), 5)
	cancel()
	select {
	case <-j.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the walk did not end after cancel")
	}
	if _, err := j.Write([]byte("more")); err == nil {
		t.Error("Write after cancel succeeded")
	}
}

// TestSpoolRemoved: spooled archives are removed when the walk ends.
func TestSpoolRemoved(t *testing.T) {
	dir := t.TempDir()
	o := DefaultOptions()
	o.TempDir = dir
	s, _ := New(o)
	for _, name := range []string{"zip-exe", "zip-in-zip", "zip-truncated", "zip-encrypted"} {
		if _, err := s.Walk(bytes.NewReader(goldenByName(t, name).build())); err != nil {
			t.Fatal(err)
		}
		if files, _ := filepath.Glob(filepath.Join(dir, "*")); len(files) != 0 {
			t.Errorf("%s: spool files left: %v", name, files)
		}
	}
}

func goldenMsgWithAttachment(name, ctype string, data []byte) []byte {
	return msg(mixed(textPart("x\r\n"), attach(name, ctype, data)))
}

// TestStreamingMemory streams a 32 MB message (a 24 MB attachment of
// random bytes) and checks, half way, that the live heap holds nothing like
// the message.
func TestStreamingMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	s, _ := New(DefaultOptions())
	j := s.Begin(t.Context(), nil)
	writeAll(t, j, []byte("Subject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: application/octet-stream; name=big.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"), 1<<20)
	raw := make([]byte, 57*1000)
	line := make([]byte, 0, 80*1000)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const total = 24 << 20
	for sent := 0; sent < total; sent += len(raw) {
		rand.Read(raw)
		line = line[:0]
		for i := 0; i < len(raw); i += 57 {
			line = base64.StdEncoding.AppendEncode(line, raw[i:i+57])
			line = append(line, '\r', '\n')
		}
		writeAll(t, j, line, 64<<10)
		if sent > total/2 && sent-len(raw) <= total/2 {
			var mid runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&mid)
			if grew := int64(mid.HeapAlloc) - int64(before.HeapAlloc); grew > 8<<20 {
				t.Errorf("live heap grew by %d MiB half way through", grew>>20)
			}
		}
	}
	writeAll(t, j, []byte("\r\n--b--\r\n"), 100)
	if r := j.Finish(t.Context()); r.Status != scan.Clean || r.Advice != scan.AdviseNone {
		t.Errorf("result %+v", r)
	}
}
