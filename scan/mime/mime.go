// Package mime is nobounce's content policy scanner: it walks the MIME tree
// of a message (RFC 2045, RFC 2046) while the message streams in from the
// MTA, and advises rejecting mail that carries what nobody should receive
// by mail: programs, scripts, disc images, and archives holding them.
//
// For each part it learns the declared type, the file names (from
// Content-Disposition, RFC 2183, and the Content-Type "name" parameter,
// with RFC 2231 parameter encoding and RFC 2047 encoded-words decoded), the
// size, and the first bytes. The rules, each of which can be turned off:
//
//   - banned-extension: the file name's extension is in
//     Options.BannedExtensions (DefaultBannedExtensions), judged as Windows
//     would run the file (see names.go);
//   - double-extension: a document's extension followed by another
//     ("invoice.pdf.exe", "scan.pdf.html");
//   - name-trick: trailing dots or spaces, bidirectional overrides such as
//     U+202E, invisible characters, dots that only look like dots;
//   - executable: a Windows (PE), Linux (ELF) or macOS (Mach-O) program
//     recognised by its bytes, whatever its name and declared type; also
//     one base64-encoded in a text part (HTML smuggling) or uuencoded;
//   - embedded-executable: a Windows program found inside another file
//     (a PDF, an uncompressed archive, an OLE document's streams);
//   - banned-type: a file whose bytes say it is one of Options.BannedTypes
//     (archive and installer formats with no use in mail today);
//   - encrypted-archive: a zip, RAR or 7z with encrypted members (or file
//     list), which no filter can look into (policy Options.EncryptedArchives);
//   - over-limit: the message is deeper, has more parts, longer header
//     blocks or more archive content than the limits allow (policy
//     Options.OverLimit); what is past a limit is not looked at;
//   - malformed: broken MIME that mail programs repair in their own ways
//     (policy Options.Malformed; rejection is 550 5.6.0);
//   - header-rule, body-rule: configured regular expressions on the decoded
//     message header and on the decoded text of text parts.
//
// Archives are looked into to Options.ArchiveDepth levels: zip, tar, gzip
// and bzip2 are unpacked, and member names and member bytes meet the same
// rules; RAR archives are listed (names, members stored uncompressed, and
// encryption), not unpacked; 7z archives are checked for encryption, and
// listed when their file list is not compressed. A zip or 7z is spooled to
// a 0600 temporary file (their directories are at their end) and removed
// after; OLE compound documents (doc, xls, ppt) the same, for their
// embedded objects. xz, arj, cab and the like are not opened: see
// DefaultBannedTypes.
//
// Out of scope, on purpose: archives in other formats are judged by name
// and type only; a 7z whose file list is compressed (7-Zip's default)
// holding a program passes unless "7z" is a banned type; a program
// deeper than memberScan bytes into an archive member, or past the first
// bytes of an embedded object, is not looked for; password-protected
// Office documents are not encrypted archives here.
//
// The walk never holds the whole message in memory: parts are cut from the
// stream as they arrive (header blocks bounded by Options.MaxHeaderBytes),
// decoded on the fly, and only the first bytes of each are kept. Text parts
// are kept up to Options.MaxTextBytes when body rules are configured.
//
// The header parser is go-message's (textproto); the multipart splitter
// and the transfer decoders are this package's own: go-message's read part
// headers without a bound and give up on a stray character in base64, and
// a filter must see what a forgiving mail program will show.
package mime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nobounce/nobounce/scan"
)

// DefaultBannedExtensions are extensions of files that run code when
// opened on Windows (programs, scripts, installers, shortcuts, help files,
// add-ins) and of disc images that hide them from filters. Documents with
// macros (docm, xlsm) are not in it: some businesses still send them; nor
// are Internet shortcuts (url), which the SpamAssassin corpus has in ham.
var DefaultBannedExtensions = []string{
	"ade", "adp", "app", "appx", "appxbundle", "bat", "chm", "cmd", "com", "cpl", "dll", "exe",
	"gadget", "hlp", "hta", "img", "inf", "ins", "iso", "isp", "jar", "jnlp", "js", "jse", "lnk",
	"mde", "msc", "msh", "msi", "msix", "msixbundle", "msp", "mst", "ocx", "pif", "ps1", "ps1xml",
	"ps2", "psc1", "psm1", "reg", "scf", "scr", "sct", "shb", "sys", "vb", "vbe", "vbs",
	"vhd", "vhdx", "ws", "wsc", "wsf", "wsh", "xll",
}

