// Package verdict turns the answers of content scanners into the one reply
// nobounce gives at the end of a message, and the headers it adds to mail it
// accepts.
//
// It is pure: no I/O, no clock, nothing of ours imported. [Decide] applies a
// fixed precedence (reject beats tempfail beats tag beats accept) so the same
// findings always give the same reply.
//
// A reply follows RFC 5321: a three-digit code whose first digit says whether
// the client may retry (§4.2.1: 2yz accepted, 4yz transient, 5yz permanent),
// given at the end of DATA so the client, not nobounce, tells its sender
// (§4.3.2 lists 250, 451, 550 and 552 among the answers to DATA's "."). Each
// reply carries an enhanced status code from RFC 3463 whose class matches
// the first digit: X.7.1 "delivery not authorized, message refused", X.3.4
// "message too big for system", 2.0.0 "other undefined status" (success).
// A temporary failure is 451 4.7.1, as Postfix itself answers when a milter
// fails under milter_default_action = tempfail.
//
// Everything that ends up on the wire or in a header passes through
// [Sanitize]: scanner-supplied words are untrusted, and a '%' in a milter
// reply is read as a printf directive by Postfix and makes Sendmail drop the
// reply altogether.
package verdict

import (
	"fmt"
	"strconv"
	"strings"
)

// Action is what the MTA is told to do with the message.
type Action int

// Actions in increasing precedence: when results are combined the greatest
// wins.
const (
	Accept   Action = iota // deliver unchanged, headers added
	Tag                    // deliver, marked by headers; reserved for scoring scanners (spamd, rspamd)
	TempFail               // 4yz: the client keeps the message and retries later
	Reject                 // 5yz: the client returns the message to its own sender
)

