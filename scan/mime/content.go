package mime

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/nobounce/nobounce/scan"
)

// content is one file to judge: a MIME leaf part, or a member of an
// archive.
type content struct {
	where     string   // "part 1.2", or `part 2 "a.zip" >` for a member
	path      string   // IMAP part number; "" for members
	names     []string // file names
	declared  string   // declared type (MIME parts)
	charset   string   // declared charset (MIME text parts)
	depth     int      // MIME nesting depth
	adepth    int      // archives around this content
	unwrapped bool     // the payload of a compression layer (gzip, bzip2)
	mime      bool     // a MIME part, not an archive member
	member    bool     // an archive member: read at most memberScan bytes
	uu        *uuDecoder
	replyName string // the name the reply gives: the outermost attachment's
}

// memberScan is how much of an archive member is read when it is not an
// archive itself: enough for its type and a program hidden near its start.
const memberScan = 256 << 10

// at returns where the content is, with its names.
func (c *content) at() string { return describe(c.where, c.names) }

// content judges one file read from r.
func (w *walker) content(r io.Reader, c *content) {
	br := headReaders.get(r)
	defer headReaders.put(br)
	head, _ := br.Peek(headSize)
	head = bytes.Clone(head)
	if c.uu != nil && c.uu.name != "" && !slices.Contains(c.names, c.uu.name) {
		c.names = append(c.names, c.uu.name)
	}
	if c.replyName == "" {
		switch {
		case len(c.names) > 0:
			c.replyName = c.names[0]
		case c.path != "":
			c.replyName = "part " + c.path
		}
	}
	where := c.at()
	part := len(w.rep.Parts)
	if part < maxReportParts {
		w.rep.Parts = append(w.rep.Parts, Part{Where: where, Declared: c.declared, Names: c.names, Head: head[:min(len(head), 16)]})
	}
	for _, n := range c.names {
		w.nameRules(n, where, c.replyName)
	}
	t := sniff(head, nil)
	setType := func(t string) {
		if part < maxReportParts {
			w.rep.Parts[part].Type = t
		}
	}
	setType(t)
	w.typeRules(t, where, c.replyName)

	if c.mime && w.mailLike(head, c) {
		if c.depth >= w.o.MaxDepth {
			w.overLimit("max-depth "+strconv.Itoa(w.o.MaxDepth), where)
		} else {
			n := w.count(br, func(r io.Reader) {
				mbr := partReaders.get(r)
				defer partReaders.put(mbr)
				if bytes.HasPrefix(head, []byte("From ")) {
					skipLine(mbr) // the mbox separator
				}
				w.entity(mbr, c.path, true, c.depth+1)
			})
			w.setSize(part, n)
			return
		}
	}

	if w.o.ArchiveDepth > 0 && isArchive(t) {
		depth := c.adepth + 1
		if c.unwrapped && (t == typeTar || t == typeZip) {
			depth = c.adepth // .tar.gz is one archive
		}
		if depth > w.o.ArchiveDepth {
			w.overLimit("archive-depth "+strconv.Itoa(w.o.ArchiveDepth), where)
		} else {
			n := w.count(br, func(r io.Reader) { w.archive(r, t, c, depth) })
			w.setSize(part, n)
			return
		}
	}

	// A plain file: stream it through the finders.
	var sinks []io.Writer
	var pe *peFinder
	if w.o.Executables && !executableTypes[t] {
		limit := int64(0)
		if c.member {
			limit = memberScan
		}
		pe = newPEFinder(limit)
		sinks = append(sinks, pe)
	}
	var tf *textFinder
	text := strings.HasPrefix(c.declared, "text/") || t == typeRTF || t == typeBinHex || (t == "" && printable(head))
	if text {
		tf = newTextFinder(t == typeRTF && w.o.Executables)
		sinks = append(sinks, tf)
	}
	var body *limitedBuffer
	if c.mime && strings.HasPrefix(c.declared, "text/") && len(w.s.bodyRules) > 0 && w.o.MaxTextBytes > 0 {
		body = &limitedBuffer{max: w.o.MaxTextBytes}
		sinks = append(sinks, body)
	}
	iso := &offsetCapture{at: isoOffset, want: 5}
	sinks = append(sinks, iso)

	var src io.Reader = br
	if c.member {
		src = io.LimitReader(br, memberScan)
	}
	buf := copyBuffers.Get().(*[]byte)
	n, _ := io.CopyBuffer(io.MultiWriter(sinks...), src, *buf)
	copyBuffers.Put(buf)
	w.setSize(part, n)

	if t == "" && len(iso.got) == 5 {
		if t2 := sniff(nil, iso.got); t2 != "" {
			setType(t2)
			w.typeRules(t2, where, c.replyName)
		}
	}
	if pe != nil {
		pe.close()
		if pe.found >= 0 {
			w.hit(RuleEmbeddedExecutable, "pe at offset "+strconv.FormatInt(pe.found, 10), where, c.replyName, scan.AdviseReject)
		}
	}
	if tf != nil {
		tf.close()
		w.textFinds(tf, where, c)
	}
	if body != nil {
		w.bodyRules(body.b, c.charset, where)
	}
}

// count runs f on r and returns how many bytes f read.
func (w *walker) count(r io.Reader, f func(io.Reader)) int64 {
	cr := &countingReader{r: r}
	f(cr)
	io.Copy(io.Discard, cr)
	return cr.n
}