// DefaultBannedTypes are formats recognised by their bytes that mail has no
// use for any more but malware does: old archivers (arj, ace, lzh), cabinet
// and compressed setup files (cab, szdd), compiled help (chm), shortcuts
// (lnk), Symbian installers (sis), and disc images (iso, vhdx). Programs
// (pe, elf, macho) have their own rule. 7z, rar and xz are not banned: they
// are common and cannot be looked into here (see the package doc).
var DefaultBannedTypes = []string{
	typeAce, typeArj, typeCab, typeCHM, typeISO, typeLNK, typeLzh, typeSIS, typeSZDD, typeVHDX,
}

// DefaultReply is the text of the rejection of an attachment; {name} is
// replaced by its file name.
const DefaultReply = `Attachment "{name}" is not allowed here`

// NamePlaceholder in Options.Reply is replaced by the attachment's name.
const NamePlaceholder = "{name}"

// Reply texts and codes of the rules whose texts are not configurable.
const (
	MalformedReply    = "Malformed MIME structure"
	MalformedCode     = 550
	MalformedEnhanced = "5.6.0" // RFC 3463: other or undefined media error
	OverLimitReply    = "Message too complex for content scanning"
	OverLimitCode     = 552
	OverLimitEnhanced = "5.3.4" // RFC 3463: message too big for system
)

// Options configure a Scanner. The zero value of a number means no limit
// only where that is said; use DefaultOptions.
type Options struct {
	// BannedExtensions are file name extensions (without the dot, any
	// case) rejected wherever they occur: parts, archive members,
	// uuencoded files. Default DefaultBannedExtensions.
	BannedExtensions []string
	// DoubleExtensions rejects a document's extension followed by another
	// ("invoice.pdf.exe", "scan.pdf.html"). Default true.
	DoubleExtensions bool
	// NameTricks rejects names with trailing dots or spaces, invisible or
	// bidirectional characters (U+202E), or look-alike dots. Default true.
	NameTricks bool
	// Executables rejects programs recognised by their bytes (PE, ELF,
	// Mach-O), also inside other files. Default true.
	Executables bool
	// BannedTypes are file types recognised by their bytes (KnownTypes)
	// that are rejected. Default DefaultBannedTypes.
	BannedTypes []string

	// ArchiveDepth is how many levels of archives are looked into (a zip
	// in a zip is 2; a .tar.gz is one); deeper is over a limit. 0 does not
	// look into archives. Default 5.
	ArchiveDepth int
	// ArchiveMaxSize is the largest archive spooled to be looked into,
	// and a quarter of the bytes that may be taken out of archives for one
	// message; past either, over a limit. Default 25 MiB.
	ArchiveMaxSize int64
	// EncryptedArchives is the advice for an archive with encrypted
	// members: AdviseReject, AdviseTag or AdviseNone. Their names are
	// judged all the same. Default AdviseReject.
	EncryptedArchives scan.Advice

	// MaxDepth bounds the nesting of multiparts and attached messages.
	// Default 20.
	MaxDepth int
	// MaxParts bounds the MIME parts of a message, and the members of each
	// archive. Default 1000.
	MaxParts int
	// MaxHeaderBytes bounds each header block (the message's, each
	// part's). Default 256 KiB: above Postfix's header_size_limit (100 KiB),
	// so that a message header Postfix takes is never over it.
	MaxHeaderBytes int
	// OverLimit is the advice when a limit above is passed: AdviseReject
	// (552 5.3.4), AdviseTempFail, AdviseTag or AdviseNone. Default
	// AdviseReject.
	OverLimit scan.Advice
	// Malformed is the advice for broken MIME: AdviseTag, AdviseReject
	// (550 5.6.0) or AdviseNone. Default AdviseTag.
	Malformed scan.Advice

	// Reply is the text of a rejected attachment; {name} is its file
	// name (sanitized by the verdict). Default DefaultReply.
	Reply string
	// HeaderRules are "ACTION Field-Name /regexp/flags [reply text]",
	// matched against the decoded values of the message header's fields
	// of that name; BodyRules are "ACTION /regexp/flags [reply text]",
	// matched against the decoded text of every text part. ACTION is
	// reject, tempfail or tag; flags are i (ignore case), s (. matches a
	// line end) and m (^ and $ match at line ends). See ParseRule.
	HeaderRules []string
	BodyRules   []string
	// MaxTextBytes bounds how much of each text part body rules see.
	// Default 1 MiB.
	MaxTextBytes int

	// TempDir holds the spooled archives; "" is os.TempDir().
	TempDir string
}

