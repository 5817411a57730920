package rspamd

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/nobounce/nobounce/scan"
)

// rspamd's actions (rspamd's "actions" configuration; the names the
// /checkv2 answer uses).
const (
	ActionReject         = "reject"
	ActionSoftReject     = "soft reject"
	ActionRewriteSubject = "rewrite subject"
	ActionAddHeader      = "add header"
	ActionGreylist       = "greylist"
	ActionNoAction       = "no action"
	ActionDiscard        = "discard"
	ActionQuarantine     = "quarantine"
)

// RewriteSubjectPrefix starts Result.Rule when rspamd's action is "rewrite
// subject"; the rest of the Rule is the subject rspamd proposes. Use
// NewSubject rather than this directly.
const RewriteSubjectPrefix = "rewrite subject: "

// NewSubject returns the subject rspamd wants a message to have when its
// action was "rewrite subject" (the advice is then to tag), unsanitized.
// The caller rewrites the subject only if so configured.
func NewSubject(r scan.Result) (string, bool) {
	if r.Scanner != "rspamd" || r.Advice != scan.AdviseTag {
		return "", false
	}
	return strings.CutPrefix(r.Rule, RewriteSubjectPrefix)
}

// ErrAnswer is in the error of an answer that is not what /checkv2 sends:
// not JSON, a required field missing or of the wrong type, an unknown
// action.
var ErrAnswer = errors.New("unexpected answer")

// checkv2 is the part of rspamd's /checkv2 answer that nobounce uses.
// Pointers tell a missing field from a zero one.
type checkv2 struct {
	Action   *string                    `json:"action"`
	Score    *float64                   `json:"score"`
	Required *float64                   `json:"required_score"`
	Symbols  map[string]json.RawMessage `json:"symbols"`
	Messages map[string]json.RawMessage `json:"messages"`
	Subject  *string                    `json:"subject"`
	// IsSkipped is true when rspamd stopped early because a pre-filter
	// decided (GTUBE, settings, a forced action): the action is still its
	// answer, only not every rule ran.
	IsSkipped bool `json:"is_skipped"`
}

// policy is what the mapping needs from Options.
type policy struct {
	tagAt, rejectAt float64 // 0: rspamd's action decides
}

// mapAnswer turns rspamd's JSON answer into a Clean result with advice, or
// an error wrapping ErrAnswer. The result's Reply is rspamd's
// smtp_message for a reject or soft reject, unsanitized.
func mapAnswer(body []byte, p policy) (scan.Result, error) {
	var c checkv2
	if err := json.Unmarshal(body, &c); err != nil {
		return scan.Result{}, fmt.Errorf("%w: not the JSON of /checkv2: %v", ErrAnswer, err)
	}
	switch {
	case c.Action == nil:
		return scan.Result{}, fmt.Errorf("%w: no action", ErrAnswer)
	case c.Score == nil:
		return scan.Result{}, fmt.Errorf("%w: no score", ErrAnswer)
	case c.Required == nil:
		return scan.Result{}, fmt.Errorf("%w: no required_score", ErrAnswer)
	}
	score, required, action := *c.Score, *c.Required, *c.Action
	// encoding/json never yields NaN or Inf, but keep the promise local.
	if math.IsNaN(score) || math.IsInf(score, 0) || math.IsNaN(required) || math.IsInf(required, 0) {
		return scan.Result{}, fmt.Errorf("%w: score %v / %v", ErrAnswer, score, required)
	}

	var advice scan.Advice
	isSpam := false
	switch action {
	case ActionReject, ActionDiscard, ActionQuarantine:
		// nobounce never drops mail silently and has no quarantine: what
		// rspamd would not deliver is refused while the sender is connected.
		advice, isSpam = scan.AdviseReject, true
	case ActionSoftReject:
		advice, isSpam = scan.AdviseTempFail, true
	case ActionRewriteSubject, ActionAddHeader:
		advice, isSpam = scan.AdviseTag, true
	case ActionGreylist, ActionNoAction:
		// "greylist" is only the score band in which rspamd's greylist
		// module would defer a message; when it does, the action becomes
		// "soft reject". rspamd's own milter accepts "greylist" too: a
		// 451 here would defer the message at every retry, until the
		// sender's server gives up and bounces it.
		advice = scan.AdviseNone
	default:
		return scan.Result{}, fmt.Errorf("%w: unknown action %q", ErrAnswer, truncate(action))
	}

	symbols := make([]string, 0, len(c.Symbols))
	for name := range c.Symbols {
		symbols = append(symbols, name)
	}
	slices.Sort(symbols)

	r := scan.Result{
		Status: scan.Clean,
		Spam:   &scan.Spam{Score: score, Required: required, Symbols: symbols, IsSpam: isSpam},
	}
	rule := "action " + action
	if c.IsSkipped {
		// A pre-filter decided (GTUBE, a forced action): rspamd's policy,
		// not a score, so the thresholds leave it alone.
		rule += " (pre-filter)"
	} else {
		if p.rejectAt > 0 {
			if score >= p.rejectAt {
				advice, rule = scan.AdviseReject, "score "+fmtScore(score)+" >= "+fmtScore(p.rejectAt)
			} else if advice == scan.AdviseReject {
				// rspamd would reject, our threshold does not: spam, tagged.
				advice, rule = scan.AdviseTag, "score "+fmtScore(score)+" < "+fmtScore(p.rejectAt)+" (rspamd: "+action+")"
			}
		}
		if p.tagAt > 0 && (advice == scan.AdviseNone || advice == scan.AdviseTag) {
			if score >= p.tagAt {
				advice, rule = scan.AdviseTag, "score "+fmtScore(score)+" >= "+fmtScore(p.tagAt)
			} else {
				advice, rule = scan.AdviseNone, "score "+fmtScore(score)+" < "+fmtScore(p.tagAt)
			}
		}
	}
	if advice == scan.AdviseReject || advice == scan.AdviseTempFail {
		if raw, ok := c.Messages["smtp_message"]; ok {
			var msg string
			if json.Unmarshal(raw, &msg) == nil {
				r.Reply = msg
			}
		}
	}
	if action == ActionRewriteSubject && advice == scan.AdviseTag && c.Subject != nil {
		rule = RewriteSubjectPrefix + *c.Subject
	}
	r.Advice, r.Rule = advice, rule
	return r, nil
}

// fmtScore writes a score the short way: "15", "6.5", "-0.1".
func fmtScore(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

// truncate keeps text from the server short in errors.
func truncate(s string) string {
	const max = 120
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
