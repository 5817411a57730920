package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"
)

// message is one message as an MTA hands it to a milter: header fields
// (name, value without the leading space, continuation lines joined by LF)
// and the body with CRLF line ends.
type message struct {
	headers [][2]string
	body    []byte
	source  string // corpus file, "" for a made-up message
}

func (m *message) size() int {
	n := len(m.body) + 2
	for _, h := range m.headers {
		n += len(h[0]) + len(h[1]) + 4
	}
	return n
}

// workload hands out the messages of a run: the corpus (or the one made-up
// body) in a fixed order, each with a header of its own so that no scanner
// can answer from a cache, every eicarEvery-th with the EICAR test string.
type workload struct {
	corpus     []*message
	eicarEvery int
	run        string
	seq        atomic.Int64
}

func newWorkload(corpus []*message, eicarEvery int) *workload {
	return &workload{corpus: corpus, eicarEvery: eicarEvery, run: fmt.Sprintf("%x", time.Now().UnixNano())}
}

// get returns message i (counted from 1) of this run.
func (w *workload) get(i int) *message {
	base := w.corpus[(i-1)%len(w.corpus)]
	n := w.seq.Add(1)
	m := &message{source: base.source, body: base.body}
	m.headers = make([][2]string, 0, len(base.headers)+1)
	m.headers = append(m.headers, [2]string{"X-Bench-Id", fmt.Sprintf("%s.%d", w.run, n)})
	m.headers = append(m.headers, base.headers...)
	if w.eicarEvery > 0 && i%w.eicarEvery == 0 {
		b := make([]byte, 0, len(base.body)+80)
		b = append(b, base.body...)
		if len(b) > 0 && !bytes.HasSuffix(b, []byte("\r\n")) {
			b = append(b, "\r\n"...)
		}
		b = append(b, eicar()...)
		b = append(b, "\r\n"...)
		m.body = b
	}
	return m
}

// eicar is the EICAR test string, put together here so that this source is
// no test file itself.
func eicar() string {
	return `X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR` + `-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`
}

// synthetic is the made-up message of the foundation benchmarks.
func synthetic(size int) []*message {
	return []*message{{
		headers: [][2]string{{"Message-ID", "<bench@remote.test>"}, {"Subject", "benchmark message"}},
		body:    makeBody(size),
	}}
}

// loadCorpus reads every message under dir: the .txt files if there are
// any (the npm package of the SpamAssassin corpus keeps a .json beside
// each), else every regular file. The order is fixed but shuffled, so ham
// and spam alternate. limit > 0 keeps the first limit messages of that order.
func loadCorpus(dir string, limit int) ([]*message, error) {
	var txt, all []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			all = append(all, p)
			if strings.HasSuffix(p, ".txt") {
				txt = append(txt, p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	files := all
	if len(txt) > 0 {
		files = txt
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("corpus %s: no messages", dir)
	}
	sort.Strings(files)
	rand.New(rand.NewPCG(6, 6046)).Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
	if limit > 0 && limit < len(files) {
		files = files[:limit]
	}
	out := make([]*message, 0, len(files))
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		m := parseMessage(raw)
		m.source = f
		out = append(out, m)
	}
	return out, nil
}

// parseMessage splits a raw message (LF or CRLF, maybe with an mbox
// "From " line first) into header fields and a CRLF body, as an MTA would
// pass them to a milter.
func parseMessage(raw []byte) *message {
	raw = bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n"))
	if bytes.HasPrefix(raw, []byte("From ")) {
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			raw = raw[i+1:]
		} else {
			raw = nil
		}
	}
	m := &message{}
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		line := raw
		rest := []byte(nil)
		if i >= 0 {
			line, rest = raw[:i], raw[i+1:]
		}
		if len(line) == 0 {
			raw = rest
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && len(m.headers) > 0 {
			h := &m.headers[len(m.headers)-1]
			h[1] += "\n" + string(line)
			raw = rest
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || bytes.ContainsAny(line[:colon], " \t") {
			break // not a header: the body starts here, as an MTA sees it
		}
		m.headers = append(m.headers, [2]string{string(line[:colon]), strings.TrimLeft(string(line[colon+1:]), " \t")})
		raw = rest
	}
	m.body = bytes.ReplaceAll(raw, []byte("\n"), []byte("\r\n"))
	return m
}
