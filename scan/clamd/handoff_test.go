package clamd

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

// TestHandoffBytes: every byte written comes out once, in order, whatever
// the sizes of writes and reads, and the reader sees io.EOF at the end.
func TestHandoffBytes(t *testing.T) {
	msg := message(200<<10 + 17)
	h := newHandoff()
	go func() {
		rng := rand.New(rand.NewPCG(3, 4))
		for rest := msg; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(70000))
			if w, err := h.Write(rest[:n]); w != n || err != nil {
				t.Errorf("Write(%d) = %d, %v", n, w, err)
				return
			}
			rest = rest[n:]
		}
		h.CloseWrite(nil)
	}()
	var got bytes.Buffer
	rng := rand.New(rand.NewPCG(5, 6))
	buf := make([]byte, 3000)
	for {
		n, err := h.Read(buf[:1+rng.IntN(len(buf))])
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Bytes(), msg) {
		t.Fatalf("read %d bytes, not the %d written", got.Len(), len(msg))
	}
}

// TestHandoffCloseRead: closing the read end releases a blocked Write with
// the error and the count of bytes taken, and fails later Writes and Reads.
func TestHandoffCloseRead(t *testing.T) {
	h := newHandoff()
	boom := errors.New("boom")
	type res struct {
		n   int
		err error
	}
	done := make(chan res, 1)
	go func() {
		n, err := h.Write(make([]byte, 5000))
		done <- res{n, err}
	}()
	if n, err := h.Read(make([]byte, 1000)); n != 1000 || err != nil {
		t.Fatalf("Read = %d, %v", n, err)
	}
	h.CloseRead(boom)
	select {
	case r := <-done:
		if r.n != 1000 || !errors.Is(r.err, boom) {
			t.Errorf("blocked Write = %d, %v; want 1000, boom", r.n, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Write still blocked after CloseRead")
	}
	if _, err := h.Write([]byte("x")); !errors.Is(err, boom) {
		t.Errorf("Write after CloseRead: %v", err)
	}
	if _, err := h.Read(make([]byte, 10)); err != io.ErrClosedPipe {
		t.Errorf("Read after CloseRead: %v", err)
	}
	h.CloseRead(errors.New("second")) // the first close wins
	if _, err := h.Write([]byte("x")); !errors.Is(err, boom) {
		t.Errorf("Write after a second CloseRead: %v", err)
	}
}

// TestHandoffCloseWrite: a blocked Read wakes up with the close error; a
// Write after CloseWrite fails.
func TestHandoffCloseWrite(t *testing.T) {
	h := newHandoff()
	done := make(chan error, 1)
	go func() {
		_, err := h.Read(make([]byte, 10))
		done <- err
	}()
	h.CloseWrite(nil)
	select {
	case err := <-done:
		if err != io.EOF {
			t.Errorf("Read = %v, want EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still blocked after CloseWrite")
	}
	if _, err := h.Write([]byte("x")); err != io.ErrClosedPipe {
		t.Errorf("Write after CloseWrite: %v", err)
	}
	if n, err := h.Write(nil); n != 0 || err != nil {
		t.Errorf("empty Write: %d, %v", n, err)
	}
}
