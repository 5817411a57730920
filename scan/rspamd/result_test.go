package rspamd

import (
	"errors"
	"strings"
	"testing"

	"github.com/nobounce/nobounce/scan"
)

// answer builds a /checkv2 answer.
func answer(action string, score float64, extra string) string {
	return `{"is_skipped":false,"score":` + fmtScore(score) + `,"required_score":15.0,"action":"` + action + `",` +
		`"symbols":{"B_SYM":{"score":1},"A_SYM":{"score":2}}` + extra + `}`
}

func TestMapAnswer(t *testing.T) {
	msg := `,"messages":{"smtp_message":"Spam message rejected; see https://example.org/why"}`
	tests := []struct {
		name            string
		body            string
		tagAt, rejectAt float64
		advice          scan.Advice
		rule            string
		reply           string
		isSpam          bool
	}{
		{name: "no action", body: answer("no action", 0.1, ""), advice: scan.AdviseNone, rule: "action no action"},
		{name: "greylist", body: answer("greylist", 4.5, msg), advice: scan.AdviseNone, rule: "action greylist"},
		{name: "add header", body: answer("add header", 7, msg), advice: scan.AdviseTag, rule: "action add header", isSpam: true},
		{name: "rewrite subject", body: answer("rewrite subject", 8, `,"subject":"***SPAM*** Hello"`),
			advice: scan.AdviseTag, rule: "rewrite subject: ***SPAM*** Hello", isSpam: true},
		{name: "rewrite subject without subject", body: answer("rewrite subject", 8, ""),
			advice: scan.AdviseTag, rule: "action rewrite subject", isSpam: true},
		{name: "soft reject", body: answer("soft reject", 3, `,"messages":{"smtp_message":"Try again later"}`),
			advice: scan.AdviseTempFail, rule: "action soft reject", reply: "Try again later", isSpam: true},
		{name: "reject", body: answer("reject", 16, msg), advice: scan.AdviseReject, rule: "action reject",
			reply: "Spam message rejected; see https://example.org/why", isSpam: true},
		{name: "reject without message", body: answer("reject", 16, ""), advice: scan.AdviseReject, rule: "action reject", isSpam: true},
		{name: "reject, message not a string", body: answer("reject", 16, `,"messages":{"smtp_message":["x"]}`),
			advice: scan.AdviseReject, rule: "action reject", isSpam: true},
		{name: "gtube", body: gtubeAnswer, advice: scan.AdviseReject, rule: "action reject (pre-filter)", reply: "Gtube pattern", isSpam: true},
		{name: "discard", body: answer("discard", 30, ""), advice: scan.AdviseReject, rule: "action discard", isSpam: true},
		{name: "quarantine", body: answer("quarantine", 30, ""), advice: scan.AdviseReject, rule: "action quarantine", isSpam: true},

		// Thresholds decide instead of rspamd's score bands.
		{name: "reject at, reached", body: answer("add header", 12, msg), rejectAt: 12,
			advice: scan.AdviseReject, rule: "score 12 >= 12", reply: "Spam message rejected; see https://example.org/why", isSpam: true},
		{name: "reject at, rspamd rejects below it", body: answer("reject", 16, msg), rejectAt: 20,
			advice: scan.AdviseTag, rule: "score 16 < 20 (rspamd: reject)", isSpam: true},
		{name: "tag at, reached", body: answer("no action", 3.5, ""), tagAt: 3,
			advice: scan.AdviseTag, rule: "score 3.5 >= 3"},
		{name: "tag at, not reached", body: answer("add header", 7, ""), tagAt: 9,
			advice: scan.AdviseNone, rule: "score 7 < 9", isSpam: true},
		{name: "tag at leaves rspamd's reject", body: answer("reject", 16, msg), tagAt: 9,
			advice: scan.AdviseReject, rule: "action reject", reply: "Spam message rejected; see https://example.org/why", isSpam: true},
		{name: "both", body: answer("add header", 7, ""), tagAt: 5, rejectAt: 6.5,
			advice: scan.AdviseReject, rule: "score 7 >= 6.5", isSpam: true},
		{name: "both, rspamd rejects below both", body: answer("reject", 16, ""), tagAt: 17, rejectAt: 20,
			advice: scan.AdviseNone, rule: "score 16 < 17", isSpam: true},
		{name: "thresholds leave soft reject", body: answer("soft reject", 3, ""), tagAt: 2, rejectAt: 10,
			advice: scan.AdviseTempFail, rule: "action soft reject", isSpam: true},
		{name: "thresholds leave a pre-filter", body: gtubeAnswer, tagAt: 2, rejectAt: 100,
			advice: scan.AdviseReject, rule: "action reject (pre-filter)", reply: "Gtube pattern", isSpam: true},
		{name: "rewrite subject tagged by threshold", body: answer("rewrite subject", 8, `,"subject":"[SPAM] Hi"`), tagAt: 5,
			advice: scan.AdviseTag, rule: "rewrite subject: [SPAM] Hi", isSpam: true},
		{name: "rewrite subject below tag at", body: answer("rewrite subject", 8, `,"subject":"[SPAM] Hi"`), tagAt: 9,
			advice: scan.AdviseNone, rule: "score 8 < 9", isSpam: true},
	}
	for _, tt := range tests {
		r, err := mapAnswer([]byte(tt.body), policy{tagAt: tt.tagAt, rejectAt: tt.rejectAt})
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if r.Status != scan.Clean || r.Advice != tt.advice || r.Rule != tt.rule || r.Reply != tt.reply {
			t.Errorf("%s: %v %v %q reply %q, want %v %q reply %q", tt.name, r.Status, r.Advice, r.Rule, r.Reply, tt.advice, tt.rule, tt.reply)
		}
		if r.Spam == nil || r.Spam.IsSpam != tt.isSpam {
			t.Errorf("%s: spam %+v, want is-spam %v", tt.name, r.Spam, tt.isSpam)
		}
	}

	r, _ := mapAnswer([]byte(answer("add header", 7.25, "")), policy{})
	if s := r.Spam; s.Score != 7.25 || s.Required != 15 || strings.Join(s.Symbols, ",") != "A_SYM,B_SYM" {
		t.Errorf("spam %+v: want score 7.25, required 15, symbols sorted", s)
	}
	r, _ = mapAnswer([]byte(`{"score":0,"required_score":15,"action":"no action"}`), policy{})
	if r.Spam == nil || r.Spam.Symbols == nil || len(r.Spam.Symbols) != 0 {
		t.Errorf("no symbols: %+v", r.Spam)
	}
}