// DefaultOptions is the configuration nobounce ships with.
func DefaultOptions() Options {
	return Options{
		BannedExtensions:  slices.Clone(DefaultBannedExtensions),
		DoubleExtensions:  true,
		NameTricks:        true,
		Executables:       true,
		BannedTypes:       slices.Clone(DefaultBannedTypes),
		ArchiveDepth:      5,
		ArchiveMaxSize:    25 << 20,
		EncryptedArchives: scan.AdviseReject,
		MaxDepth:          20,
		MaxParts:          1000,
		MaxHeaderBytes:    256 << 10,
		OverLimit:         scan.AdviseReject,
		Malformed:         scan.AdviseTag,
		Reply:             DefaultReply,
		MaxTextBytes:      1 << 20,
	}
}

// Scanner is the content policy scanner. It is safe for concurrent use.
type Scanner struct {
	o           Options
	banned      map[string]bool
	bannedTypes map[string]bool
	headerRules []Rule
	bodyRules   []Rule
}

var _ scan.Scanner = (*Scanner)(nil)

// New checks o and compiles its rules. Every problem is reported at once.
func New(o Options) (*Scanner, error) {
	s := &Scanner{o: o, banned: map[string]bool{}, bannedTypes: map[string]bool{}}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	for _, e := range o.BannedExtensions {
		x := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(e), "."))
		if x == "" || strings.ContainsAny(x, ". /\\") {
			bad("banned extension %q: want an extension without dot, such as \"exe\"", e)
			continue
		}
		s.banned[x] = true
	}
	for _, t := range o.BannedTypes {
		if !slices.Contains(KnownTypes, t) {
			bad("banned type %q: unknown (known: %s)", t, strings.Join(KnownTypes, ", "))
			continue
		}
		s.bannedTypes[t] = true
	}
	for i, r := range o.HeaderRules {
		rule, err := ParseRule(r, true)
		if err != nil {
			bad("header rule %d: %v", i+1, err)
			continue
		}
		s.headerRules = append(s.headerRules, rule)
	}
	for i, r := range o.BodyRules {
		rule, err := ParseRule(r, false)
		if err != nil {
			bad("body rule %d: %v", i+1, err)
			continue
		}
		s.bodyRules = append(s.bodyRules, rule)
	}
	switch {
	case o.ArchiveDepth < 0:
		bad("archive depth %d: must not be negative", o.ArchiveDepth)
	case o.ArchiveDepth > 0 && o.ArchiveMaxSize <= 0:
		bad("archive max size %d: must be more than 0", o.ArchiveMaxSize)
	}
	if o.MaxDepth <= 0 {
		bad("max depth %d: must be more than 0", o.MaxDepth)
	}
	if o.MaxParts <= 0 {
		bad("max parts %d: must be more than 0", o.MaxParts)
	}
	if o.MaxHeaderBytes < 1024 {
		bad("max header bytes %d: must be at least 1024", o.MaxHeaderBytes)
	}
	if o.MaxTextBytes < 0 {
		bad("max text bytes %d: must not be negative", o.MaxTextBytes)
	}
	for _, p := range []struct {
		what string
		a    scan.Advice
	}{{"encrypted archives", o.EncryptedArchives}, {"over limit", o.OverLimit}, {"malformed", o.Malformed}} {
		if p.a < scan.AdviseNone || p.a > scan.AdviseReject {
			bad("%s: unknown advice %d", p.what, p.a)
		}
	}
	if strings.TrimSpace(o.Reply) == "" {
		s.o.Reply = DefaultReply
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("mime: %w", err)
	}
	return s, nil
}

