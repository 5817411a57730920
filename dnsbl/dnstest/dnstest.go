// Package dnstest runs a fake DNS server on loopback UDP for tests.
package dnstest

import (
	"encoding/binary"
	"net"
	"strings"
	"sync"
	"testing"
)

// Server answers A queries from a table: a name in it gets its address,
// any other name NXDOMAIN. Names under the Fail zone get SERVFAIL; with
// Silent set nothing is answered.
type Server struct {
	Addr    string            // host:port, set by Start
	Records map[string]net.IP // lower-case name with final dot → A
	Fail    string            // zone answered with SERVFAIL
	Silent  bool

	mu      sync.Mutex
	queries []string
}

// Start runs f until the test ends.
func Start(t testing.TB, f *Server) *Server {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.Addr = pc.LocalAddr().String()
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp := f.answer(buf[:n]); resp != nil {
				pc.WriteTo(resp, from)
			}
		}
	}()
	return f
}

func (f *Server) answer(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	// The question: labels up to a zero byte, then type and class.
	i := 12
	var labels []string
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i+1:])
	question := q[12 : i+5]
	name := strings.ToLower(strings.Join(labels, ".") + ".")
	f.mu.Lock()
	f.queries = append(f.queries, name)
	f.mu.Unlock()
	if f.Silent {
		return nil
	}
	rcode, ip := uint16(3), net.IP(nil) // NXDOMAIN
	switch {
	case f.Fail != "" && strings.HasSuffix(name, "."+f.Fail+"."):
		rcode = 2
	case f.Records[name] != nil:
		rcode = 0
		if qtype == 1 {
			ip = f.Records[name].To4()
		}
	}
	resp := make([]byte, 12, 64)
	copy(resp, q[:2])                                  // ID
	binary.BigEndian.PutUint16(resp[2:], 0x8580|rcode) // QR AA RD RA
	binary.BigEndian.PutUint16(resp[4:], 1)
	if ip != nil {
		binary.BigEndian.PutUint16(resp[6:], 1)
	}
	resp = append(resp, question...)
	if ip != nil {
		resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4)
		resp = append(resp, ip...)
	}
	return resp
}

// Queries is how many queries the server has received.
func (f *Server) Queries() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.queries)
}
