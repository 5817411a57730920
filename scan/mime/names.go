package mime

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// File names are judged as Windows would run them, not as they look:
//
//   - Windows drops trailing dots and spaces ("invoice.exe." runs as
//     invoice.exe), so the extension is taken after removing them, and
//     their presence is itself a trick;
//   - bidirectional controls (U+202E RIGHT-TO-LEFT OVERRIDE shows
//     "invoice‮fdp.exe" as "invoiceexe.pdf"), zero-width characters and
//     other invisible format characters hide what the name is; they are
//     tricks, and removed before the extension is taken;
//   - dots that are not U+002E but look like one are tricks: with
//     extensions hidden, Windows shows "invoice\uFF0Epdf.lnk" as
//     "invoice．pdf"; they count as dots, so that the extension they fake
//     is seen too (a double extension here);
//   - a name with a document's extension followed by another one
//     ("invoice.pdf.exe", "scan.pdf.html") is a double extension, unless
//     the last is a document (not a web page) or an archive too
//     ("report.docx.pdf", "photos.jpg.zip", which programs make by
//     themselves).

// lookAlikeDots are characters drawn like a full stop that have no place
// in a file name. Not in it: U+00B7 MIDDLE DOT (Catalan "l·l") and the
// ideographic full stops U+3002 and U+FF61, which are ordinary in
// Chinese and Japanese text.
var lookAlikeDots = map[rune]bool{
	0x2024:  true, // ONE DOT LEADER
	0x2027:  true, // HYPHENATION POINT
	0xFE52:  true, // SMALL FULL STOP
	0xFF0E:  true, // FULLWIDTH FULL STOP
	0x06D4:  true, // ARABIC FULL STOP
	0x0701:  true, // SYRIAC SUPRALINEAR FULL STOP
	0x0702:  true, // SYRIAC SUBLINEAR FULL STOP
	0x2E33:  true, // RAISED DOT
	0x2219:  true, // BULLET OPERATOR
	0x22C5:  true, // DOT OPERATOR
	0x0589:  true, // ARMENIAN FULL STOP
	0x1362:  true, // ETHIOPIC FULL STOP
	0xA4F8:  true, // LISU LETTER TONE MYA TI
	0xA60E:  true, // VAI FULL STOP
	0x10A50: true, // KHAROSHTHI PUNCTUATION DOT
}

// quietFormat are format characters that ordinary text in some scripts
// needs; they cannot reorder a name (unlike U+202E and the other
// overrides, embeddings and isolates).
var quietFormat = map[rune]bool{
	0x200C: true, // ZERO WIDTH NON-JOINER
	0x200D: true, // ZERO WIDTH JOINER
	0x200E: true, // LEFT-TO-RIGHT MARK
	0x200F: true, // RIGHT-TO-LEFT MARK
	0x061C: true, // ARABIC LETTER MARK
}

// invisible reports runes that change how a name is shown without being
// seen: bidirectional controls, zero-width characters, other format
// characters (category Cf).
func invisible(r rune) bool {
	switch r {
	case 0x202A, 0x202B, 0x202C, 0x202D, 0x202E, // embeddings and overrides
		0x2066, 0x2067, 0x2068, 0x2069, // isolates
		0x200E, 0x200F, 0x061C, // marks
		0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF, 0x180E, 0x00AD, 0x034F, 0x115F, 0x1160, 0x3164, 0xFFA0:
		return true
	}
	return unicode.Is(unicode.Cf, r)
}

// docExtensions are what a disguised program pretends to be.
var docExtensions = set(
	"pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp", "rtf", "txt", "csv",
	"jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "heic", "webp", "mp3", "mp4", "wav", "avi", "mov",
	"htm", "html", "xml", "eml", "msg",
)

