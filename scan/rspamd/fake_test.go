package rspamd

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// behaviour is what the fake rspamd does with each request. The zero value
// answers okAnswer with 200.
type behaviour struct {
	status  int           // HTTP status; 0 = 200
	answer  string        // body; "" = okAnswer
	raw     string        // instead of an HTTP answer, write this on the bare connection and close it
	drip    time.Duration // write the body one byte at a time, this long apart
	noReply bool          // read the request, then never answer
	closeIt bool          // read the request, then close the connection without a word
}

// okAnswer is rspamd 3.4's answer for a clean message (shortened).
const okAnswer = `{"is_skipped":false,"score":0.100000,"required_score":15.0,"action":"no action",` +
	`"symbols":{"ONCE_RECEIVED":{"name":"ONCE_RECEIVED","score":0.100000,"metric_score":0.100000},` +
	`"MIME_GOOD":{"name":"MIME_GOOD","score":-0.100000,"metric_score":-0.100000,"options":["text/plain"]},` +
	`"RCVD_NO_TLS_LAST":{"name":"RCVD_NO_TLS_LAST","score":0.100000,"metric_score":0.100000}},` +
	`"messages":{},"message-id":"1@example.org","time_real":0.01}`

// gtubeAnswer is rspamd 3.4's answer to GTUBE, as seen.
const gtubeAnswer = `{"is_skipped":true,"score":15.0,"required_score":15.0,"action":"reject",` +
	`"symbols":{"GTUBE":{"name":"GTUBE","score":0.0,"metric_score":0.0}},` +
	`"messages":{"smtp_message":"Gtube pattern"},"message-id":"undef","time_real":0.143078}`

// request is what the fake received.
type request struct {
	method, path string
	header       http.Header
	body         []byte
}

// fakeRspamd is an HTTP server standing in for rspamd's normal worker, for
// the faults a real one cannot be made to show: garbage, truncated
// answers, slow drip, hangs.
type fakeRspamd struct {
	t    testing.TB
	b    behaviour
	srv  *httptest.Server
	url  string
	quit chan struct{}

	mu   sync.Mutex
	reqs []*request
}

func newFake(t testing.TB, b behaviour) *fakeRspamd {
	t.Helper()
	f := &fakeRspamd{t: t, b: b, quit: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	f.url = f.srv.URL
	t.Cleanup(func() {
		close(f.quit)
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
	return f
}

func (f *fakeRspamd) received() []*request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*request(nil), f.reqs...)
}

func (f *fakeRspamd) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.URL.Path == "/ping" && r.Method == http.MethodGet {
		io.WriteString(w, "pong\r\n")
		return
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, &request{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: body})
	f.mu.Unlock()
	if r.URL.Path != "/checkv2" || r.Method != http.MethodPost {
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `{"error":"invalid command","error_domain":"protocol-error"}`)
		return
	}
	b := f.b
	switch {
	case b.noReply:
		select {
		case <-f.quit:
		case <-r.Context().Done():
		}
		return
	case b.raw != "" || b.closeIt:
		c, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		io.WriteString(c, b.raw)
		c.Close()
		return
	}
	answer := b.answer
	if answer == "" {
		answer = okAnswer
	}
	status := b.status
	if status == 0 {
		status = http.StatusOK
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Connection", "close") // as rspamd 3.4 does
	if b.drip > 0 {
		w.WriteHeader(status)
		for i := 0; i < len(answer); i++ {
			if _, err := w.Write([]byte{answer[i]}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-f.quit:
				return
			case <-r.Context().Done():
				return
			case <-time.After(b.drip):
			}
		}
		return
	}
	w.WriteHeader(status)
	io.WriteString(w, answer)
}

// refusedURL returns a URL where nothing listens.
func refusedURL(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Addr().String()
	l.Close()
	return "http://" + a
}

// message returns a test message in wire form, size bytes long.
func message(size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: a@example.org\r\nTo: b@example.org\r\nSubject: test\r\n\r\n")
	line := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz", 2) + "\r\n"
	for i := 0; b.Len() < size; i++ {
		b.WriteString(line[i%len(line):])
	}
	return b.Bytes()[:max(size, 0)]
}