func (w *walker) setSize(part int, n int64) {
	if part < len(w.rep.Parts) {
		w.rep.Parts[part].Size = n
	}
}

// nameRules judges one file name.
func (w *walker) nameRules(name, where, replyName string) {
	ni := analyzeName(name)
	if w.o.NameTricks {
		for _, t := range ni.tricks {
			w.hit(RuleNameTrick, t, where, replyName, scan.AdviseReject)
		}
	}
	if w.o.DoubleExtensions && ni.doubleExtension() {
		w.hit(RuleDoubleExtension, ni.prev+"."+ni.ext, where, replyName, scan.AdviseReject)
	}
	if w.s.banned[ni.ext] {
		w.hit(RuleBannedExtension, ni.ext, where, replyName, scan.AdviseReject)
	}
	if i := strings.IndexByte(name, 0); i > 0 {
		// What a program written in C sees.
		w.nameRules(name[:i], where, replyName)
	}
}

// typeRules judges a file by its type.
func (w *walker) typeRules(t, where, replyName string) {
	switch {
	case t == "":
	case executableTypes[t]:
		if w.o.Executables {
			w.hit(RuleExecutable, t, where, replyName, scan.AdviseReject)
		}
	case w.s.bannedTypes[t]:
		w.hit(RuleBannedType, t, where, replyName, scan.AdviseReject)
	}
}

// textFinds judges what a textFinder found.
func (w *walker) textFinds(tf *textFinder, where string, c *content) {
	replyName := c.replyName
	// A text part without a name of its own is replied to by the name of
	// the file it hides.
	named := func(name string) string {
		if len(c.names) == 0 && !c.member {
			return name
		}
		return c.replyName
	}
	for i, name := range tf.uuNames {
		at := where + " uuencoded " + quoteName(name)
		w.nameRules(name, at, named(name))
		if i < len(tf.uuHeads) {
			w.typeRules(sniff(tf.uuHeads[i], nil), at, named(name))
		}
	}
	for _, name := range tf.binhexNames {
		w.nameRules(name, where+" binhex "+quoteName(name), named(name))
	}
	for _, head := range tf.b64Heads {
		if t := sniff(head, nil); executableTypes[t] {
			w.typeRules(t, where+" (base64 in text)", replyName)
		}
	}
	if tf.rtf != nil && tf.rtf.found >= 0 {
		w.hit(RuleEmbeddedExecutable, "pe in RTF hex data", where, replyName, scan.AdviseReject)
	}
}

// bodyRules matches the body rules against one text part.
func (w *walker) bodyRules(b []byte, charset, where string) {
	text := toUTF8(charset, string(b))
	for i, r := range w.s.bodyRules {
		if r.Re.MatchString(text) {
			w.ruleHit(RuleBody, r, i, where)
		}
	}
}

// mailLike reports whether an attachment's bytes are a mail message (an
// .eml or mbox sent as a file): a header of known fields up to an empty
// line, after an optional mbox "From " line. Text parts without a file
// name are not taken for messages: their text is what the sender wrote.
func (w *walker) mailLike(head []byte, c *content) bool {
	if strings.HasPrefix(c.declared, "text/") && len(c.names) == 0 {
		return false
	}
	b := head
	if bytes.HasPrefix(b, []byte("From ")) {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return false
		}
		b = b[i+1:]
	}
	known := map[string]bool{"from": true, "to": true, "subject": true, "date": true, "message-id": true,
		"mime-version": true, "received": true, "return-path": true, "content-type": true}
	fields, knownFields := 0, 0
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return false // no end of header within the head
		}
		line := bytes.TrimRight(b[:i], "\r")
		b = b[i+1:]
		switch {
		case len(line) == 0:
			return fields >= 3 && knownFields >= 2
		case line[0] == ' ' || line[0] == '\t':
			if fields == 0 {
				return false
			}
		case isFieldLine(line):
			fields++
			name, _, _ := bytes.Cut(line, []byte(":"))
			if known[strings.ToLower(string(bytes.TrimSpace(name)))] {
				knownFields++
			}
		default:
			return false
		}
	}
	return false
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	b   []byte
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// offsetCapture keeps want bytes at offset at of what is written to it.
type offsetCapture struct {
	at, n int64
	want  int
	got   []byte
}

func (o *offsetCapture) Write(p []byte) (int, error) {
	start, end := o.n, o.n+int64(len(p))
	o.n = end
	if len(o.got) < o.want && end > o.at && start < o.at+int64(o.want) {
		from := max(o.at+int64(len(o.got)), start)
		to := min(o.at+int64(o.want), end)
		if from < to {
			o.got = append(o.got, p[from-start:to-start]...)
		}
	}
	return len(p), nil
}

// budgetReader counts the bytes taken out of archives against the
// walker's budget; past it, reads fail with errBudget.
type budgetReader struct {
	r io.Reader
	w *walker
}

var errBudget = errors.New("archive content over the limit")

func (b *budgetReader) Read(p []byte) (int, error) {
	if b.w.budget <= 0 {
		return 0, errBudget
	}
	if int64(len(p)) > b.w.budget {
		p = p[:b.w.budget]
	}
	n, err := b.r.Read(p)
	b.w.budget -= int64(n)
	return n, err
}

// skipLine reads up to and including the next line end.
func skipLine(br *bufio.Reader) {
	for {
		_, err := br.ReadSlice('\n')
		if err != bufio.ErrBufferFull {
			return
		}
	}
}
