package spamd

import (
	"testing"

	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/sockaddr"
)

// BenchmarkFinish measures one scan at the end of the message: the SPAMC
// exchange with a fake spamd that answers at once (the client's own cost),
// or with the real one when NOBOUNCE_SPAMD is set.
func BenchmarkFinish(b *testing.B) {
	env := &scan.Envelope{QueueID: "Q1", ClientAddr: "192.0.2.7", ClientName: "client.example.org",
		Helo: "client.example.org", From: "a@example.org", Rcpts: []string{"b@example.test"}, MTAName: "mx.example.test"}
	for _, tt := range []struct {
		name string
		addr func(testing.TB) sockaddr.Addr
	}{
		{"fake", func(tb testing.TB) sockaddr.Addr { return newFake(tb, behaviour{}).tcp }},
		{"real", realSpamd},
	} {
		b.Run(tt.name, func(b *testing.B) {
			s := newScanner(b, Options{Addrs: []sockaddr.Addr{tt.addr(b)}})
			sp := scan.NewSpool(b.TempDir(), 0)
			defer sp.Close()
			msg := message(5 << 10)
			sp.Write(msg)
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			for b.Loop() {
				j := s.BeginSpooled(b.Context(), env, sp)
				if r := j.Finish(b.Context()); r.Status != scan.Clean {
					b.Fatal(r.Err)
				}
				j.Abort()
			}
		})
	}
}
