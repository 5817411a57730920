package milter

import "strings"

// foldWidth is RFC 5322 §2.1.1's recommended line length.
const foldWidth = 78

// fold breaks a header value into lines of at most foldWidth characters
// (RFC 5322 §2.2.3), after a space or a comma, continuing with a tab. A
// run without a break point longer than a line stays whole: a header line
// may reach 998 characters. Values from the verdict are one line of
// printable ASCII.
func fold(name, value string) string {
	if len(name)+2+len(value) <= foldWidth {
		return value
	}
	var b strings.Builder
	col := len(name) + 2
	for value != "" {
		room := max(foldWidth-col, 0) // a very long name leaves none
		if len(value) <= room {
			b.WriteString(value)
			break
		}
		// The last break point that fits, else the first one at all.
		cut := strings.LastIndexAny(value[:room+1], " ,")
		if cut <= 0 {
			cut = strings.IndexAny(value, " ,")
			if cut < 0 {
				b.WriteString(value)
				break
			}
		}
		if value[cut] == ',' {
			cut++ // keep the comma on this line
		}
		line := strings.TrimRight(value[:cut], " ")
		b.WriteString(line)
		value = strings.TrimLeft(value[cut:], " ")
		if value != "" {
			b.WriteString("\r\n\t")
			col = 8
		}
	}
	return b.String()
}
