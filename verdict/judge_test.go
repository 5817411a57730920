package verdict

import (
	"strings"
	"testing"
)

func TestDecideJudging(t *testing.T) {
	p := DefaultPolicy()
	p.ScannedValue = "nobounce test"
	p.SpamHeaders = true
	p.PolicyHeader = DefaultPolicyHeader
	clamClean := Finding{Scanner: "clamd", Role: RoleVirus, Kind: KindClean}
	virus := Finding{Scanner: "clamd", Role: RoleVirus, Kind: KindVirus, Threat: "Eicar"}
	spam := func(advice Action, score float64) Finding {
		return Finding{Scanner: "spamd", Role: RoleSpam, Kind: KindClean, Advice: advice,
			Spam: &Spam{Score: score, Required: 5, Symbols: []string{"GTUBE", "BAYES_99"}, IsSpam: score >= 5}}
	}
	rspamdSoft := Finding{Scanner: "rspamd", Role: RoleSpam, Kind: KindClean, Advice: TempFail, Text: "Try again\r\nlater %s",
		Spam: &Spam{Score: 7, Required: 15}}
	rspamdReject := Finding{Scanner: "rspamd", Role: RoleSpam, Kind: KindClean, Advice: Reject, Text: "Gtube pattern",
		Spam: &Spam{Score: 1000, Required: 15, IsSpam: true}}
	exe := Finding{Scanner: "mime", Role: RolePolicy, Kind: KindClean, Advice: Reject,
		Text: `Attachment "x.exe" is not allowed here`, Rule: "banned-extension exe"}
	malformed := Finding{Scanner: "mime", Role: RolePolicy, Kind: KindClean, Advice: Reject, Code: 550, Enhanced: "5.6.0",
		Text: "Malformed MIME"}
	tagged := Finding{Scanner: "mime", Role: RolePolicy, Kind: KindClean, Advice: Tag, Rule: "header-rule 1"}
	spamFailed := Finding{Scanner: "spamd", Role: RoleSpam, Kind: KindError, Err: "refused", OnError: OnErrorAccept}
	spamSkipped := Finding{Scanner: "spamd", Role: RoleSpam, Kind: KindClean, Skipped: "too large"}

	tests := []struct {
		name     string
		in       []Finding
		reply    string
		action   Action
		reason   Reason
		headers  []string // "Name: value" prefixes that must be there
		noHeader []string // names that must not be there
	}{
		{"virus beats spam reject", []Finding{spam(Reject, 1000), virus}, "550 5.7.1 Virus found: Eicar", Reject, ReasonVirus, nil, nil},
		{"spam reject, default text", []Finding{clamClean, spam(Reject, 15)}, "550 5.7.1 Message considered spam", Reject, ReasonSpam, nil, nil},
		{"rspamd reject with its own text", []Finding{clamClean, rspamdReject}, "550 5.7.1 Gtube pattern", Reject, ReasonSpam, nil, nil},
		{"reject beats soft reject", []Finding{rspamdSoft, spam(Reject, 12)}, "550 5.7.1 Message considered spam", Reject, ReasonSpam, nil, nil},
		{"soft reject, sanitized", []Finding{clamClean, rspamdSoft}, "451 4.7.1 Try again later pcts", TempFail, ReasonSoftReject, nil, nil},
		{"scanner error beats soft reject", []Finding{rspamdSoft, {Scanner: "clamd", Kind: KindError, Err: "x"}}, "451 4.7.1 Content scan temporarily unavailable, try again later", TempFail, ReasonScanError, nil, nil},
		{"soft reject beats tag", []Finding{spam(Tag, 6), rspamdSoft}, "451 4.7.1", TempFail, ReasonSoftReject, nil, nil},
		{"spam tag", []Finding{clamClean, spam(Tag, 6.25)}, "250 2.0.0", Tag, ReasonSpamTag,
			[]string{"X-Virus-Status: Clean", "X-Spam-Flag: YES", "X-Spam-Status: Yes, score=6.2 required=5.0 tests=GTUBE,BAYES_99", "X-Spam-Score: 6.2", "X-Spam-Level: ******"}, nil},
		{"ham", []Finding{clamClean, spam(Accept, 1.5)}, "250 2.0.0", Accept, ReasonClean,
			[]string{"X-Spam-Status: No, score=1.5 required=5.0", "X-Spam-Level: *"}, []string{"X-Spam-Flag"}},
		{"negative score", []Finding{spam(Accept, -2)}, "250 2.0.0", Accept, ReasonClean,
			[]string{"X-Spam-Status: No, score=-2.0"}, []string{"X-Spam-Level", "X-Virus-Status", "X-Virus-Scanned"}},
		{"spam scanner failed, accepted", []Finding{clamClean, spamFailed}, "250 2.0.0", Accept, ReasonScanErrorAccept,
			[]string{"X-Spam-Status: No, not scanned: spamd error", "X-Virus-Status: Clean"}, nil},
		{"spam scan skipped", []Finding{clamClean, spamSkipped}, "250 2.0.0", Accept, ReasonClean,
			[]string{"X-Spam-Status: No, not scanned: too large"}, []string{"X-Spam-Flag"}},
		{"attachment rule", []Finding{clamClean, exe}, `550 5.7.1 Attachment "x.exe" is not allowed here`, Reject, ReasonPolicy, nil, nil},
		{"malformed MIME with its codes", []Finding{malformed}, "550 5.6.0 Malformed MIME", Reject, ReasonPolicy, nil, nil},
		{"policy tag header", []Finding{clamClean, tagged}, "250 2.0.0", Tag, ReasonPolicyTag, []string{"X-Content-Policy: header-rule 1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Decide(Input{Findings: tt.in}, p)
			if !strings.HasPrefix(v.Reply(), tt.reply) || v.Action != tt.action || v.Reason != tt.reason {
				t.Fatalf("got %q %v %v, want %q %v %v", v.Reply(), v.Action, v.Reason, tt.reply, tt.action, tt.reason)
			}
			var got []string
			for _, h := range v.Headers {
				got = append(got, h.Name+": "+h.Value)
			}
			for _, want := range tt.headers {
				found := false
				for _, g := range got {
					found = found || strings.HasPrefix(g, want)
				}
				if !found {
					t.Errorf("header %q missing in %q", want, got)
				}
			}
			for _, name := range tt.noHeader {
				for _, g := range got {
					if strings.HasPrefix(g, name+":") {
						t.Errorf("unexpected header %q", g)
					}
				}
			}
		})
	}
}

func TestHeaderNamesSpamAndPolicy(t *testing.T) {
	p := DefaultPolicy()
	p.SpamHeaders = true
	p.PolicyHeader = DefaultPolicyHeader
	got := strings.Join(HeaderNames(p), " ")
	want := "X-Virus-Scanned X-Virus-Status X-Spam-Flag X-Spam-Status X-Spam-Score X-Spam-Level X-Content-Policy"
	if got != want {
		t.Errorf("HeaderNames = %q, want %q", got, want)
	}
}
