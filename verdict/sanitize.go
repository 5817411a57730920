package verdict

import "strings"

// DefaultSanitizeMax is the length Sanitize cuts to when given max ≤ 0.
const DefaultSanitizeMax = 200

// PercentReplacement stands in for every '%'.
//
// A '%' must never reach a milter reply: seen on this project's test bed,
// Postfix 3.7 read "%s" in a reply as a format directive and sent "s", and
// Sendmail 8.17 dropped the whole custom reply and answered
// "554 5.7.1 Command rejected". Doubling it ("%%") is not known to be safe
// with both. "pct" is chosen over "?" because '?' already marks unprintable
// bytes: "pct" keeps the information that a percent sign was there, can
// never form a directive, and is plain ASCII in replies and headers alike.
const PercentReplacement = "pct"

// Sanitize makes scanner-supplied words (virus names, error texts) and
// configured texts safe to put in an SMTP reply or a header value. The
// result:
//
//   - holds printable ASCII only (0x20-0x7E): CR, LF, NUL, TAB, VT and FF
//     become a space, every other byte outside that range becomes one '?'.
//     Nothing is decoded: not UTF-8 (a two-byte "é" becomes "??"), not
//     MIME encoded-words, not %xx escapes;
//   - has no '%': each becomes PercentReplacement;
//   - has no runs of spaces and no space at either end;
//   - is at most max bytes long (DefaultSanitizeMax when max ≤ 0); a cut
//     result ends in "..." (when max > 3) within that length.
//
// Sanitize is idempotent: sanitizing its result again changes nothing.
func Sanitize(s string, max int) string {
	if max <= 0 {
		max = DefaultSanitizeMax
	}
	var b strings.Builder
	b.Grow(min(len(s), max+len(PercentReplacement)))
	space := false // a space is pending: written before the next other byte
	for i := 0; i < len(s) && b.Len() <= max; i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' || c == 0:
			space = b.Len() > 0
			continue
		case c == '%':
			if space {
				b.WriteByte(' ')
				space = false
			}
			b.WriteString(PercentReplacement)
			continue
		case c < 0x20 || c > 0x7e:
			c = '?'
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteByte(c)
	}
	out := b.String()
	if len(out) <= max {
		return out
	}
	if max <= len("...") {
		return strings.TrimRight(out[:max], " ")
	}
	return strings.TrimRight(out[:max-len("...")], " ") + "..."
}
