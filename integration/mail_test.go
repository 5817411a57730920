//go:build integration

package integration

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// mailFiles lists every message file m has delivered: Postfix's maildirs
// (every user, postmaster included) or the files of Sendmail's sink.
func mailFiles(m *mta) []string {
	dir := filepath.Join(m.dir, "mail")
	if m.name == "sendmail" {
		dir = filepath.Join(m.dir, "sink", "msg")
	}
	var files []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		// Skip maildir's tmp/: files there are still being written.
		if err == nil && d.Type().IsRegular() && filepath.Base(filepath.Dir(p)) != "tmp" {
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	return files
}

// storedMsg is a delivered message split at its first empty line.
type storedMsg struct {
	path   string
	header []string // header fields, folded lines joined with "\n"
	body   []byte
}

func readStored(path string) (*storedMsg, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	head, body, _ := bytes.Cut(b, []byte("\n\n"))
	m := &storedMsg{path: path, body: body}
	for _, line := range strings.Split(string(head), "\n") {
		if (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) && len(m.header) > 0 {
			m.header[len(m.header)-1] += "\n" + line
			continue
		}
		m.header = append(m.header, line)
	}
	// smtp-sink ends each file it writes with one line break of its own.
	if len(m.header) > 0 && strings.HasPrefix(m.header[0], "X-Client-Addr:") {
		m.body = bytes.TrimSuffix(m.body, []byte("\n"))
	}
	return m, nil
}

// values returns the values of the header fields called name.
func (m *storedMsg) values(name string) []string {
	var v []string
	for _, h := range m.header {
		k, val, ok := strings.Cut(h, ":")
		if ok && strings.EqualFold(k, name) {
			v = append(v, strings.TrimSpace(val))
		}
	}
	return v
}

// findDelivered returns the messages delivered by m that contain tok in
// their header; it waits up to wait for at least one to appear.
func findDelivered(m *mta, tok string, wait time.Duration) []*storedMsg {
	var found []*storedMsg
	waitFor(wait, func() bool {
		found = found[:0]
		for _, f := range mailFiles(m) {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			head, _, _ := bytes.Cut(b, []byte("\n\n"))
			if bytes.Contains(head, []byte(tok)) {
				if s, err := readStored(f); err == nil {
					found = append(found, s)
				}
			}
		}
		return len(found) > 0
	})
	return found
}

// ledger records what each test expected of each message, so the last test
// can check every accepted message was delivered once and no refused one
// was delivered at all.
var ledger = struct {
	sync.Mutex
	accepted map[string][]string // mta name → tokens
	refused  map[string][]string
}{accepted: map[string][]string{}, refused: map[string][]string{}}

func recordAccepted(m *mta, tok string) {
	ledger.Lock()
	defer ledger.Unlock()
	ledger.accepted[m.name] = append(ledger.accepted[m.name], tok)
}

func recordRefused(m *mta, tok string) {
	ledger.Lock()
	defer ledger.Unlock()
	ledger.refused[m.name] = append(ledger.refused[m.name], tok)
}

// looksLikeDSN says why a delivered message looks like a bounce (a delivery
// status notification, or any message to the test's sender), or "".
func looksLikeDSN(s *storedMsg) string {
	for _, h := range s.header {
		l := strings.ToLower(h)
		switch {
		case strings.HasPrefix(l, "content-type:") && strings.Contains(l, "multipart/report"):
			return "Content-Type multipart/report"
		case strings.HasPrefix(l, "return-path:") && strings.Contains(l, "<>"):
			return "null sender (Return-Path: <>)"
		case strings.HasPrefix(l, "x-mail-args:") && strings.HasPrefix(strings.TrimSpace(l[len("x-mail-args:"):]), "<>"):
			return "null sender (MAIL FROM:<>)"
		case strings.HasPrefix(l, "x-rcpt-args:") && strings.Contains(l, sender):
			return "sent to the original sender " + sender
		case strings.HasPrefix(l, "delivered-to:") && strings.Contains(l, sender):
			return "delivered to the original sender " + sender
		case strings.HasPrefix(l, "from:") && strings.Contains(l, "mailer-daemon"):
			return "From: MAILER-DAEMON"
		}
	}
	if bytes.Contains(s.body, []byte("message/delivery-status")) {
		return "a message/delivery-status part"
	}
	return ""
}

// checkDelivered fails t unless every token in accepted was delivered by m
// exactly once and none in refused was.
func checkDelivered(t *testing.T, m *mta, accepted, refused []string) {
	t.Helper()
	count := map[string]int{}
	for _, f := range mailFiles(m) {
		s, err := readStored(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		head := strings.Join(s.header, "\n")
		for _, tok := range accepted {
			if strings.Contains(head, tok) {
				count[tok]++
			}
		}
		for _, tok := range refused {
			if strings.Contains(head, tok) {
				t.Errorf("%s delivered a message it had refused (%s): %s", m.name, tok, f)
			}
		}
	}
	for _, tok := range accepted {
		if count[tok] != 1 {
			t.Errorf("%s delivered the accepted message %s %d times, want once", m.name, tok, count[tok])
		}
	}
}
