package mime

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nobounce/nobounce/scan"
)

// Rule names, as they appear in Hit.Rule, logs and `nobounce scan`.
const (
	RuleBannedExtension    = "banned-extension"
	RuleDoubleExtension    = "double-extension"
	RuleNameTrick          = "name-trick"
	RuleExecutable         = "executable"
	RuleEmbeddedExecutable = "embedded-executable"
	RuleBannedType         = "banned-type"
	RuleEncryptedArchive   = "encrypted-archive"
	RuleOverLimit          = "over-limit"
	RuleMalformed          = "malformed"
	RuleHeader             = "header-rule"
	RuleBody               = "body-rule"
)

// Report is what a walk found.
type Report struct {
	Size  int64  // bytes of message read
	Parts []Part // leaf parts and archive members, in message order (at most maxReportParts)
	Hits  []Hit  // in message order (at most maxHits)
}

// Limits on what a Report holds (not on what is looked at).
const (
	maxReportParts = 2000
	maxHits        = 100
)

// Part is one leaf part of the message or one archive member.
type Part struct {
	Where    string   // `part 1.2`, `part 2 "a.zip" > "x.exe"`
	Declared string   // declared media type, lower case; "" for archive members
	Names    []string // file names, decoded, as given
	Size     int64    // decoded bytes read (members: as far as they were read)
	Type     string   // type by its bytes (KnownTypes), "" if none
	Head     []byte   // first bytes (at most 16)
}

// Hit is one rule that matched.
type Hit struct {
	Rule   string // Rule* constant
	Detail string // "exe", "U+202E", "pe", "max-parts 1000", a malformation
	Where  string // `part 1.2 "invoice.pdf.exe"`, "header"
	Advice scan.Advice

	// What the reply would be if this hit decides.
	Reply    string
	Code     int
	Enhanced string
}

// String is the hit for people: `banned-extension exe in part 1.2 "invoice.pdf.exe"`.
func (h Hit) String() string {
	s := h.Rule
	if h.Detail != "" {
		s += " " + h.Detail
	}
	if h.Where != "" {
		s += " in " + h.Where
	}
	return s
}

// Decision is the hit that decides: the first of those with the strongest
// advice. ok is false when no hit advises anything.
func (r Report) Decision() (Hit, bool) {
	best := -1
	for i, h := range r.Hits {
		if h.Advice > scan.AdviseNone && (best < 0 || h.Advice > r.Hits[best].Advice) {
			best = i
		}
	}
	if best < 0 {
		return Hit{}, false
	}
	return r.Hits[best], true
}

// Result turns the report into the scanner's answer: Clean, with the
// advice of the deciding hit.
func (r Report) Result() scan.Result {
	res := scan.Result{Scanner: "mime", Status: scan.Clean}
	h, ok := r.Decision()
	if !ok {
		return res
	}
	res.Advice, res.Reply, res.Code, res.Enhanced = h.Advice, h.Reply, h.Code, h.Enhanced
	res.Rule = h.String()
	if n := len(r.Hits) - 1; n > 0 {
		res.Rule += " (+" + strconv.Itoa(n) + " more)"
	}
	return res
}

// String lists the parts and hits, one per line, for tests and tools.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "size %d\n", r.Size)
	for _, p := range r.Parts {
		fmt.Fprintf(&b, "%s: declared=%q type=%q size=%d head=%q", p.Where, p.Declared, p.Type, p.Size, p.Head)
		for _, n := range p.Names {
			fmt.Fprintf(&b, " name=%q", n)
		}
		b.WriteByte('\n')
	}
	for _, h := range r.Hits {
		fmt.Fprintf(&b, "hit %s: %s", h.Advice, h)
		if h.Advice != scan.AdviseNone {
			fmt.Fprintf(&b, " -> %d %s %q", h.Code, h.Enhanced, h.Reply)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// quoteName quotes a file name for Where: Go syntax, so that invisible and
// control characters show as escapes; long names are cut in the middle.
func quoteName(s string) string {
	const max = 120
	if r := []rune(s); len(r) > max {
		s = string(r[:max/2]) + "…" + string(r[len(r)-max/2:])
	}
	return strconv.Quote(s)
}
