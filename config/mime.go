package config

import (
	"fmt"
	"slices"
	"strings"

	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/scan/mime"
)

// MIME is the [mime] table: the content policy applied to attachments and
// text while the message streams in (package scan/mime), answered at the
// final "." instead of being bounced later.
type MIME struct {
	// Enabled runs the content policy on every message. Default true.
	Enabled bool `toml:"enabled"`
	// BannedExtensions are file name extensions (no dot, any case) refused
	// in attachments, archive members and uuencoded files: programs,
	// scripts, installers, shortcuts, disc images. Default: see
	// examples/nobounce.toml (mime.DefaultBannedExtensions).
	BannedExtensions []string `toml:"banned_extensions"`
	// DoubleExtensions refuses a document's extension followed by another
	// ("invoice.pdf.exe", "scan.pdf.html"; not "report.docx.pdf" nor
	// "photos.jpg.zip"). Default true.
	DoubleExtensions bool `toml:"double_extensions"`
	// NameTricks refuses file names with trailing dots or spaces,
	// invisible or right-to-left characters (U+202E), look-alike dots or
	// NUL. Default true.
	NameTricks bool `toml:"name_tricks"`
	// Executables refuses programs recognised by their bytes (Windows PE,
	// ELF, Mach-O), whatever their name and type say, also inside
	// archives, documents, and base64 or uuencode in text. Default true.
	Executables bool `toml:"executables"`
	// BannedTypes are formats recognised by their bytes that are refused
	// (see mime.KnownTypes). Default: see examples/nobounce.toml.
	BannedTypes []string `toml:"banned_types"`
	// ArchiveDepth is how many levels of archives (zip, tar, gzip, bzip2,
	// rar, OLE documents) are looked into; a .tar.gz is one level. Deeper
	// is over a limit. 0 does not look into archives. Default 5.
	ArchiveDepth int `toml:"archive_depth"`
	// ArchiveMaxSize is the largest archive spooled (to a 0600 temporary
	// file, removed after) to be looked into; four times it bounds the
	// bytes taken out of archives for one message. Past either, over a
	// limit. Default "25MiB".
	ArchiveMaxSize Size `toml:"archive_max_size"`
	// EncryptedArchives is what a zip or rar with encrypted members (or
	// file list) does to the message: reject (550 5.7.1), tag or accept.
	// Member names are judged all the same. Default "reject".
	EncryptedArchives string `toml:"encrypted_archives"`
	// MaxDepth bounds the nesting of multiparts and attached messages.
	// Default 20.
	MaxDepth int `toml:"max_depth"`
	// MaxParts bounds the MIME parts of a message, and the members of each
	// archive. Default 1000.
	MaxParts int `toml:"max_parts"`
	// MaxHeaderBytes bounds each header block, the message's and each
	// part's; keep it above Postfix's header_size_limit (100KiB). At least
	// 1KiB. Default "256KiB".
	MaxHeaderBytes Size `toml:"max_header_bytes"`
	// OverLimit is what a message past one of the limits above gets:
	// reject (552 5.3.4), tempfail (451 4.7.1), tag or accept. What is past
	// a limit is not looked at. Default "reject".
	OverLimit string `toml:"over_limit"`
	// Malformed is what broken MIME gets (bad boundaries, broken
	// encodings, truncated parts): tag, reject (550 5.6.0) or accept.
	// Default "tag".
	Malformed string `toml:"malformed"`
	// Reply is the text of the 550 5.7.1 reply to a refused attachment;
	// {name} is replaced by its (sanitized) file name. Printable ASCII, no
	// '%'. Default "Attachment \"{name}\" is not allowed here".
	Reply string `toml:"reply"`
	// HeaderRules match the message header: "ACTION Field-Name
	// /regexp/flags [reply text]", ACTION reject, tempfail or tag; the
	// regular expression (Go syntax, "\/" for a slash; flags i, s, m) is
	// matched against the decoded value of each field of that name.
	// Default [].
	HeaderRules []string `toml:"header_rules"`
	// BodyRules match the decoded text of text parts: "ACTION
	// /regexp/flags [reply text]". Default [].
	BodyRules []string `toml:"body_rules"`
	// MaxTextBytes is how much of each text part body rules see.
	// Default "1MiB".
	MaxTextBytes Size `toml:"max_text_bytes"`
}

// Values of the [mime] policies, in the order error messages list them.
var (
	MIMEEncrypted = []string{"reject", "tag", "accept"}
	MIMEOverLimit = []string{"reject", "tempfail", "tag", "accept"}
	MIMEMalformed = []string{"tag", "reject", "accept"}
)

func defaultMIME() MIME {
	o := mime.DefaultOptions()
	return MIME{
		Enabled:           true,
		BannedExtensions:  o.BannedExtensions,
		DoubleExtensions:  o.DoubleExtensions,
		NameTricks:        o.NameTricks,
		Executables:       o.Executables,
		BannedTypes:       o.BannedTypes,
		ArchiveDepth:      o.ArchiveDepth,
		ArchiveMaxSize:    Size(o.ArchiveMaxSize),
		EncryptedArchives: "reject",
		MaxDepth:          o.MaxDepth,
		MaxParts:          o.MaxParts,
		MaxHeaderBytes:    Size(o.MaxHeaderBytes),
		OverLimit:         "reject",
		Malformed:         "tag",
		Reply:             o.Reply,
		HeaderRules:       []string{},
		BodyRules:         []string{},
		MaxTextBytes:      Size(o.MaxTextBytes),
	}
}

// Bounds of the [mime] sizes.
const (
	minMIMEHeaderBytes = 1 * KiB
	maxMIMEHeaderBytes = 64 * MiB
	maxMIMETextBytes   = 64 * MiB
	maxMIMEArchiveSize = 1 * GiB
)