// Name is "mime".
func (s *Scanner) Name() string { return "mime" }

// Walk reads a whole message in wire form (or with LF line ends) from r and
// reports what the rules found. The error is r's, if reading failed; broken
// MIME is a finding, not an error.
func (s *Scanner) Walk(r io.Reader) (Report, error) {
	w := s.newWalker()
	defer w.cleanup()
	cr := &countingReader{r: r}
	br := topReaders.get(cr)
	defer topReaders.put(br)
	w.message(br)
	io.Copy(io.Discard, br) // what a limit left unread
	w.rep.Size = cr.n
	return *w.rep, cr.err
}

// Walk walks one message with a Scanner made from o.
func Walk(r io.Reader, o Options) (Report, error) {
	s, err := New(o)
	if err != nil {
		return Report{}, err
	}
	return s.Walk(r)
}

// topBuffer is the read buffer on the message stream.
const topBuffer = 64 << 10

// countingReader counts the bytes read and keeps the first error other than
// io.EOF.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

// Begin starts walking a message. The walk runs in a goroutine reading a
// synchronous pipe: Write returns when the walker has taken the bytes.
func (s *Scanner) Begin(ctx context.Context, env *scan.Envelope) scan.Job {
	pr, pw := io.Pipe()
	j := &job{s: s, start: time.Now(), pr: pr, pw: pw, done: make(chan struct{})}
	j.stop = context.AfterFunc(ctx, func() { j.abort(context.Cause(ctx)) })
	go j.run()
	return j
}

// job is one message being walked.
type job struct {
	s     *Scanner
	start time.Time
	pr    *io.PipeReader
	pw    *io.PipeWriter
	stop  func() bool
	done  chan struct{}
	rep   Report
	err   error // reading the pipe failed: aborted

	once  sync.Once
	final scan.Result
}

func (j *job) run() {
	defer close(j.done)
	j.rep, j.err = j.s.Walk(j.pr)
	// Walk has read everything up to the end; a Write after an early end
	// of the walk must not fail (the stream would take it for a failure).
	io.Copy(io.Discard, j.pr)
}

// Write feeds the next bytes of the message to the walker.
func (j *job) Write(p []byte) (int, error) { return j.pw.Write(p) }

// Finish ends the message and returns the advice, waiting for the walk at
// most until ctx is done.
func (j *job) Finish(ctx context.Context) scan.Result {
	j.pw.Close()
	select {
	case <-j.done:
	case <-ctx.Done():
		j.abort(context.Cause(ctx))
		return scan.Result{Scanner: "mime", Status: scan.Failed, Err: fmt.Errorf("mime: %w", context.Cause(ctx)), Elapsed: time.Since(j.start)}
	}
	j.once.Do(func() {
		j.stop()
		if j.err != nil {
			j.final = scan.Result{Scanner: "mime", Status: scan.Failed, Err: fmt.Errorf("mime: %w", j.err)}
		} else {
			j.final = j.rep.Result()
		}
		j.final.Elapsed = time.Since(j.start)
	})
	return j.final
}

// Abort abandons the walk; its goroutine ends at its next read, and removes
// what it spooled.
func (j *job) Abort() { j.abort(errAborted) }

var errAborted = errors.New("scan aborted")

func (j *job) abort(cause error) {
	if cause == nil {
		cause = errAborted
	}
	// Closing the writer's side unblocks a pending Write, fails the later
	// ones, and makes the walker's next read return cause.
	j.pw.CloseWithError(cause)
}

// tempFile makes a 0600 temporary file for a spooled archive.
func (s *Scanner) tempFile() (*os.File, error) {
	return os.CreateTemp(s.o.TempDir, "nobounce-mime-*")
}
