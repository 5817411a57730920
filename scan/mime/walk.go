package mime

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/emersion/go-message/textproto"

	"github.com/nobounce/nobounce/scan"
)

// walker is the state of one walk.
type walker struct {
	s      *Scanner
	o      *Options
	rep    *Report
	parts  int   // MIME parts seen
	budget int64 // bytes that may still be taken out of archives
	over   map[string]bool
	files  []*os.File // spooled archives, removed by cleanup
}

func (s *Scanner) newWalker() *walker {
	return &walker{s: s, o: &s.o, rep: &Report{}, budget: 4 * s.o.ArchiveMaxSize, over: map[string]bool{}}
}

func (w *walker) cleanup() {
	for _, f := range w.files {
		f.Close()
		os.Remove(f.Name())
	}
	w.files = nil
}

// hit records a finding with the reply its rule gives.
func (w *walker) hit(rule, detail, where, name string, advice scan.Advice) {
	if len(w.rep.Hits) >= maxHits {
		return
	}
	for _, h := range w.rep.Hits {
		if h.Rule == rule && h.Detail == detail && h.Where == where {
			return
		}
	}
	h := Hit{Rule: rule, Detail: detail, Where: where, Advice: advice}
	switch advice {
	case scan.AdviseReject:
		h.Code, h.Enhanced = 550, "5.7.1"
		switch rule {
		case RuleMalformed:
			h.Code, h.Enhanced, h.Reply = MalformedCode, MalformedEnhanced, MalformedReply
		case RuleOverLimit:
			h.Code, h.Enhanced, h.Reply = OverLimitCode, OverLimitEnhanced, OverLimitReply
		default:
			h.Reply = strings.ReplaceAll(w.o.Reply, NamePlaceholder, replyName(name))
		}
	case scan.AdviseTempFail:
		h.Code, h.Enhanced = 451, "4.7.1"
		if rule == RuleOverLimit {
			h.Reply = OverLimitReply
		}
	}
	w.rep.Hits = append(w.rep.Hits, h)
}

// replyName shortens a file name for a reply; the verdict sanitizes it.
func replyName(name string) string {
	const max = 80
	if r := []rune(name); len(r) > max {
		return string(r[:max-3]) + "..."
	}
	return name
}

// overLimit records that a limit was passed (once per limit).
func (w *walker) overLimit(what, where string) {
	if w.over[what] {
		return
	}
	w.over[what] = true
	w.hit(RuleOverLimit, what, where, "", w.o.OverLimit)
}

func (w *walker) malformed(what, where string) {
	w.hit(RuleMalformed, what, where, "", w.o.Malformed)
}

// joinPath numbers parts as IMAP does (RFC 3501 §6.4.5): "1", "1.2".
func joinPath(path string, i int) string {
	if path == "" {
		return strconv.Itoa(i)
	}
	return path + "." + strconv.Itoa(i)
}

// message walks a whole message: its header, then its body.
func (w *walker) message(br *bufio.Reader) {
	w.entity(br, "", true, 1)
}

// entity walks one MIME entity read from br. path is its IMAP part number;
// root says it is the top of a message (the whole message or an attached
// one), whose single body is part path.1 and whose header rules apply when
// path is "". depth counts the levels of nesting.
func (w *walker) entity(br *bufio.Reader, path string, root bool, depth int) {
	where := "part " + path
	if root {
		where = "header"
		if path != "" {
			where = "header of message in part " + path
		}
	}
	h, pushback, err := w.readHeader(br, where)
	if err != nil {
		return // over the header limit; already reported
	}
	if path == "" && root {
		w.headerRules(h)
	}
	if pushback != nil {
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(pushback), br), partBuffer)
	}
	ct := h.Get("Content-Type")
	declared, params, ok := mediaType(ct)
	if !ok && ct != "" {
		w.malformed("bad Content-Type "+strconv.Quote(trimForDetail(ct)), where)
	}
	if n := len(h.Values("Content-Type")); n > 1 {
		w.malformed("Content-Type given "+strconv.Itoa(n)+" times", where)
	}
	if declared == "" || !strings.Contains(declared, "/") {
		declared = "text/plain"
	}
	leafPath := path
	if root {
		leafPath = joinPath(path, 1)
	}
	switch {
	case strings.HasPrefix(declared, "multipart/"):
		boundary := paramValue(params, "boundary")
		switch {
		case boundary == "":
			w.malformed("multipart without a boundary", where)
		case len(boundary) > maxBoundary:
			w.malformed("multipart boundary longer than "+strconv.Itoa(maxBoundary), where)
		default:
			w.multipart(br, path, boundary, declared, depth)
			return
		}
	case declared == "message/rfc822" || declared == "message/global":
		if depth >= w.o.MaxDepth {
			w.overLimit("max-depth "+strconv.Itoa(w.o.MaxDepth), "part "+leafPath)
			return
		}
		w.parts++
		if w.parts > w.o.MaxParts {
			w.overLimit("max-parts "+strconv.Itoa(w.o.MaxParts), "part "+leafPath)
			return
		}
		dec, known := newDecoder(h.Get("Content-Transfer-Encoding"), br)
		if !known {
			w.malformed("unknown Content-Transfer-Encoding "+strconv.Quote(trimForDetail(h.Get("Content-Transfer-Encoding"))), "part "+leafPath)
		}
		mbr := partReaders.get(dec)
		w.entity(mbr, leafPath, true, depth+1)
		partReaders.put(mbr)
		io.Copy(io.Discard, dec)
		if p := dec.problem(); p != "" {
			w.malformed(p, "part "+leafPath)
		}
		return
	}
	w.parts++
	if w.parts > w.o.MaxParts {
		w.overLimit("max-parts "+strconv.Itoa(w.o.MaxParts), "part "+leafPath)
		return
	}
	w.leaf(br, h, leafPath, declared, params, depth)
}

