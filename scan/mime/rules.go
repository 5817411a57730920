package mime

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/nobounce/nobounce/scan"
)

// Rule is one header or body rule.
type Rule struct {
	Action scan.Advice // AdviseReject, AdviseTempFail or AdviseTag
	Field  string      // header rules: the field name, canonical case; "" for body rules
	Re     *regexp.Regexp
	Reply  string // reply text; "" = the verdict's default text
	Source string // the rule as written
}

// Limits on a rule.
const (
	maxRuleLen   = 2000
	maxRuleReply = 400
)

// ParseRule reads a header rule ("ACTION Field-Name /regexp/flags [reply
// text]", header true) or a body rule ("ACTION /regexp/flags [reply
// text]"). ACTION is reject, tempfail or tag. The regular expression is Go's
// (RE2) syntax between slashes; a slash inside it is written "\/". Flags are
// i (ignore case), s (. matches a line end) and m (^ and $ match at line
// ends). The reply text, if any, is one line of printable ASCII without '%'.
func ParseRule(s string, header bool) (Rule, error) {
	r := Rule{Source: s}
	if len(s) > maxRuleLen {
		return r, fmt.Errorf("longer than %d bytes", maxRuleLen)
	}
	rest := strings.TrimSpace(s)
	word := func() string {
		w, tail, _ := strings.Cut(rest, " ")
		rest = strings.TrimLeft(tail, " \t")
		return w
	}
	switch a := word(); a {
	case "reject":
		r.Action = scan.AdviseReject
	case "tempfail":
		r.Action = scan.AdviseTempFail
	case "tag":
		r.Action = scan.AdviseTag
	case "":
		return r, fmt.Errorf("empty (want %s)", ruleSyntax(header))
	default:
		return r, fmt.Errorf("unknown action %q (want reject, tempfail or tag): %s", a, ruleSyntax(header))
	}
	if header {
		f := word()
		if f == "" || strings.HasPrefix(f, "/") {
			return r, fmt.Errorf("no header field name before the regular expression: %s", ruleSyntax(header))
		}
		for i := 0; i < len(f); i++ {
			if f[i] <= ' ' || f[i] > '~' || f[i] == ':' {
				return r, fmt.Errorf("%q is not a header field name", f)
			}
		}
		r.Field = canonicalField(f)
	}
	if !strings.HasPrefix(rest, "/") {
		return r, fmt.Errorf("no regular expression between slashes: %s", ruleSyntax(header))
	}
	end := -1
	for i := 1; i < len(rest); i++ {
		if rest[i] == '\\' {
			i++
			continue
		}
		if rest[i] == '/' {
			end = i
			break
		}
	}
	if end < 0 {
		return r, fmt.Errorf("regular expression without its closing slash")
	}
	pattern := strings.ReplaceAll(rest[1:end], `\/`, "/")
	rest = rest[end+1:]
	flags := ""
	for rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		switch rest[0] {
		case 'i', 's', 'm':
			if !strings.Contains(flags, rest[:1]) {
				flags += rest[:1]
			}
		default:
			return r, fmt.Errorf("unknown flag %q after the regular expression (want i, s or m)", rest[:1])
		}
		rest = rest[1:]
	}
	if pattern == "" {
		return r, fmt.Errorf("empty regular expression")
	}
	if flags != "" {
		pattern = "(?" + flags + ")" + pattern
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return r, fmt.Errorf("regular expression: %v", err)
	}
	r.Re = re
	r.Reply = strings.TrimSpace(rest)
	if msg := checkReplyText(r.Reply); r.Reply != "" && msg != "" {
		return r, fmt.Errorf("reply text %s", msg)
	}
	return r, nil
}

func ruleSyntax(header bool) string {
	if header {
		return `"ACTION Field-Name /regexp/flags [reply text]"`
	}
	return `"ACTION /regexp/flags [reply text]"`
}

// checkReplyText explains what is wrong with a reply text, or returns "".
func checkReplyText(s string) string {
	if len(s) > maxRuleReply {
		return fmt.Sprintf("is longer than %d bytes", maxRuleReply)
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '%':
			return "contains '%', which Postfix and Sendmail read as a format directive"
		case c < 0x20 || c > 0x7e:
			return fmt.Sprintf("has a byte that is not printable ASCII (%#x) at %d", c, i+1)
		}
	}
	return ""
}

// canonicalField writes a field name as "Content-Type".
func canonicalField(f string) string {
	b := []byte(strings.ToLower(f))
	up := true
	for i, c := range b {
		if up && 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		up = c == '-'
	}
	return string(b)
}

// String is the rule as written.
func (r Rule) String() string { return r.Source }