func (a Action) String() string {
	switch a {
	case Accept:
		return "accept"
	case Tag:
		return "tag"
	case TempFail:
		return "tempfail"
	case Reject:
		return "reject"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// Reason says why a verdict was reached. The values are stable: they are
// used in logs and as metric labels.
type Reason string

// Reasons.
const (
	ReasonClean           Reason = "clean"               // every scanner answered and found nothing
	ReasonVirus           Reason = "virus"               // a scanner found a threat
	ReasonScanError       Reason = "scan-error"          // a scanner failed, on_error=tempfail
	ReasonScanErrorAccept Reason = "scan-error-accepted" // a scanner failed, on_error=accept
	ReasonOversize        Reason = "oversize"            // over the scan size limit, policy reject/tempfail
	ReasonOversizeAccept  Reason = "oversize-accepted"   // over the scan size limit, policy accept
	ReasonNoScanner       Reason = "no-scanner"          // no scanner is configured
	ReasonSpam            Reason = "spam"                // a spam scanner advised reject
	ReasonSpamTag         Reason = "spam-tagged"         // a spam scanner advised tag: delivered, marked
	ReasonSoftReject      Reason = "soft-reject"         // a scanner advised a temporary failure (rspamd soft reject, greylist)
	ReasonPolicy          Reason = "policy"              // a content rule advised reject
	ReasonPolicyTag       Reason = "policy-tagged"       // a content rule advised tag
)

// Kind is the outcome of one scanner, as far as the verdict cares.
type Kind int

// Kinds. A value outside these is treated as KindError (fail safe).
const (
	KindClean Kind = iota
	KindVirus
	KindError
)

func (k Kind) String() string {
	switch k {
	case KindClean:
		return "clean"
	case KindVirus:
		return "virus"
	case KindError:
		return "error"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// OnError is what a failed scanner does to the message. A value outside
// these is treated as OnErrorTempFail (fail safe).
type OnError int

// OnError policies.
const (
	OnErrorTempFail OnError = iota // answer 451 4.7.1; the client retries
	OnErrorAccept                  // accept, with a status header saying it was not scanned
)

func (o OnError) String() string {
	switch o {
	case OnErrorTempFail:
		return "tempfail"
	case OnErrorAccept:
		return "accept"
	}
	return "OnError(" + strconv.Itoa(int(o)) + ")"
}

// Finding is one scanner's answer, already mapped from scan.Result by the
// caller. Threat, Err and Text are the scanner's own words, unsanitized.
type Finding struct {
	Scanner string  // Scanner.Name(), e.g. "clamd"
	Role    Role    // what kind of scanner: its headers and default texts
	Kind    Kind    //
	Threat  string  // KindVirus: what was found
	Err     string  // KindError: why the scanner failed (logged, never sent)
	OnError OnError // KindError: this scanner's policy

	// Judging scanners (spam, content rules) advise with KindClean.
	Advice   Action // Accept (nothing to say), Tag, TempFail or Reject
	Text     string // reply text for Reject/TempFail advice; "" = the role's default
	Code     int    // reply code for Reject advice; 0 = 550
	Enhanced string // enhanced code for Reject advice; "" = 5.7.1
	Rule     string // what decided, for logs
	Spam     *Spam  // RoleSpam: the score, for the X-Spam-* headers
	Skipped  string // the scanner chose not to look ("too large"); said in its headers
}

// Role says what a scanner looks for, which decides the headers that speak
// for it and its default texts.
type Role int

// Roles.
const (
	RoleVirus  Role = iota // clamd: X-Virus-*
	RoleSpam               // spamd, rspamd: X-Spam-*
	RolePolicy             // content rules
)

// Spam is a spam scanner's score of a message.
type Spam struct {
	Score, Required float64
	Symbols         []string
	IsSpam          bool
}

// OversizePolicy is what happens to a message over the scan size limit. It
// is never scanned in part: a truncated scan would claim more than it knows.
type OversizePolicy int

// Oversize policies. A value outside these is treated as OversizeReject.
const (
	OversizeReject   OversizePolicy = iota // 552 5.3.4
	OversizeTempFail                       // 451 4.7.1
	OversizeAccept                         // accept, with a status header saying it was not scanned
)

func (o OversizePolicy) String() string {
	switch o {
	case OversizeReject:
		return "reject"
	case OversizeTempFail:
		return "tempfail"
	case OversizeAccept:
		return "accept"
	}
	return "OversizePolicy(" + strconv.Itoa(int(o)) + ")"
}

// Default texts and header names; see [DefaultPolicy].
const (
	DefaultVirusText     = "Virus found: {virus}"
	DefaultTempFailText  = "Content scan temporarily unavailable, try again later"
	DefaultOversizeText  = "Message too large for content scanning"
	DefaultScannedHeader = "X-Virus-Scanned"
	DefaultStatusHeader  = "X-Virus-Status"

	// VirusPlaceholder in Policy.VirusText is replaced by the sanitized
	// threat name.
	VirusPlaceholder = "{virus}"

	// unknownThreat stands in for a threat the scanner did not name.
	unknownThreat = "unknown"

	DefaultSpamText       = "Message considered spam"
	DefaultPolicyText     = "Message refused by content policy"
	DefaultSoftRejectText = "Try again later"
	DefaultPolicyHeader   = "X-Content-Policy"
)

// SpamHeaderNames are the SpamAssassin-style headers nobounce writes when
// a spam scanner is configured, and removes from incoming mail first.
var SpamHeaderNames = []string{"X-Spam-Flag", "X-Spam-Status", "X-Spam-Score", "X-Spam-Level"}

// Policy is the configurable part of a verdict. Texts are sanitized when
// used; an empty text (after sanitizing) falls back to its default, so a
// reply always says something.
type Policy struct {
	VirusText     string // default "Virus found: {virus}"; {virus} is replaced by the sanitized threat name
	TempFailText  string // default "Content scan temporarily unavailable, try again later"
	OversizeText  string // default "Message too large for content scanning"
	Oversize      OversizePolicy
	AddHeaders    bool   // add ScannedHeader/StatusHeader to accepted mail
	ScannedHeader string // default "X-Virus-Scanned"; "" = don't add
	StatusHeader  string // default "X-Virus-Status"; "" = don't add
	ScannedValue  string // e.g. "nobounce 0.1.0 with ClamAV"; set by the caller

	SpamText       string // default "Message considered spam"
	PolicyText     string // default "Message refused by content policy"
	SoftRejectText string // default "Try again later"
	// SpamHeaders turns on X-Spam-Flag, X-Spam-Status, X-Spam-Score and
	// X-Spam-Level (set when a spam scanner is configured).
	SpamHeaders bool
	// PolicyHeader names the header on mail a content rule tagged; "" = none
	// (set to DefaultPolicyHeader when content rules are configured).
	PolicyHeader string
}

// DefaultPolicy is the policy nobounce starts from: reject viruses and
// oversized mail, add both headers. ScannedValue is left for the caller.
func DefaultPolicy() Policy {
	return Policy{
		VirusText:     DefaultVirusText,
		TempFailText:  DefaultTempFailText,
		OversizeText:  DefaultOversizeText,
		Oversize:      OversizeReject,
		AddHeaders:    true,
		ScannedHeader: DefaultScannedHeader,
		StatusHeader:  DefaultStatusHeader,

		SpamText:       DefaultSpamText,
		PolicyText:     DefaultPolicyText,
		SoftRejectText: DefaultSoftRejectText,
	}
}

// Input is everything Decide looks at for one message.
type Input struct {
	Findings []Finding // one per scanner that was run, in configuration order
	Oversize bool      // the message was over the scan size limit
}

// Header is one header field to add to the message. Value is 7-bit and on
// one line; folding it is the milter layer's job.
type Header struct{ Name, Value string }

// Verdict is the decision about one message: Text goes on the wire, Reason
// goes in logs and metrics.
type Verdict struct {
	Action   Action
	Code     int      // RFC 5321 reply code: 250, 451, 550, 552
	Enhanced string   // RFC 3463 status code: "2.0.0", "4.7.1", "5.7.1", "5.3.4"
	Text     string   // goes on the wire; already sanitized
	Reason   Reason   //
	Scanner  string   // the scanner whose finding decided, "" if none
	Threat   string   // sanitized threat name, for logs
	Err      string   // sanitized error of the deciding scanner, for logs; never sent
	Rule     string   // sanitized rule of a judging scanner that decided, for logs
	Headers  []Header // to add when Action is Accept or Tag (may be empty)
}

// Reply codes used by Decide (RFC 5321 §4.2.3) with their RFC 3463
// enhanced codes.
const (
	CodeOK        = 250 // 2.0.0
	CodeTempFail  = 451 // 4.7.1: local error in processing
	CodeRejected  = 550 // 5.7.1: mailbox unavailable / not accepted for policy reasons
	CodeNoStorage = 552 // 5.3.4: exceeded storage allocation (message too big)

	EnhancedOK       = "2.0.0"
	EnhancedTempFail = "4.7.1"
	EnhancedVirus    = "5.7.1"
	EnhancedTooBig   = "5.3.4"

	okText = "OK"
)

// MaxReplyLine is RFC 5321 §4.5.3.1.5's limit on a reply line: 512 octets
// including the code and the CRLF.
const MaxReplyLine = 512

// Limits on the scanner-supplied parts.
const (
	maxThreat = 200 // a threat name in a reply or header
	maxErr    = 300 // a scanner error, for logs
	// maxHeaderValue keeps "Name: value" well within RFC 5322's 998-octet line.
	maxHeaderValue = 200
)

// Header values.
const (
	statusClean       = "Clean"
	statusNotScanned  = "Not scanned: "
	statusTooLarge    = statusNotScanned + "message too large"
	statusScanErrorFm = " error" // "Not scanned: clamd error"
)

// Decide combines the findings for one message under a policy. Precedence
// is fixed:
//
//  1. any virus: Reject, 550 5.7.1, the first virus finding gives the text;
//  2. oversize with policy reject: Reject, 552 5.3.4;
//     oversize with policy tempfail: TempFail, 451 4.7.1;
//  3. a failed scanner whose OnError is tempfail: TempFail, 451 4.7.1;
//  4. otherwise Accept, 250 2.0.0, with a status header that tells the
//     truth: "Not scanned: message too large" (oversize, policy accept),
//     "Not scanned: <scanner> error" (a failed scanner, on_error accept),
//     "Clean" (every scanner answered). With no findings at all and not
//     oversize the reason is ReasonNoScanner and no header is added: nothing
//     was scanned and nothing claims it was.
//
// The Scanned header is only added when the status is "Clean". Headers are
// only added at all when p.AddHeaders is set, and only those whose names
// are valid field names.
//
// The caller passes only findings of scanners that were run: an oversized
// message that no scanner saw has no findings.
func Decide(in Input, p Policy) Verdict {
	for _, f := range in.Findings {
		if f.Kind == KindVirus {
			threat := Sanitize(f.Threat, maxThreat)
			if threat == "" {
				threat = unknownThreat
			}
			text := strings.ReplaceAll(p.VirusText, VirusPlaceholder, threat)
			return reply(Reject, CodeRejected, EnhancedVirus, text, DefaultVirusText, threat, Verdict{
				Reason:  ReasonVirus,
				Scanner: f.Scanner,
				Threat:  threat,
			})
		}
	}

	// 2. a judging scanner advises reject: the first, in configuration order.
	for _, f := range in.Findings {
		if f.Kind == KindClean && f.Advice == Reject {
			code, enhanced := CodeRejected, EnhancedVirus
			if f.Code >= 500 && f.Code <= 599 {
				code = f.Code
			}
			if f.Enhanced != "" && validEnhanced(f.Enhanced, code) {
				enhanced = f.Enhanced
			}
			reason, def := ReasonPolicy, p.PolicyText
			if f.Role == RoleSpam {
				reason, def = ReasonSpam, p.SpamText
			}
			text := f.Text
			if text == "" {
				text = def
			}
			return reply(Reject, code, enhanced, text, DefaultPolicyText, "", Verdict{
				Reason: reason, Scanner: f.Scanner, Rule: Sanitize(f.Rule, maxErr),
			})
		}
	}

	if in.Oversize {
		switch p.Oversize {
		case OversizeAccept:
			// falls through to the scanner errors and accept below
		case OversizeTempFail:
			return reply(TempFail, CodeTempFail, EnhancedTempFail, p.OversizeText, DefaultOversizeText, "", Verdict{
				Reason: ReasonOversize,
			})
		default: // OversizeReject and anything unknown
			return reply(Reject, CodeNoStorage, EnhancedTooBig, p.OversizeText, DefaultOversizeText, "", Verdict{
				Reason: ReasonOversize,
			})
		}
	}

	var acceptedFailure *Finding
	for i, f := range in.Findings {
		if f.Kind == KindClean {
			continue
		}
		// KindError or anything unknown: the scanner gave no usable answer.
		if f.OnError != OnErrorAccept {
			return reply(TempFail, CodeTempFail, EnhancedTempFail, p.TempFailText, DefaultTempFailText, "", Verdict{
				Reason:  ReasonScanError,
				Scanner: f.Scanner,
				Err:     Sanitize(f.Err, maxErr),
			})
		}
		if acceptedFailure == nil {
			acceptedFailure = &in.Findings[i]
		}
	}

	// 4. a judging scanner advises a temporary failure.
	for _, f := range in.Findings {
		if f.Kind == KindClean && f.Advice == TempFail {
			text := f.Text
			if text == "" {
				text = p.SoftRejectText
			}
			return reply(TempFail, CodeTempFail, EnhancedTempFail, text, DefaultSoftRejectText, "", Verdict{
				Reason: ReasonSoftReject, Scanner: f.Scanner, Rule: Sanitize(f.Rule, maxErr),
			})
		}
	}

	v := Verdict{Action: Accept, Code: CodeOK, Enhanced: EnhancedOK, Text: okText}
	var virusFindings, spamFindings int
	for _, f := range in.Findings {
		switch f.Role {
		case RoleVirus:
			virusFindings++
		case RoleSpam:
			spamFindings++
		}
	}
	switch {
	case in.Oversize:
		v.Reason = ReasonOversizeAccept
	case acceptedFailure != nil:
		v.Reason = ReasonScanErrorAccept
		v.Scanner = acceptedFailure.Scanner
		v.Err = Sanitize(acceptedFailure.Err, maxErr)
	case len(in.Findings) == 0:
		v.Reason = ReasonNoScanner
	default:
		v.Reason = ReasonClean
	}
	// The X-Virus-* headers speak for virus scanners only: none ran, none
	// claims anything.
	var status string
	switch {
	case in.Oversize:
		status = statusTooLarge
	case virusFindings == 0:
	default:
		status = statusClean
		for _, f := range in.Findings {
			if f.Role == RoleVirus && f.Kind != KindClean {
				name := Sanitize(f.Scanner, maxThreat)
				if name == "" {
					name = "scanner"
				}
				status = statusNotScanned + name + statusScanErrorFm
				break
			}
		}
	}
	v.Headers = headers(p, status)

	// 5. a judging scanner advises tag: delivered, marked.
	for _, f := range in.Findings {
		if f.Kind == KindClean && f.Advice == Tag {
			v.Action = Tag
			v.Scanner, v.Rule = f.Scanner, Sanitize(f.Rule, maxErr)
			v.Reason = ReasonPolicyTag
			if f.Role == RoleSpam {
				v.Reason = ReasonSpamTag
			}
			break
		}
	}
	if p.AddHeaders && p.SpamHeaders && spamFindings > 0 {
		v.Headers = append(v.Headers, spamHeaders(in.Findings)...)
	}
	if p.AddHeaders && ValidHeaderName(p.PolicyHeader) {
		for _, f := range in.Findings {
			if f.Role == RolePolicy && f.Kind == KindClean && f.Advice == Tag {
				v.Headers = append(v.Headers, Header{Name: p.PolicyHeader, Value: Sanitize(f.Rule, maxHeaderValue)})
			}
		}
	}
	return v
}

// spamHeaders are SpamAssassin's headers for the strongest spam finding
// (the first of equals): X-Spam-Flag only when it is spam.
func spamHeaders(fs []Finding) []Header {
	var best *Finding
	for i, f := range fs {
		if f.Role != RoleSpam {
			continue
		}
		if best == nil || rank(f) > rank(*best) {
			best = &fs[i]
		}
	}
	switch {
	case best.Kind != KindClean:
		return []Header{{"X-Spam-Status", "No, not scanned: " + Sanitize(best.Scanner, maxThreat) + " error"}}
	case best.Skipped != "":
		return []Header{{"X-Spam-Status", "No, not scanned: " + Sanitize(best.Skipped, maxHeaderValue)}}
	case best.Spam == nil:
		return nil
	}
	sp := best.Spam
	yes := sp.IsSpam || best.Advice >= Tag
	var tests []string
	for _, s := range sp.Symbols {
		if t := Sanitize(s, 80); t != "" && !strings.ContainsAny(t, ", ") {
			tests = append(tests, t)
		}
	}
	word := "No"
	if yes {
		word = "Yes"
	}
	status := fmt.Sprintf("%s, score=%.1f required=%.1f tests=%s scanner=%s", word, sp.Score, sp.Required,
		strings.Join(tests, ","), Sanitize(best.Scanner, 40))
	if len(tests) == 0 {
		status = fmt.Sprintf("%s, score=%.1f required=%.1f tests=none scanner=%s", word, sp.Score, sp.Required, Sanitize(best.Scanner, 40))
	}
	level := int(sp.Score)
	level = max(0, min(level, 50))
	hs := []Header{}
	if yes {
		hs = append(hs, Header{"X-Spam-Flag", "YES"})
	}
	hs = append(hs,
		Header{"X-Spam-Status", status},
		Header{"X-Spam-Score", fmt.Sprintf("%.1f", sp.Score)},
	)
	if level > 0 {
		hs = append(hs, Header{"X-Spam-Level", strings.Repeat("*", level)})
	}
	return hs
}

// rank orders spam findings for their headers: a decision over a score,
// a score over a failure.
func rank(f Finding) int {
	switch {
	case f.Kind != KindClean:
		return 0
	case f.Skipped != "":
		return 1
	}
	return 2 + int(f.Advice)
}

// reply builds a non-accept verdict: the text is the configured one, or
// def when that sanitizes to nothing, cut to fit the reply line.
func reply(a Action, code int, enhanced, text, def, threat string, v Verdict) Verdict {
	v.Action, v.Code, v.Enhanced = a, code, enhanced
	limit := textLimit(code, enhanced)
	v.Text = Sanitize(text, limit)
	if v.Text == "" {
		v.Text = Sanitize(strings.ReplaceAll(def, VirusPlaceholder, threat), limit)
	}
	return v
}

// headers lists the headers to add to accepted mail.
func headers(p Policy, status string) []Header {
	if !p.AddHeaders || status == "" {
		return nil
	}
	var hs []Header
	if status == statusClean && ValidHeaderName(p.ScannedHeader) {
		if val := Sanitize(p.ScannedValue, maxHeaderValue); val != "" {
			hs = append(hs, Header{Name: p.ScannedHeader, Value: val})
		}
	}
	if ValidHeaderName(p.StatusHeader) {
		hs = append(hs, Header{Name: p.StatusHeader, Value: Sanitize(status, maxHeaderValue)})
	}
	return hs
}

// textLimit is how many octets of text fit on a reply line after
// "CODE ENHANCED " and before CRLF.
func textLimit(code int, enhanced string) int {
	n := MaxReplyLine - len("\r\n") - len(strconv.Itoa(code)) - 1
	if enhanced != "" {
		n -= len(enhanced) + 1
	}
	return n
}

// Reply is the reply line without its CRLF, exactly as an SMTP client sees
// it: "550 5.7.1 Virus found: Eicar-Signature". It is one line of
// printable ASCII without '%', at most MaxReplyLine-2 octets, whatever the
// Verdict holds: the text is sanitized again (a no-op for Decide's
// verdicts), and a Verdict with no Code gets the codes of its Action.
func (v Verdict) Reply() string {
	code, enhanced := v.Code, v.Enhanced
	if code < 200 || code > 599 {
		code, enhanced = defaultCodes(v.Action)
	}
	if !validEnhanced(enhanced, code) {
		enhanced = ""
	}
	text := Sanitize(v.Text, textLimit(code, enhanced))
	var b strings.Builder
	b.WriteString(strconv.Itoa(code))
	if enhanced != "" {
		b.WriteByte(' ')
		b.WriteString(enhanced)
	}
	if text != "" {
		b.WriteByte(' ')
		b.WriteString(text)
	}
	return b.String()
}

func defaultCodes(a Action) (int, string) {
	switch a {
	case TempFail:
		return CodeTempFail, EnhancedTempFail
	case Reject:
		return CodeRejected, EnhancedVirus
	}
	return CodeOK, EnhancedOK
}

// validEnhanced reports whether s is an RFC 3463 status code
// (class "." subject "." detail, 1-3 digits each, subject and detail
// without leading zeros) whose class matches the reply code.
func validEnhanced(s string, code int) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || parts[0] != strconv.Itoa(code/100) {
		return false
	}
	for _, p := range parts {
		if len(p) == 0 || len(p) > 3 || (len(p) > 1 && p[0] == '0') {
			return false
		}
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return false
			}
		}
	}
	return true
}

// HeaderNames lists the header fields nobounce owns under p: the milter
// layer removes incoming copies of them before adding its own, so a sender
// cannot forge "X-Virus-Status: Clean". With AddHeaders off nobounce owns
// none (another filter may be adding them) and the list is empty.
func HeaderNames(p Policy) []string {
	if !p.AddHeaders {
		return nil
	}
	var names []string
	for _, n := range []string{p.ScannedHeader, p.StatusHeader} {
		if ValidHeaderName(n) {
			names = append(names, n)
		}
	}
	if p.SpamHeaders {
		names = append(names, SpamHeaderNames...)
	}
	if ValidHeaderName(p.PolicyHeader) {
		names = append(names, p.PolicyHeader)
	}
	return names
}

// ValidHeaderName reports whether s is an RFC 5322 §3.6.8 field name: one
// or more printable ASCII characters other than ':' (33-57, 59-126).
func ValidHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 33 || c > 126 || c == ':' {
			return false
		}
	}
	return true
}
