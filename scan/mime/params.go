package mime

import (
	stdmime "mime"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Header parameters (RFC 2045 §5.1, RFC 2183) are read twice: by the
// standard library's strict parser, which says whether the field is well
// formed, and by params below, which is lenient on purpose. A mail client
// that shows "invoice.exe" for a sloppy Content-Disposition must not meet a
// filter that sees no file name there: a name the lenient reading finds is
// checked even when the strict one refuses the whole field.

// maxParamSegments bounds the RFC 2231 continuations of one parameter.
const maxParamSegments = 64

// param is one parameter as written: its lower-cased name and its value
// with quoting, RFC 2231 and RFC 2047 undone.
type param struct {
	name, value string
}

// mediaType returns the lower-cased type/subtype of a Content-Type value
// ("" when there is none), its parameters, and whether the value is well
// formed by the standard library's reading.
func mediaType(v string) (string, []param, bool) {
	_, _, err := stdmime.ParseMediaType(v)
	t, rest, _ := strings.Cut(v, ";")
	t = strings.ToLower(strings.TrimSpace(t))
	return t, parseParams(rest), err == nil
}

// parseParams reads "a=1; b="two"; c*=utf-8”%41; d*0=x; d*1=y" leniently:
// unquoted values may hold spaces, a missing closing quote runs to the end,
// parameters without '=' are skipped, RFC 2231 charsets other than UTF-8
// are converted where known and kept as bytes otherwise, and RFC 2047
// encoded-words in values (not standard, but common) are decoded. A name
// that occurs more than once yields every value.
func parseParams(s string) []param {
	type seg struct {
		n   int
		enc bool
		v   string
	}
	var plain []param
	split := map[string][]seg{}
	var order []string
	for len(s) > 0 {
		var name, value string
		name, value, s = nextParam(s)
		if name == "" {
			continue
		}
		base, idx, enc := splitParamName(name)
		if idx < 0 && !enc {
			plain = append(plain, param{name, decodeWords(value)})
			continue
		}
		if idx < 0 {
			idx = 0
		}
		if idx >= maxParamSegments {
			continue
		}
		if _, ok := split[base]; !ok {
			order = append(order, base)
		}
		split[base] = append(split[base], seg{idx, enc, value})
	}
	for _, base := range order {
		segs := split[base]
		sort.SliceStable(segs, func(i, j int) bool { return segs[i].n < segs[j].n })
		var raw strings.Builder
		charset := ""
		for i, sg := range segs {
			v := sg.v
			if sg.enc {
				if i == 0 {
					// charset'language'value
					if cs, rest, ok := strings.Cut(v, "'"); ok {
						charset = strings.ToLower(strings.TrimSpace(cs))
						if _, rest2, ok := strings.Cut(rest, "'"); ok {
							v = rest2
						} else {
							v = rest
						}
					}
				}
				v = percentDecode(v)
			}
			raw.WriteString(v)
		}
		plain = append(plain, param{base, toUTF8(charset, raw.String())})
	}
	return plain
}

// nextParam takes one "name=value" off the front of s (after a ';') and
// returns the rest.
func nextParam(s string) (name, value, rest string) {
	s = strings.TrimLeft(s, " \t\r\n;")
	eq := strings.IndexAny(s, "=;")
	if eq < 0 || s[eq] == ';' {
		if eq < 0 {
			return "", "", ""
		}
		return "", "", s[eq+1:]
	}
	name = strings.ToLower(strings.TrimSpace(s[:eq]))
	s = strings.TrimLeft(s[eq+1:], " \t\r\n")
	if strings.HasPrefix(s, `"`) {
		var b strings.Builder
		i := 1
		for ; i < len(s); i++ {
			c := s[i]
			if c == '\\' && i+1 < len(s) {
				i++
				b.WriteByte(s[i])
				continue
			}
			if c == '"' {
				i++
				break
			}
			b.WriteByte(c)
		}
		rest = s[i:]
		if j := strings.IndexByte(rest, ';'); j >= 0 {
			rest = rest[j+1:]
		} else {
			rest = ""
		}
		return name, b.String(), rest
	}
	if j := strings.IndexByte(s, ';'); j >= 0 {
		return name, strings.TrimSpace(s[:j]), s[j+1:]
	}
	return name, strings.TrimSpace(s), ""
}

// splitParamName splits an RFC 2231 name: "filename*1*" → ("filename", 1,
// true); "filename*" → ("filename", -1, true); "filename" → (…, -1, false).
func splitParamName(name string) (string, int, bool) {
	enc := strings.HasSuffix(name, "*")
	n := strings.TrimSuffix(name, "*")
	if i := strings.LastIndexByte(n, '*'); i >= 0 {
		if idx, err := strconv.Atoi(n[i+1:]); err == nil && idx >= 0 {
			return n[:i], idx, enc
		}
	}
	if enc {
		return n, -1, true
	}
	return name, -1, false
}

func percentDecode(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// wordDecoder decodes RFC 2047 encoded-words. A charset it does not know
// is passed through as bytes: the extension of a file name is ASCII in
// every charset that matters, and it is the extension that is judged.
var wordDecoder = &stdmime.WordDecoder{CharsetReader: charsetReader}

// decodeWords decodes the RFC 2047 encoded-words of s; s is returned as
// it is when it holds none or they are broken.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	d, err := wordDecoder.DecodeHeader(s)
	if err != nil {
		return s
	}
	return d
}

// toUTF8 converts s from charset to UTF-8 where the charset is known
// (UTF-8, US-ASCII, ISO-8859-1, Windows-1252); other bytes are kept.
func toUTF8(charset, s string) string {
	switch charset {
	case "iso-8859-1", "latin1", "iso_8859-1", "l1", "windows-1252", "cp1252":
		if utf8.ValidString(s) && !hasHigh(s) {
			return s
		}
		return latin1ToUTF8(s, charset == "windows-1252" || charset == "cp1252")
	}
	return s
}

func hasHigh(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return true
		}
	}
	return false
}

// cp1252 maps 0x80-0x9F of Windows-1252 to Unicode (0 = unassigned).
var cp1252 = [32]rune{
	0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
	0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
}

func latin1ToUTF8(s string, win bool) string {
	var b strings.Builder
	b.Grow(len(s) + len(s)/4)
	for i := 0; i < len(s); i++ {
		c := s[i]
		r := rune(c)
		if win && c >= 0x80 && c <= 0x9f && cp1252[c-0x80] != 0 {
			r = cp1252[c-0x80]
		}
		b.WriteRune(r)
	}
	return b.String()
}