func TestMapAnswerErrors(t *testing.T) {
	for _, tt := range []struct{ body, err string }{
		{``, "not the JSON"},
		{`<html>502 Bad Gateway</html>`, "not the JSON"},
		{`{"score":1,"required_score":15}`, "no action"},
		{`{"action":"reject","required_score":15}`, "no score"},
		{`{"action":"reject","score":16}`, "no required_score"},
		{`{"action":"reject","score":"16","required_score":15}`, "not the JSON"},
		{`{"action":null,"score":1,"required_score":15}`, "no action"},
		{`{"action":"add_header","score":7,"required_score":15}`, `unknown action "add_header"`},
		{`{"action":"reject","score":16,"required_score":15,"symbols":[]}`, "not the JSON"},
		{`{"action":"reject","score":1e999,"required_score":15}`, "not the JSON"},
		{`[]`, "not the JSON"},
	} {
		_, err := mapAnswer([]byte(tt.body), policy{})
		if err == nil || !errors.Is(err, ErrAnswer) || !strings.Contains(err.Error(), tt.err) {
			t.Errorf("%q: %v, want ErrAnswer with %q", tt.body, err, tt.err)
		}
	}
}

func TestNewSubject(t *testing.T) {
	r, _ := mapAnswer([]byte(answer("rewrite subject", 8, `,"subject":"***SPAM*** Hello"`)), policy{})
	r.Scanner = "rspamd"
	if s, ok := NewSubject(r); !ok || s != "***SPAM*** Hello" {
		t.Errorf("NewSubject = %q, %v", s, ok)
	}
	for _, r := range []scan.Result{
		{Scanner: "rspamd", Advice: scan.AdviseTag, Rule: "action add header"},
		{Scanner: "rspamd", Advice: scan.AdviseNone, Rule: "rewrite subject: x"},
		{Scanner: "spamd", Advice: scan.AdviseTag, Rule: "rewrite subject: x"},
	} {
		if s, ok := NewSubject(r); ok {
			t.Errorf("NewSubject(%+v) = %q", r, s)
		}
	}
}
