package spamd

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/sockaddr"
)

func TestReceivedHeader(t *testing.T) {
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.FixedZone("CET", 3600))
	const date = "Mon, 23 Nov 2026 10:00:00 +0100 (CET)"
	tests := []struct {
		name string
		env  *scan.Envelope
		want string
	}{
		{"no envelope", nil, ""},
		{"no client", &scan.Envelope{Helo: "x"}, ""},
		{"not an address", &scan.Envelope{ClientAddr: "unknown"}, ""},
		{"postfix", &scan.Envelope{ClientAddr: "192.0.2.7", ClientName: "client.example.org", Helo: "client.example.org",
			MTAName: "mx.example.test", QueueID: "4Bc9xK0Zq2z1", Rcpts: []string{"bob@example.test"}},
			"Received: from client.example.org (client.example.org [192.0.2.7])\r\n" +
				"\tby mx.example.test (Postfix) with ESMTP id 4Bc9xK0Zq2z1\r\n\tfor <bob@example.test>; " + date + "\r\n"},
		{"sendmail, unresolved, two recipients, authenticated", &scan.Envelope{ClientAddr: "192.0.2.7", ClientName: "[192.0.2.7]",
			Helo: "[192.0.2.7]", AuthUser: "alice", Rcpts: []string{"a@example.test", "b@example.test"}},
			"Received: from [192.0.2.7] (unknown [192.0.2.7])\r\n\tby localhost (Postfix) with ESMTPA; " + date + "\r\n"},
		{"ipv6, no helo", &scan.Envelope{ClientAddr: "IPv6:2001:db8::1", ClientName: "unknown", QueueID: "Q"},
			"Received: from unknown (unknown [IPv6:2001:db8::1])\r\n\tby localhost (Postfix) with ESMTP id Q; " + date + "\r\n"},
		{"mapped v4", &scan.Envelope{ClientAddr: "::ffff:192.0.2.9"},
			"Received: from unknown (unknown [192.0.2.9])\r\n\tby localhost (Postfix) with ESMTP; " + date + "\r\n"},
		{"hostile words", &scan.Envelope{ClientAddr: "192.0.2.7", Helo: "evil (x)\r\nX-Spam: no; y", ClientName: "a b",
			MTAName: "mx\x00.test", Rcpts: []string{"<odd>"}},
			"Received: from evilxX-Spam:noy (ab [192.0.2.7])\r\n\tby mx.test (Postfix) with ESMTP; " + date + "\r\n"},
	}
	for _, tt := range tests {
		if got := ReceivedHeader(tt.env, now); got != tt.want {
			t.Errorf("%s:\n got %q\nwant %q", tt.name, got, tt.want)
		}
	}
}

// TestReceivedSent: spamd gets the Received field in front of the message,
// counted in Content-length; NoReceived leaves it out.
func TestReceivedSent(t *testing.T) {
	env := &scan.Envelope{ClientAddr: "192.0.2.7", Helo: "client.example.org", QueueID: "Q1"}
	for _, no := range []bool{false, true} {
		f := newFake(t, behaviour{})
		s := newScanner(t, Options{Addrs: []sockaddr.Addr{f.unix}, NoReceived: no})
		sp := scan.NewSpool(t.TempDir(), 0)
		msg := message(5000)
		sp.Write(msg)
		j := s.BeginSpooled(t.Context(), env, sp)
		if r := j.Finish(t.Context()); r.Status != scan.Clean {
			t.Fatalf("%v %v", r.Status, r.Err)
		}
		sp.Close()
		q := f.received()[0]
		head, rest, _ := bytes.Cut(q.body, []byte("\r\n\tby "))
		switch {
		case no && !bytes.Equal(q.body, msg):
			t.Errorf("NoReceived: spamd got %d bytes, not the message", len(q.body))
		case !no && (!strings.HasPrefix(string(head), "Received: from client.example.org (unknown [192.0.2.7])") || !bytes.HasSuffix(rest, msg)):
			t.Errorf("spamd got %q..., want the Received field, then the message", q.body[:min(len(q.body), 200)])
		}
	}
}
