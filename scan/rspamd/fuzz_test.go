package rspamd

import (
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/nobounce/nobounce/scan"
)

// FuzzRspamdResult feeds arbitrary answers and thresholds to the mapper:
// it must not panic, every failure must be ErrAnswer, and what it accepts
// must keep the mapping's promises.
func FuzzRspamdResult(f *testing.F) {
	for _, s := range []string{
		okAnswer, gtubeAnswer,
		answer("add header", 7, ""),
		answer("rewrite subject", 8, `,"subject":"***SPAM*** Hello"`),
		answer("soft reject", 3, `,"messages":{"smtp_message":"Try again later"}`),
		answer("greylist", 4.5, `,"messages":{"smtp_message":"x","other":{"a":1}}`),
		answer("reject", 16, `,"messages":{"smtp_message":"Spam message rejected"}`),
		`{"action":"discard","score":-3,"required_score":0}`,
		`{"error":"invalid command","error_domain":"protocol-error"}`,
		`{"action":"reject","score":1e308,"required_score":-1e308,"symbols":{"":{}}}`,
		`null`, ``,
	} {
		f.Add([]byte(s), 0.0, 0.0)
		f.Add([]byte(s), 5.0, 10.0)
	}
	f.Fuzz(func(t *testing.T, data []byte, tagAt, rejectAt float64) {
		if math.IsNaN(tagAt) || math.IsNaN(rejectAt) || tagAt < 0 || rejectAt < 0 {
			return // New refuses these
		}
		r, err := mapAnswer(data, policy{tagAt: tagAt, rejectAt: rejectAt})
		if err != nil {
			if !errors.Is(err, ErrAnswer) {
				t.Fatalf("error is not ErrAnswer: %v", err)
			}
			return
		}
		if r.Status != scan.Clean || r.Spam == nil || r.Rule == "" || r.Advice < scan.AdviseNone || r.Advice > scan.AdviseReject {
			t.Fatalf("result %+v", r)
		}
		sp := r.Spam
		if math.IsNaN(sp.Score) || math.IsInf(sp.Score, 0) || math.IsNaN(sp.Required) || math.IsInf(sp.Required, 0) {
			t.Fatalf("score %v / %v", sp.Score, sp.Required)
		}
		if !slices.IsSorted(sp.Symbols) || len(slices.Compact(slices.Clone(sp.Symbols))) != len(sp.Symbols) {
			t.Fatalf("symbols not sorted and unique: %q", sp.Symbols)
		}
		if r.Reply != "" && r.Advice != scan.AdviseReject && r.Advice != scan.AdviseTempFail {
			t.Fatalf("reply %q with advice %v", r.Reply, r.Advice)
		}
		var c checkv2
		if json.Unmarshal(data, &c) != nil || c.Action == nil {
			t.Fatal("accepted what does not decode")
		}
		preFilter := c.IsSkipped
		if rejectAt > 0 && sp.Score >= rejectAt && !preFilter && r.Advice != scan.AdviseReject {
			t.Fatalf("score %v >= reject_at %v, advice %v", sp.Score, rejectAt, r.Advice)
		}
		if rejectAt > 0 && sp.Score < rejectAt && !preFilter && r.Advice == scan.AdviseReject {
			t.Fatalf("score %v < reject_at %v, advice reject", sp.Score, rejectAt)
		}
		if tagAt > 0 && !preFilter && r.Advice == scan.AdviseNone && sp.Score >= tagAt {
			t.Fatalf("score %v >= tag_at %v, advice none", sp.Score, tagAt)
		}
		if tagAt == 0 && rejectAt == 0 && *c.Action == ActionNoAction && r.Advice != scan.AdviseNone {
			t.Fatalf("no action gave %v", r.Advice)
		}
		if subj, ok := strings.CutPrefix(r.Rule, RewriteSubjectPrefix); ok {
			if *c.Action != ActionRewriteSubject || c.Subject == nil || *c.Subject != subj || r.Advice != scan.AdviseTag {
				t.Fatalf("rule %q for action %q", r.Rule, *c.Action)
			}
		}
	})
}