func (x MIME) validate(bad func(key, format string, args ...any)) {
	enum := func(key, v string, allowed []string) {
		if !slices.Contains(allowed, v) {
			bad(key, "unknown value %q (want one of: %s)", v, strings.Join(allowed, ", "))
		}
	}
	seen := map[string]bool{}
	for i, e := range x.BannedExtensions {
		ext := strings.ToLower(e)
		switch {
		case e == "" || strings.ContainsAny(e, ". /\\\t") || strings.ContainsFunc(e, func(r rune) bool { return r < 0x20 || r == 0x7f }):
			bad("mime.banned_extensions", "element %d: %q: want an extension without its dot, such as \"exe\"", i+1, e)
		case seen[ext]:
			bad("mime.banned_extensions", "element %d: %q is listed twice", i+1, e)
		}
		seen[ext] = true
	}
	seen = map[string]bool{}
	for i, t := range x.BannedTypes {
		switch {
		case !slices.Contains(mime.KnownTypes, t):
			bad("mime.banned_types", "element %d: unknown type %q (known: %s)", i+1, t, strings.Join(mime.KnownTypes, ", "))
		case seen[t]:
			bad("mime.banned_types", "element %d: %q is listed twice", i+1, t)
		}
		seen[t] = true
	}
	if x.ArchiveDepth < 0 || x.ArchiveDepth > 50 {
		bad("mime.archive_depth", "must be from 0 to 50, got %d", x.ArchiveDepth)
	}
	if x.ArchiveMaxSize <= 0 || x.ArchiveMaxSize > maxMIMEArchiveSize {
		bad("mime.archive_max_size", "must be more than 0 and at most %v, got %d", maxMIMEArchiveSize, int64(x.ArchiveMaxSize))
	}
	enum("mime.encrypted_archives", x.EncryptedArchives, MIMEEncrypted)
	if x.MaxDepth < 1 || x.MaxDepth > 1000 {
		bad("mime.max_depth", "must be from 1 to 1000, got %d", x.MaxDepth)
	}
	if x.MaxParts < 1 || x.MaxParts > 1_000_000 {
		bad("mime.max_parts", "must be from 1 to 1000000, got %d", x.MaxParts)
	}
	if x.MaxHeaderBytes < minMIMEHeaderBytes || x.MaxHeaderBytes > maxMIMEHeaderBytes {
		bad("mime.max_header_bytes", "must be from %v to %v, got %d", minMIMEHeaderBytes, maxMIMEHeaderBytes, int64(x.MaxHeaderBytes))
	}
	enum("mime.over_limit", x.OverLimit, MIMEOverLimit)
	enum("mime.malformed", x.Malformed, MIMEMalformed)
	if msg := checkReply(x.Reply); msg != "" {
		bad("mime.reply", "%s", msg)
	}
	for i, r := range x.HeaderRules {
		if _, err := mime.ParseRule(r, true); err != nil {
			bad("mime.header_rules", "element %d: %v", i+1, err)
		}
	}
	for i, r := range x.BodyRules {
		if _, err := mime.ParseRule(r, false); err != nil {
			bad("mime.body_rules", "element %d: %v", i+1, err)
		}
	}
	if x.MaxTextBytes < 0 || x.MaxTextBytes > maxMIMETextBytes {
		bad("mime.max_text_bytes", "must be from 0 to %v, got %d", maxMIMETextBytes, int64(x.MaxTextBytes))
	}
}

// mimeAdvice maps a [mime] policy value onto a scanner advice.
func mimeAdvice(v string) (scan.Advice, error) {
	switch v {
	case "reject":
		return scan.AdviseReject, nil
	case "tempfail":
		return scan.AdviseTempFail, nil
	case "tag":
		return scan.AdviseTag, nil
	case "accept":
		return scan.AdviseNone, nil
	}
	return scan.AdviseReject, fmt.Errorf("unknown value %q", v)
}

// Options maps the table onto the scanner's options (TempDir is left ""
// for the system's temporary folder). Call it on a valid Config; the error
// is for values Validate would refuse.
func (x MIME) Options() (mime.Options, error) {
	o := mime.Options{
		BannedExtensions: slices.Clone(x.BannedExtensions),
		DoubleExtensions: x.DoubleExtensions,
		NameTricks:       x.NameTricks,
		Executables:      x.Executables,
		BannedTypes:      slices.Clone(x.BannedTypes),
		ArchiveDepth:     x.ArchiveDepth,
		ArchiveMaxSize:   int64(x.ArchiveMaxSize),
		MaxDepth:         x.MaxDepth,
		MaxParts:         x.MaxParts,
		MaxHeaderBytes:   int(x.MaxHeaderBytes),
		Reply:            x.Reply,
		HeaderRules:      slices.Clone(x.HeaderRules),
		BodyRules:        slices.Clone(x.BodyRules),
		MaxTextBytes:     int(x.MaxTextBytes),
	}
	var err error
	var errs []string
	for _, p := range []struct {
		key string
		v   string
		dst *scan.Advice
	}{
		{"mime.encrypted_archives", x.EncryptedArchives, &o.EncryptedArchives},
		{"mime.over_limit", x.OverLimit, &o.OverLimit},
		{"mime.malformed", x.Malformed, &o.Malformed},
	} {
		if *p.dst, err = mimeAdvice(p.v); err != nil {
			errs = append(errs, p.key+": "+err.Error())
		}
	}
	if x.Malformed == "tempfail" {
		errs = append(errs, "mime.malformed: tempfail is not a choice: broken MIME stays broken")
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return o, nil
}
