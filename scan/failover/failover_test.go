package failover

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func TestOrder(t *testing.T) {
	p := New("test", []string{"a", "b", "c"}, time.Hour, nil)
	if got := p.Order(); !slices.Equal(got, []int{0, 1, 2}) {
		t.Fatalf("all up: %v", got)
	}
	p.Down(0, errors.New("refused"))
	time.Sleep(time.Millisecond) // distinct failure times
	p.Down(2, errors.New("refused"))
	if got := p.Order(); !slices.Equal(got, []int{1, 0, 2}) {
		t.Fatalf("0 and 2 down: %v, want up first, then oldest failure first", got)
	}
	p.Down(1, errors.New("refused"))
	if got := p.Order(); !slices.Equal(got, []int{0, 2, 1}) {
		t.Fatalf("all down: %v, want oldest failure first", got)
	}
	p.Up(2)
	if got := p.Order(); got[0] != 2 || !p.IsDown(0) || p.IsDown(2) {
		t.Fatalf("2 back up: %v", got)
	}
}

func TestRetryDownPasses(t *testing.T) {
	p := New("test", []string{"a", "b"}, 10*time.Millisecond, nil)
	p.Down(0, errors.New("refused"))
	if got := p.Order(); got[0] != 1 {
		t.Fatalf("just down: %v", got)
	}
	time.Sleep(20 * time.Millisecond)
	if got := p.Order(); got[0] != 0 || p.IsDown(0) {
		t.Fatalf("after retry_down: %v, want the first server tried again", got)
	}
}

func TestPing(t *testing.T) {
	p := New("test", []string{"a", "b"}, time.Hour, nil)
	hs := p.Ping(context.Background(), func(ctx context.Context, i int) error {
		if i == 1 {
			return errors.New("connection refused")
		}
		return nil
	})
	if !hs[0].Up || hs[1].Up || hs[1].Err == nil || hs[1].Addr != "b" {
		t.Fatalf("health %+v", hs)
	}
	if !p.IsDown(1) || p.IsDown(0) {
		t.Error("Ping did not update the state")
	}
	// A check cut short by the caller says nothing about the server.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	p.Up(1)
	p.Ping(ctx, func(ctx context.Context, i int) error { return ctx.Err() })
	if p.IsDown(0) || p.IsDown(1) {
		t.Error("a cancelled check marked a server down")
	}
}
