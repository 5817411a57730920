package recipient

import (
	"bufio"
	"context"
	"errors"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nobounce/nobounce/recipient/smtptest"
	"github.com/nobounce/nobounce/sockaddr"
)

func TestReadReply(t *testing.T) {
	tests := []struct {
		in   string
		want Reply
		err  bool
	}{
		{"250 OK\r\n", Reply{250, "", []string{"OK"}}, false},
		{"250 OK\n", Reply{250, "", []string{"OK"}}, false},
		{"220\r\n", Reply{220, "", []string{""}}, false},
		{"550 5.1.1 <x@example.test>: Recipient address rejected: User unknown in virtual mailbox table\r\n",
			Reply{550, "5.1.1", []string{"<x@example.test>: Recipient address rejected: User unknown in virtual mailbox table"}}, false},
		{"250-postfix.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n",
			Reply{250, "", []string{"postfix.test", "PIPELINING", "8BITMIME"}}, false},
		// Postfix repeats the enhanced code on every line.
		{"550-5.7.1 first\r\n550-5.7.1 second\r\n550 5.7.1 third\r\n",
			Reply{550, "5.7.1", []string{"first", "second", "third"}}, false},
		// An enhanced code whose class differs from the reply's is text.
		{"250 5.1.1 odd\r\n", Reply{250, "", []string{"5.1.1 odd"}}, false},
		{"451 4.4.3\r\n", Reply{451, "4.4.3", []string{""}}, false},
		{"550 5.1 not enhanced\r\n", Reply{550, "", []string{"5.1 not enhanced"}}, false},
		{"550 5.1.1000 too long a part\r\n", Reply{550, "", []string{"5.1.1000 too long a part"}}, false},
		{"", Reply{}, true},
		{"25\r\n", Reply{}, true},
		{"abc OK\r\n", Reply{}, true},
		{"199 too low\r\n", Reply{}, true},
		{"600 too high\r\n", Reply{}, true},
		{"250_OK\r\n", Reply{}, true},
		{"250-more\r\n", Reply{}, true},       // closed before the last line
		{"250-a\r\n550 b\r\n", Reply{}, true}, // codes differ
		{"250 no line end", Reply{}, true},    // closed mid-line
		{"250 " + strings.Repeat("x", MaxReplyLine) + "\r\n", Reply{}, true},
		{strings.Repeat("250-x\r\n", MaxReplyLines) + "250 x\r\n", Reply{}, true},
	}
	for _, tt := range tests {
		got, err := ReadReply(bufio.NewReader(strings.NewReader(tt.in)))
		if (err != nil) != tt.err || !tt.err && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ReadReply(%q) = %+v, %v; want %+v, error %v", clip(tt.in), got, err, tt.want, tt.err)
		}
	}
}

func TestReplyString(t *testing.T) {
	tests := []struct {
		r    Reply
		want string
	}{
		{Reply{250, "", []string{"OK"}}, "250 OK"},
		{Reply{550, "5.1.1", []string{"a", "b"}}, "550 5.1.1 a b"},
		{Reply{220, "", []string{""}}, "220"},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.r, got, tt.want)
		}
	}
}

func FuzzReadReply(f *testing.F) {
	for _, s := range []string{
		"250 OK\r\n", "250-a\r\n250 b\r\n", "550-5.7.1 a\r\n550 5.7.1 b\r\n", "220\n", "421 4.3.2 bye",
		"250-a\r\n550 b\r\n", "999 x\r\n", "550 5.1.1\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bufio.NewReader(strings.NewReader(string(in)))
		for i := 0; i < 5; i++ {
			rep, err := ReadReply(r)
			if err != nil {
				return
			}
			if rep.Code < 200 || rep.Code > 599 || len(rep.Lines) == 0 || len(rep.Lines) > MaxReplyLines {
				t.Fatalf("ReadReply(%q) = %+v", in, rep)
			}
			if rep.Enhanced != "" && rep.Enhanced[0] != byte('0'+rep.Code/100) {
				t.Fatalf("ReadReply(%q): enhanced %q with code %d", in, rep.Enhanced, rep.Code)
			}
			// What parses renders to a line that parses the same.
			line := rep.String()
			if strings.ContainsAny(line, "\r\n") {
				continue // a bare CR inside a line is kept as text
			}
			again, err := ReadReply(bufio.NewReader(strings.NewReader(line + "\r\n")))
			if err != nil || again.Code != rep.Code || again.Enhanced != rep.Enhanced {
				t.Fatalf("ReadReply(%q) = %+v, String %q reads back as %+v, %v", in, rep, line, again, err)
			}
		}
	})
}

func TestClientDialogue(t *testing.T) {
	be := smtptest.Start(t, smtptest.Config{Users: []string{"alice@example.test"}})
	var trace []string
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, greet, err := Dial(ctx, be.Addr, time.Second, func(dir, line string) { trace = append(trace, dir+" "+line) })
	if err != nil {
		t.Fatal(err)
	}
	if greet.Code != 220 {
		t.Fatalf("greeting %v", greet)
	}
	steps := []struct {
		cmd  string
		code int
	}{
		{"EHLO probe.test", 250},
		{"MAIL FROM:<>", 250},
		{"RCPT TO:<alice@example.test>", 250},
		{"RCPT TO:<nobody@example.test>", 550},
	}
	for _, s := range steps {
		rep, err := c.Cmd(ctx, s.cmd)
		if err != nil || rep.Code != s.code {
			t.Fatalf("%s: %v, %v; want %d", s.cmd, rep, err, s.code)
		}
	}
	rep, err := c.Data(ctx, "Subject: x\r\n\r\n.dot\r\nend\r\n")
	if err != nil || rep.Code != 250 {
		t.Fatalf("DATA: %v, %v", rep, err)
	}
	if got := be.LastMessage(); got != "Subject: x\r\n\r\n..dot\r\nend\r\n" {
		t.Errorf("message on the wire %q: want dot-stuffed", got)
	}
	if _, err := c.Cmd(ctx, "NOOP\r\nRCPT TO:<x>"); err == nil {
		t.Error("a command with a line break was sent")
	}
	c.Quit()
	if len(trace) < 10 || trace[0] != "< 220 backend.test ESMTP" || trace[1] != "> EHLO probe.test" {
		t.Errorf("trace %q", trace)
	}
}

func TestDialFailures(t *testing.T) {
	// Nothing listens.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := sockaddr.Addr{Network: "tcp", Address: ln.Addr().String()}
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := Dial(ctx, closed, time.Second, nil); err == nil {
		t.Error("Dial to a closed port succeeded")
	}
	// A server that greets with 554.
	be := smtptest.Start(t, smtptest.Config{Greeting: "554 5.3.2 go away"})
	_, greet, err := Dial(ctx, be.Addr, time.Second, nil)
	if err == nil || greet.Code != 554 {
		t.Errorf("Dial to a 554 greeting: %v, %v", greet, err)
	}
	// A server that never speaks: the context's deadline ends the wait.
	silent := smtptest.Start(t, smtptest.Config{Silent: true})
	short, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	start := time.Now()
	_, _, err = Dial(short, silent.Addr, time.Second, nil)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || time.Since(start) > 2*time.Second {
		t.Errorf("Dial to a silent server: %v after %v, want a timeout at 200ms", err, time.Since(start))
	}
}
