package milter

import (
	"bytes"
	"encoding/binary"
	"io"
	"log"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// packet frames one milter command as an MTA sends it.
func packet(code byte, data []byte) []byte {
	b := make([]byte, 5, 5+len(data))
	binary.BigEndian.PutUint32(b, uint32(len(data)+1))
	b[4] = code
	return append(b, data...)
}

func cstr(s ...string) []byte {
	var b []byte
	for _, x := range s {
		b = append(append(b, x...), 0)
	}
	return b
}

// postfixLike is the command sequence Postfix sends for one short message.
func postfixLike() []byte {
	var b bytes.Buffer
	b.Write(packet('D', append([]byte{'C'}, cstr("j", "mx.example.test", "{daemon_name}", "smtpd")...)))
	b.Write(packet('C', append(append(cstr("client.example"), '4', 0x10, 0xe1), cstr("192.0.2.7")...)))
	b.Write(packet('H', cstr("client.example")))
	b.Write(packet('D', append([]byte{'M'}, cstr("i", "4XyZ")...)))
	b.Write(packet('M', cstr("<sender@remote.test>")))
	b.Write(packet('R', cstr("<alice@example.test>")))
	b.Write(packet('L', cstr("Subject", "hello")))
	b.Write(packet('L', cstr("X-Virus-Status", "forged")))
	b.Write(packet('N', nil))
	b.Write(packet('B', []byte("body line\r\n")))
	b.Write(packet('E', nil))
	b.Write(packet('A', nil))
	return b.Bytes()
}

// FuzzPackets sends arbitrary milter commands after a valid negotiation. The
// server must answer or hang up, never panic or hang, and must release every
// scan and connection when the MTA goes away.
func FuzzPackets(f *testing.F) {
	f.Add(postfixLike())
	f.Add(append(postfixLike(), postfixLike()...))
	f.Add(packet('E', nil))
	f.Add(packet('B', []byte("before any command")))
	f.Add(append(packet('M', cstr("<a@b>")), packet('L', []byte("no-nul"))...))
	f.Add(packet('C', []byte("x\x00")))

	var logs syncBuffer
	log.SetOutput(&logs) // go-milter reports recovered panics here
	defer log.SetOutput(io.Discard)
	sc := &recScanner{marker: "VIRUS"}
	srv := NewServer(Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), ReadTimeout: 2 * time.Second}, settings(sc))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	go srv.Serve(ln)
	defer ln.Close()
	var optneg bytes.Buffer
	binary.Write(&optneg, binary.BigEndian, []uint32{6, 0x1ff, 0x1fffff})
	hello := packet('O', optneg.Bytes())

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); io.Copy(io.Discard, c) }()
		c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		c.Write(hello)
		c.Write(data)
		c.(*net.TCPConn).CloseWrite()
		wg.Wait() // the server hung up: it read everything or refused
		c.Close()
		for end := time.Now().Add(3 * time.Second); srv.Sessions() != 0 || sc.openJobs() != 0; time.Sleep(time.Millisecond) {
			if time.Now().After(end) {
				t.Fatalf("after the MTA left: %d sessions, %d scan jobs still open", srv.Sessions(), sc.openJobs())
			}
		}
		if p := logs.lines("panic"); len(p) > 0 {
			t.Fatalf("panic in a session: %s", strings.Join(p, "\n"))
		}
	})
}