// Buffers and bounds of the walk.
const (
	partBuffer  = 4096
	maxBoundary = 200 // RFC 2046 allows 70; longer ones are refused as malformed
)

func paramValue(ps []param, name string) string {
	for _, p := range ps {
		if p.name == name {
			return p.value
		}
	}
	return ""
}

func trimForDetail(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// multipart walks the parts of a multipart body.
func (w *walker) multipart(br *bufio.Reader, path, boundary, declared string, depth int) {
	where := "part " + path
	if path == "" {
		where = "message body"
	}
	if depth >= w.o.MaxDepth {
		w.overLimit("max-depth "+strconv.Itoa(w.o.MaxDepth), where)
		return
	}
	sp := newSplitter(br, boundary)
	i := 0
	for {
		part := sp.next()
		if part == nil {
			break
		}
		i++
		child := joinPath(path, i)
		if w.parts >= w.o.MaxParts {
			w.parts++
			w.overLimit("max-parts "+strconv.Itoa(w.o.MaxParts), "part "+child)
			io.Copy(io.Discard, part)
			continue
		}
		pbr := partReaders.get(part)
		if declared == "multipart/digest" {
			w.digestPart(pbr, child, depth+1)
		} else {
			w.entity(pbr, child, false, depth+1)
		}
		io.Copy(io.Discard, pbr)
		partReaders.put(pbr)
	}
	switch {
	case !sp.started:
		w.malformed("multipart without its boundary line", where)
	case sp.truncated():
		w.malformed("multipart not closed (truncated)", where)
	}
}

// digestPart walks a part of a multipart/digest, whose default type is
// message/rfc822 (RFC 2046 §5.1.5).
func (w *walker) digestPart(br *bufio.Reader, path string, depth int) {
	// Peek at the part's header for a Content-Type; without one, the part
	// is a message.
	head, _ := br.Peek(min(br.Buffered()+partBuffer, partBuffer))
	end := bytes.Index(head, []byte("\n\n"))
	if e2 := bytes.Index(head, []byte("\r\n\r\n")); e2 >= 0 && (end < 0 || e2 < end) {
		end = e2
	}
	if bytes.HasPrefix(head, []byte("\n")) || bytes.HasPrefix(head, []byte("\r\n")) {
		end = 0
	}
	if end >= 0 && !bytes.Contains(bytes.ToLower(head[:end]), []byte("content-type:")) {
		// Skip the (empty or type-less) part header and walk a message.
		if _, _, err := w.readHeader(br, "part "+path); err != nil {
			return
		}
		if depth >= w.o.MaxDepth {
			w.overLimit("max-depth "+strconv.Itoa(w.o.MaxDepth), "part "+path)
			return
		}
		w.entity(br, path, true, depth+1)
		return
	}
	w.entity(br, path, false, depth)
}

// readHeader reads a header block up to its empty line, bounded by
// MaxHeaderBytes. A line that is not a header field ends the block without
// being part of it: it is returned as pushback, the first line of the body
// (as Postfix treats it). On passing the bound it reports the limit, reads
// on to the end of the entity and returns an error.
func (w *walker) readHeader(br *bufio.Reader, where string) (textproto.Header, []byte, error) {
	var block []byte
	var pushback []byte
	var cur []byte // the line being assembled from partial reads
	inField := false
	for {
		slice, err := br.ReadSlice('\n')
		cur = append(cur, slice...)
		if len(block)+len(cur) > w.o.MaxHeaderBytes {
			w.overLimit("max-header-bytes "+strconv.Itoa(w.o.MaxHeaderBytes), where)
			io.Copy(io.Discard, br)
			return textproto.Header{}, nil, errOverLimit
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		line := cur
		cur = nil
		if len(line) == 0 {
			break // end of input: a header without a body
		}
		trimmed := bytes.TrimRight(line, "\r\n")
		if len(trimmed) == 0 && bytes.HasSuffix(line, []byte("\n")) {
			break // the empty line
		}
		switch {
		case (line[0] == ' ' || line[0] == '\t') && inField:
			block = append(block, line...)
		case isFieldLine(trimmed):
			block = append(block, line...)
			inField = true
		default:
			if len(block) > 0 || len(bytes.TrimSpace(line)) > 0 {
				w.malformed("header line without a field name", where)
			}
			pushback = append([]byte(nil), line...)
			err = nil
		}
		if pushback != nil || err != nil {
			break
		}
	}
	if len(block) > 0 && !bytes.HasSuffix(block, []byte("\n")) {
		block = append(block, '\r', '\n')
	}
	block = append(block, '\r', '\n')
	hbr := partReaders.get(bytes.NewReader(block))
	h, err := textproto.ReadHeader(hbr)
	partReaders.put(hbr)
	if err != nil {
		// Not expected: every line was checked. Walk on with what was read.
		w.malformed("header: "+trimForDetail(err.Error()), where)
	}
	return h, pushback, nil
}

var errOverLimit = errors.New("over a limit")

// isFieldLine reports whether line is "Name: value" with a field name of
// printable ASCII (RFC 5322 §3.6.8; white space before the colon is
// tolerated, as go-message does).
func isFieldLine(line []byte) bool {
	i := bytes.IndexByte(line, ':')
	if i <= 0 {
		return false
	}
	name := bytes.TrimRight(line[:i], " \t")
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

// headerRules matches the rules against the message header's fields.
func (w *walker) headerRules(h textproto.Header) {
	if len(w.s.headerRules) == 0 {
		return
	}
	for i, r := range w.s.headerRules {
		fields := h.FieldsByKey(r.Field)
		for fields.Next() {
			v := decodeWords(fields.Value())
			if r.Re.MatchString(v) {
				w.ruleHit(RuleHeader, r, i, "header "+r.Field)
				break
			}
		}
	}
}

func (w *walker) ruleHit(kind string, r Rule, i int, where string) {
	w.hit(kind, "#"+strconv.Itoa(i+1)+" "+trimForDetail(r.Re.String()), where, "", r.Action)
	h := &w.rep.Hits[len(w.rep.Hits)-1]
	if h.Rule == kind && r.Reply != "" {
		h.Reply = r.Reply
	}
}

// partNames lists the file names of a part: every filename of every
// Content-Disposition field and name of every Content-Type field (mail
// programs differ on which of two fields they believe), as the lenient
// parser reads them, without repeats.
func partNames(h textproto.Header) []string {
	var names []string
	add := func(n string) {
		// Spaces at the end are kept: they are a trick to be seen.
		if strings.TrimSpace(n) == "" {
			return
		}
		for _, x := range names {
			if x == n {
				return
			}
		}
		names = append(names, n)
	}
	fields := h.FieldsByKey("Content-Disposition")
	for fields.Next() {
		_, rest, _ := strings.Cut(fields.Value(), ";")
		for _, p := range parseParams(rest) {
			if p.name == "filename" {
				add(p.value)
			}
		}
	}
	fields = h.FieldsByKey("Content-Type")
	for fields.Next() {
		_, rest, _ := strings.Cut(fields.Value(), ";")
		for _, p := range parseParams(rest) {
			if p.name == "name" {
				add(p.value)
			}
		}
	}
	return names
}

// leaf walks a part that is not a multipart.
func (w *walker) leaf(br *bufio.Reader, h textproto.Header, path, declared string, params []param, depth int) {
	where := "part " + path
	cte := h.Get("Content-Transfer-Encoding")
	dec, known := newDecoder(cte, br)
	if !known {
		w.malformed("unknown Content-Transfer-Encoding "+strconv.Quote(trimForDetail(cte)), where)
	}
	names := partNames(h)
	c := &content{
		where:    where,
		path:     path,
		names:    names,
		declared: declared,
		charset:  strings.ToLower(paramValue(params, "charset")),
		depth:    depth,
		mime:     true,
	}
	if uu, ok := dec.(*uuDecoder); ok {
		c.uu = uu
	}
	w.content(dec, c)
	io.Copy(io.Discard, dec)
	if p := dec.problem(); p != "" {
		w.malformed(p, where)
	}
}

// describe writes a location with its names: `part 2 "a.zip"`.
func describe(where string, names []string) string {
	for _, n := range names {
		where += " " + quoteName(n)
	}
	return where
}

// Pools of read buffers: a walk makes several per part, and most parts
// are small.
var (
	topReaders  = newReaderPool(topBuffer)
	partReaders = newReaderPool(partBuffer)
	headReaders = newReaderPool(headSize)
	copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}
)

type readerPool struct{ sync.Pool }

func newReaderPool(size int) *readerPool {
	return &readerPool{sync.Pool{New: func() any { return bufio.NewReaderSize(nil, size) }}}
}

func (p *readerPool) get(r io.Reader) *bufio.Reader {
	br := p.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

func (p *readerPool) put(br *bufio.Reader) {
	br.Reset(nil)
	p.Put(br)
}