// plainLast are the extensions that may follow a document's without
// suspicion: documents (not web pages, which run scripts and are the
// phisher's favourite disguise) and archives.
var plainLast = set(
	"pdf", "doc", "docx", "xls", "xlsx", "ppt", "pptx", "odt", "ods", "odp", "rtf", "txt", "csv",
	"jpg", "jpeg", "png", "gif", "bmp", "tif", "tiff", "heic", "webp", "mp3", "mp4", "wav", "avi", "mov",
	"zip", "gz", "tgz", "bz2", "xz", "7z", "rar", "tar", "zst", "z",
)

func set(xs ...string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// nameInfo is what the rules need to know about one file name.
type nameInfo struct {
	clean  string   // the name as Windows would see it: tricks removed, look-alike dots made dots
	ext    string   // lower-cased extension of clean, "" if none
	prev   string   // lower-cased extension before ext ("pdf" in "a.pdf.exe"), "" if none
	tricks []string // what was hidden in the name, in order, no duplicates
}

// maxNameRunes bounds the work on one name; what is longer is judged by its
// last maxNameRunes runes (where the extension is).
const maxNameRunes = 1024

// analyzeName takes a file name apart. Path components ("dir/x.exe",
// "dir\x.exe") are dropped: only the last one names the file.
func analyzeName(name string) nameInfo {
	var ni nameInfo
	name = strings.ReplaceAll(name, "\t", " ") // from folded header lines
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	if utf8.RuneCountInString(name) > maxNameRunes {
		r := []rune(name)
		name = string(r[len(r)-maxNameRunes:])
	}
	trick := func(s string) {
		for _, t := range ni.tricks {
			if t == s {
				return
			}
		}
		ni.tricks = append(ni.tricks, s)
	}
	var b strings.Builder
	for i, r := range name {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(name[i:], "\uFFFD"):
			// A byte that is not UTF-8 (an unknown charset): neither a
			// trick nor a dot. It becomes U+FFFD, so that two such bytes
			// around a removed character cannot join into a new one.
			b.WriteRune(utf8.RuneError)
		case lookAlikeDots[r]:
			trick(fmt.Sprintf("look-alike dot U+%04X", r))
			b.WriteByte('.')
		case r == 0:
			// Programs written in C stop reading the name there:
			// "invoice.exe\x00.pdf" is invoice.exe to them.
			trick("NUL character")
			b.WriteRune(r)
		case unicode.IsControl(r):
			// Windows allows none in a name and replaces them; they hide
			// nothing (ISO-2022-JP names, passed through undecoded, are
			// full of ESC).
			b.WriteRune(r)
		case quietFormat[r]:
			// Removed, but no trick: Persian and Hindi spell with ZWNJ,
			// emoji join with ZWJ, Hebrew and Arabic names carry marks.
		case invisible(r):
			trick(fmt.Sprintf("invisible U+%04X", r))
		default:
			b.WriteRune(r)
		}
	}
	clean := b.String()
	trimmed := strings.TrimRightFunc(clean, func(r rune) bool { return r == '.' || unicode.IsSpace(r) })
	if trimmed != clean && trimmed != "" {
		switch last := clean[len(clean)-1]; {
		case last == '.':
			trick("trailing dot")
		default:
			trick("trailing space")
		}
	}
	ni.clean = trimmed
	base := trimmed
	if i := strings.LastIndexByte(base, '.'); i >= 0 {
		ni.ext = extOf(base[i+1:])
		base = strings.TrimRightFunc(base[:i], unicode.IsSpace)
		if j := strings.LastIndexByte(base, '.'); j >= 0 {
			ni.prev = extOf(base[j+1:])
		}
	}
	return ni
}

// extOf lower-cases an extension and trims the spaces that pad it; an
// extension with inner spaces or too long is no extension.
func extOf(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || len(s) > 32 || strings.ContainsAny(s, " \t") {
		return ""
	}
	return s
}

// doubleExtension reports whether ni is a document's extension followed by
// one that is not in plainLast.
func (ni nameInfo) doubleExtension() bool {
	return ni.prev != "" && ni.ext != "" && docExtensions[ni.prev] && !plainLast[ni.ext]
}
