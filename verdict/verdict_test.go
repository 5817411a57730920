package verdict

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

var (
	clean      = Finding{Scanner: "clamd", Kind: KindClean}
	clean2     = Finding{Scanner: "mime", Kind: KindClean}
	eicar      = Finding{Scanner: "clamd", Kind: KindVirus, Threat: "Eicar-Signature"}
	virus2     = Finding{Scanner: "rspamd", Kind: KindVirus, Threat: "Other.Thing"}
	errTemp    = Finding{Scanner: "clamd", Kind: KindError, Err: "dial unix /run/clamav/clamd.ctl: connect: no such file", OnError: OnErrorTempFail}
	errTemp2   = Finding{Scanner: "spamd", Kind: KindError, Err: "timeout", OnError: OnErrorTempFail}
	errAccept  = Finding{Scanner: "clamd", Kind: KindError, Err: "timeout", OnError: OnErrorAccept}
	errAccept2 = Finding{Scanner: "spamd", Kind: KindError, Err: "refused", OnError: OnErrorAccept}
)

func policy(mod func(*Policy)) Policy {
	p := DefaultPolicy()
	p.ScannedValue = "nobounce 0.1.0 with ClamAV"
	if mod != nil {
		mod(&p)
	}
	return p
}

func oversize(o OversizePolicy) func(*Policy) { return func(p *Policy) { p.Oversize = o } }

var (
	hScanned     = Header{"X-Virus-Scanned", "nobounce 0.1.0 with ClamAV"}
	hClean       = Header{"X-Virus-Status", "Clean"}
	hTooLarge    = Header{"X-Virus-Status", "Not scanned: message too large"}
	hClamdError  = Header{"X-Virus-Status", "Not scanned: clamd error"}
	hSpamdError  = Header{"X-Virus-Status", "Not scanned: spamd error"}
	virusVerdict = Verdict{Action: Reject, Code: 550, Enhanced: "5.7.1", Text: "Virus found: Eicar-Signature",
		Reason: ReasonVirus, Scanner: "clamd", Threat: "Eicar-Signature"}
	tooBigVerdict  = Verdict{Action: Reject, Code: 552, Enhanced: "5.3.4", Text: "Message too large for content scanning", Reason: ReasonOversize}
	tooBigTempFail = Verdict{Action: TempFail, Code: 451, Enhanced: "4.7.1", Text: "Message too large for content scanning", Reason: ReasonOversize}
	scanErrVerdict = Verdict{Action: TempFail, Code: 451, Enhanced: "4.7.1", Text: "Content scan temporarily unavailable, try again later",
		Reason: ReasonScanError, Scanner: "clamd", Err: "dial unix /run/clamav/clamd.ctl: connect: no such file"}
)

func accepted(r Reason, hs ...Header) Verdict {
	return Verdict{Action: Accept, Code: 250, Enhanced: "2.0.0", Text: "OK", Reason: r, Headers: hs}
}

func TestDecide(t *testing.T) {
	tests := []struct {
		name string
		in   Input
		p    Policy
		want Verdict
	}{
		// Every reason.
		{"clean", Input{Findings: []Finding{clean}}, policy(nil), accepted(ReasonClean, hScanned, hClean)},
		{"clean two scanners", Input{Findings: []Finding{clean, clean2}}, policy(nil), accepted(ReasonClean, hScanned, hClean)},
		{"virus", Input{Findings: []Finding{eicar}}, policy(nil), virusVerdict},
		{"scan error tempfail", Input{Findings: []Finding{errTemp}}, policy(nil), scanErrVerdict},
		{"scan error accept", Input{Findings: []Finding{errAccept}}, policy(nil),
			func() Verdict {
				v := accepted(ReasonScanErrorAccept, hClamdError)
				v.Scanner, v.Err = "clamd", "timeout"
				return v
			}()},
		{"oversize reject", Input{Oversize: true}, policy(nil), tooBigVerdict},
		{"oversize tempfail", Input{Oversize: true}, policy(oversize(OversizeTempFail)), tooBigTempFail},
		{"oversize accept", Input{Oversize: true}, policy(oversize(OversizeAccept)), accepted(ReasonOversizeAccept, hTooLarge)},
		{"no scanner", Input{}, policy(nil), accepted(ReasonNoScanner)},
		{"no scanner empty slice", Input{Findings: []Finding{}}, policy(nil), accepted(ReasonNoScanner)},

		// Virus beats everything.
		{"virus beats oversize reject", Input{Findings: []Finding{eicar}, Oversize: true}, policy(nil), virusVerdict},
		{"virus beats oversize tempfail", Input{Findings: []Finding{eicar}, Oversize: true}, policy(oversize(OversizeTempFail)), virusVerdict},
		{"virus beats oversize accept", Input{Findings: []Finding{eicar}, Oversize: true}, policy(oversize(OversizeAccept)), virusVerdict},
		{"virus beats earlier scan error", Input{Findings: []Finding{errTemp2, eicar}}, policy(nil), virusVerdict},
		{"virus beats accepted error", Input{Findings: []Finding{errAccept2, eicar}}, policy(nil), virusVerdict},
		{"virus after clean", Input{Findings: []Finding{clean2, eicar}}, policy(nil), virusVerdict},
		{"first virus wins", Input{Findings: []Finding{eicar, virus2}}, policy(nil), virusVerdict},
		{"first virus wins other order", Input{Findings: []Finding{virus2, eicar}}, policy(nil),
			Verdict{Action: Reject, Code: 550, Enhanced: "5.7.1", Text: "Virus found: Other.Thing", Reason: ReasonVirus, Scanner: "rspamd", Threat: "Other.Thing"}},

		// Oversize (reject/tempfail) beats scanner errors.
		{"oversize reject beats scan error", Input{Findings: []Finding{errTemp}, Oversize: true}, policy(nil), tooBigVerdict},
		{"oversize tempfail beats scan error", Input{Findings: []Finding{errTemp}, Oversize: true}, policy(oversize(OversizeTempFail)), tooBigTempFail},
		{"oversize reject beats clean", Input{Findings: []Finding{clean}, Oversize: true}, policy(nil), tooBigVerdict},
		// Oversize accept falls through to scanner errors.
		{"scan error beats oversize accept", Input{Findings: []Finding{errTemp}, Oversize: true}, policy(oversize(OversizeAccept)), scanErrVerdict},
		{"oversize accept with accepted error", Input{Findings: []Finding{errAccept}, Oversize: true}, policy(oversize(OversizeAccept)),
			func() Verdict {
				v := accepted(ReasonOversizeAccept, hTooLarge)
				v.Scanner, v.Err = "", ""
				return v
			}()},
		{"oversize accept with clean", Input{Findings: []Finding{clean}, Oversize: true}, policy(oversize(OversizeAccept)), accepted(ReasonOversizeAccept, hTooLarge)},

		// Scanner errors among themselves.
		{"tempfail error beats accepted error", Input{Findings: []Finding{errAccept2, errTemp}}, policy(nil), scanErrVerdict},
		{"first tempfail error decides", Input{Findings: []Finding{errTemp, errTemp2}}, policy(nil), scanErrVerdict},
		{"first accepted error named", Input{Findings: []Finding{clean2, errAccept2, errAccept}}, policy(nil),
			func() Verdict {
				v := accepted(ReasonScanErrorAccept, hSpamdError)
				v.Scanner, v.Err = "spamd", "refused"
				return v
			}()},
		{"tempfail error beats clean", Input{Findings: []Finding{clean2, errTemp}}, policy(nil), scanErrVerdict},
		{"unknown kind fails safe", Input{Findings: []Finding{{Scanner: "clamd", Kind: Kind(9), Err: "dial unix /run/clamav/clamd.ctl: connect: no such file"}}}, policy(nil), scanErrVerdict},
		{"unknown on_error fails safe", Input{Findings: []Finding{{Scanner: "clamd", Kind: KindError, Err: "dial unix /run/clamav/clamd.ctl: connect: no such file", OnError: OnError(7)}}}, policy(nil), scanErrVerdict},
		{"unknown oversize policy rejects", Input{Oversize: true}, policy(oversize(OversizePolicy(9))), tooBigVerdict},

		// Headers.
		{"headers off", Input{Findings: []Finding{clean}}, policy(func(p *Policy) { p.AddHeaders = false }), accepted(ReasonClean)},
		{"no scanned header", Input{Findings: []Finding{clean}}, policy(func(p *Policy) { p.ScannedHeader = "" }), accepted(ReasonClean, hClean)},
		{"no status header", Input{Findings: []Finding{clean}}, policy(func(p *Policy) { p.StatusHeader = "" }), accepted(ReasonClean, hScanned)},
		{"no scanned value", Input{Findings: []Finding{clean}}, policy(func(p *Policy) { p.ScannedValue = " " }), accepted(ReasonClean, hClean)},
		{"invalid header name skipped", Input{Findings: []Finding{clean}}, policy(func(p *Policy) { p.StatusHeader = "X-Bad Name:" }), accepted(ReasonClean, hScanned)},
		{"scanned value sanitized", Input{Findings: []Finding{clean}}, policy(func(p *Policy) { p.ScannedValue = "nobounce\r\n 1.0%s\x00é" }),
			accepted(ReasonClean, Header{"X-Virus-Scanned", "nobounce 1.0pcts ??"}, hClean)},
		{"custom header names", Input{Findings: []Finding{clean}}, policy(func(p *Policy) { p.ScannedHeader, p.StatusHeader = "X-Scanned-By", "X-Scan-Result" }),
			accepted(ReasonClean, Header{"X-Scanned-By", "nobounce 0.1.0 with ClamAV"}, Header{"X-Scan-Result", "Clean"})},
		{"scanner name sanitized in status", Input{Findings: []Finding{{Scanner: "cl%smd\r\n", Kind: KindError, OnError: OnErrorAccept}}}, policy(nil),
			func() Verdict {
				v := accepted(ReasonScanErrorAccept, Header{"X-Virus-Status", "Not scanned: clpctsmd error"})
				v.Scanner = "cl%smd\r\n"
				return v
			}()},
		{"unnamed scanner in status", Input{Findings: []Finding{{Kind: KindError, OnError: OnErrorAccept}}}, policy(nil),
			accepted(ReasonScanErrorAccept, Header{"X-Virus-Status", "Not scanned: scanner error"})},

		// Texts.
		{"custom virus text", Input{Findings: []Finding{eicar}}, policy(func(p *Policy) { p.VirusText = "Rejected: {virus} found ({virus})" }),
			func() Verdict {
				v := virusVerdict
				v.Text = "Rejected: Eicar-Signature found (Eicar-Signature)"
				return v
			}()},
		{"virus text without placeholder", Input{Findings: []Finding{eicar}}, policy(func(p *Policy) { p.VirusText = "Malware" }),
			func() Verdict { v := virusVerdict; v.Text = "Malware"; return v }()},
		{"virus text with percent", Input{Findings: []Finding{eicar}}, policy(func(p *Policy) { p.VirusText = "100% sure: {virus} %s" }),
			func() Verdict { v := virusVerdict; v.Text = "100pct sure: Eicar-Signature pcts"; return v }()},
		{"virus text with CRLF", Input{Findings: []Finding{eicar}}, policy(func(p *Policy) { p.VirusText = "Virus\r\n550 {virus}" }),
			func() Verdict { v := virusVerdict; v.Text = "Virus 550 Eicar-Signature"; return v }()},
		{"empty virus text falls back", Input{Findings: []Finding{eicar}}, policy(func(p *Policy) { p.VirusText = "" }), virusVerdict},
		{"blank virus text falls back", Input{Findings: []Finding{eicar}}, policy(func(p *Policy) { p.VirusText = " \r\n" }), virusVerdict},
		{"empty tempfail text falls back", Input{Findings: []Finding{errTemp}}, policy(func(p *Policy) { p.TempFailText = "" }), scanErrVerdict},
		{"empty oversize text falls back", Input{Oversize: true}, policy(func(p *Policy) { p.OversizeText = "" }), tooBigVerdict},
		{"custom tempfail text", Input{Findings: []Finding{errTemp}}, policy(func(p *Policy) { p.TempFailText = "Try later" }),
			func() Verdict { v := scanErrVerdict; v.Text = "Try later"; return v }()},
		{"empty threat name", Input{Findings: []Finding{{Scanner: "clamd", Kind: KindVirus}}}, policy(nil),
			Verdict{Action: Reject, Code: 550, Enhanced: "5.7.1", Text: "Virus found: unknown", Reason: ReasonVirus, Scanner: "clamd", Threat: "unknown"}},
		{"blank threat name", Input{Findings: []Finding{{Scanner: "clamd", Kind: KindVirus, Threat: "\r\n\t "}}}, policy(nil),
			Verdict{Action: Reject, Code: 550, Enhanced: "5.7.1", Text: "Virus found: unknown", Reason: ReasonVirus, Scanner: "clamd", Threat: "unknown"}},
		{"hostile threat name", Input{Findings: []Finding{{Scanner: "clamd", Kind: KindVirus, Threat: "Win.Test.%s%n\r\n250 OK\x00\xff"}}}, policy(nil),
			Verdict{Action: Reject, Code: 550, Enhanced: "5.7.1", Text: "Virus found: Win.Test.pctspctn 250 OK ?", Reason: ReasonVirus, Scanner: "clamd", Threat: "Win.Test.pctspctn 250 OK ?"}},
		{"zero policy still replies", Input{Findings: []Finding{eicar}}, Policy{}, virusVerdict},
		{"zero policy accepts without headers", Input{Findings: []Finding{clean}}, Policy{}, accepted(ReasonClean)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Decide(tt.in, tt.p)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decide\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestDecidePrecedence runs every combination of findings and oversize
// policy against the precedence rules written out once more, plainly.
func TestDecidePrecedence(t *testing.T) {
	pool := []Finding{clean, eicar, errTemp, errAccept2}
	type state struct{ virus, tempErr, accErr, clean bool }
	for mask := 0; mask < 1<<len(pool); mask++ {
		var fs []Finding
		var s state
		for i, f := range pool {
			if mask&(1<<i) == 0 {
				continue
			}
			fs = append(fs, f)
			switch {
			case f.Kind == KindVirus:
				s.virus = true
			case f.Kind == KindError && f.OnError == OnErrorTempFail:
				s.tempErr = true
			case f.Kind == KindError:
				s.accErr = true
			default:
				s.clean = true
			}
		}
		for _, over := range []bool{false, true} {
			for _, op := range []OversizePolicy{OversizeReject, OversizeTempFail, OversizeAccept} {
				name := fmt.Sprintf("%+v/oversize=%v/%v", s, over, op)
				v := Decide(Input{Findings: fs, Oversize: over}, policy(oversize(op)))
				var want Action
				var code int
				var reason Reason
				switch {
				case s.virus:
					want, code, reason = Reject, 550, ReasonVirus
				case over && op == OversizeReject:
					want, code, reason = Reject, 552, ReasonOversize
				case over && op == OversizeTempFail:
					want, code, reason = TempFail, 451, ReasonOversize
				case s.tempErr:
					want, code, reason = TempFail, 451, ReasonScanError
				case over:
					want, code, reason = Accept, 250, ReasonOversizeAccept
				case s.accErr:
					want, code, reason = Accept, 250, ReasonScanErrorAccept
				case s.clean:
					want, code, reason = Accept, 250, ReasonClean
				default:
					want, code, reason = Accept, 250, ReasonNoScanner
				}
				if v.Action != want || v.Code != code || v.Reason != reason {
					t.Errorf("%s: got %v %d %s, want %v %d %s", name, v.Action, v.Code, v.Reason, want, code, reason)
				}
				checkVerdict(t, name, v)
				// Nothing but a clean result claims "Clean".
				for _, h := range v.Headers {
					if (h.Value == "Clean") != (reason == ReasonClean && h.Name == DefaultStatusHeader) {
						t.Errorf("%s: header %v with reason %s", name, h, reason)
					}
					if h.Name == DefaultScannedHeader && reason != ReasonClean {
						t.Errorf("%s: scanned header with reason %s", name, reason)
					}
				}
			}
		}
	}
}

// checkVerdict asserts what holds for every verdict.
func checkVerdict(t *testing.T, name string, v Verdict) {
	t.Helper()
	if !validEnhanced(v.Enhanced, v.Code) {
		t.Errorf("%s: enhanced code %q does not match %d", name, v.Enhanced, v.Code)
	}
	wantCode := map[Action]int{Accept: 2, Tag: 2, TempFail: 4, Reject: 5}[v.Action]
	if v.Code/100 != wantCode {
		t.Errorf("%s: code %d for action %v", name, v.Code, v.Action)
	}
	if v.Text == "" || v.Text != Sanitize(v.Text, MaxReplyLine) {
		t.Errorf("%s: text %q not sanitized", name, v.Text)
	}
	if (v.Action == Reject || v.Action == TempFail) && v.Headers != nil {
		t.Errorf("%s: headers %v on %v", name, v.Headers, v.Action)
	}
	for _, h := range v.Headers {
		if !ValidHeaderName(h.Name) || h.Value == "" || h.Value != Sanitize(h.Value, 0) {
			t.Errorf("%s: bad header %q: %q", name, h.Name, h.Value)
		}
	}
	r := v.Reply()
	if len(r) > MaxReplyLine-2 || !printable(r) {
		t.Errorf("%s: bad reply %q", name, r)
	}
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e || s[i] == '%' {
			return false
		}
	}
	return true
}

func TestDecideLongTexts(t *testing.T) {
	long := strings.Repeat("A", 5000)
	cases := []struct {
		name string
		in   Input
		p    Policy
	}{
		{"long threat", Input{Findings: []Finding{{Scanner: "clamd", Kind: KindVirus, Threat: long}}}, policy(nil)},
		{"long threat many placeholders", Input{Findings: []Finding{{Scanner: "clamd", Kind: KindVirus, Threat: long}}},
			policy(func(p *Policy) { p.VirusText = strings.Repeat("{virus} ", 10) })},
		{"percent expansion", Input{Findings: []Finding{{Scanner: "clamd", Kind: KindVirus, Threat: strings.Repeat("%", 5000)}}},
			policy(func(p *Policy) { p.VirusText = strings.Repeat("%{virus}", 10) })},
		{"long tempfail text", Input{Findings: []Finding{errTemp}}, policy(func(p *Policy) { p.TempFailText = long })},
		{"long oversize text", Input{Oversize: true}, policy(func(p *Policy) { p.OversizeText = long })},
		{"long oversize tempfail text", Input{Oversize: true}, policy(func(p *Policy) { p.OversizeText = long; p.Oversize = OversizeTempFail })},
		{"long scanner error", Input{Findings: []Finding{{Scanner: long, Kind: KindError, Err: long, OnError: OnErrorAccept}}}, policy(nil)},
		{"long scanned value", Input{Findings: []Finding{clean}}, policy(func(p *Policy) { p.ScannedValue = long })},
	}
	for _, c := range cases {
		v := Decide(c.in, c.p)
		checkVerdict(t, c.name, v)
		if len(v.Threat) > maxThreat || len(v.Err) > maxErr {
			t.Errorf("%s: threat %d / err %d bytes", c.name, len(v.Threat), len(v.Err))
		}
		for _, h := range v.Headers {
			if len(h.Name)+2+len(h.Value) > 998 {
				t.Errorf("%s: header line %d bytes", c.name, len(h.Name)+2+len(h.Value))
			}
		}
	}
	// The reply line uses the room it has: exactly 510 octets before CRLF.
	v := Decide(Input{Findings: []Finding{errTemp}}, policy(func(p *Policy) { p.TempFailText = long }))
	if r := v.Reply(); len(r) != MaxReplyLine-2 || !strings.HasSuffix(r, "...") {
		t.Errorf("long reply: %d bytes, %q...", len(r), r[len(r)-10:])
	}
}

func TestReply(t *testing.T) {
	tests := []struct {
		v    Verdict
		want string
	}{
		{virusVerdict, "550 5.7.1 Virus found: Eicar-Signature"},
		{tooBigVerdict, "552 5.3.4 Message too large for content scanning"},
		{tooBigTempFail, "451 4.7.1 Message too large for content scanning"},
		{scanErrVerdict, "451 4.7.1 Content scan temporarily unavailable, try again later"},
		{accepted(ReasonClean), "250 2.0.0 OK"},
		// Hand-made verdicts are made safe too.
		{Verdict{Action: Reject, Code: 550, Enhanced: "5.7.1", Text: "bad %s\r\n250 ok"}, "550 5.7.1 bad pcts 250 ok"},
		{Verdict{Action: Reject, Code: 550, Enhanced: "5.7.1"}, "550 5.7.1"},
		{Verdict{}, "250 2.0.0"},
		{Verdict{Action: TempFail}, "451 4.7.1"},
		{Verdict{Action: Reject, Text: "no"}, "550 5.7.1 no"},
		{Verdict{Action: Reject, Code: 554, Enhanced: "4.7.1", Text: "mismatch"}, "554 mismatch"},
		{Verdict{Action: Reject, Code: 550, Enhanced: "5.7.1\r\n", Text: "x"}, "550 x"},
		{Verdict{Action: Reject, Code: 9999, Enhanced: "5.7.1", Text: "x"}, "550 5.7.1 x"},
	}
	for _, tt := range tests {
		if got := tt.v.Reply(); got != tt.want {
			t.Errorf("Reply(%+v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestDefaultPolicy(t *testing.T) {
	p := DefaultPolicy()
	want := Policy{
		VirusText:     "Virus found: {virus}",
		TempFailText:  "Content scan temporarily unavailable, try again later",
		OversizeText:  "Message too large for content scanning",
		Oversize:      OversizeReject,
		AddHeaders:    true,
		ScannedHeader: "X-Virus-Scanned",
		StatusHeader:  "X-Virus-Status",

		SpamText:       "Message considered spam",
		PolicyText:     "Message refused by content policy",
		SoftRejectText: "Try again later",
	}
	if p != want {
		t.Errorf("DefaultPolicy() = %+v, want %+v", p, want)
	}
}

func TestHeaderNames(t *testing.T) {
	tests := []struct {
		p    Policy
		want []string
	}{
		{DefaultPolicy(), []string{"X-Virus-Scanned", "X-Virus-Status"}},
		{policy(func(p *Policy) { p.AddHeaders = false }), nil},
		{policy(func(p *Policy) { p.ScannedHeader = "" }), []string{"X-Virus-Status"}},
		{policy(func(p *Policy) { p.ScannedHeader, p.StatusHeader = "", "" }), nil},
		{policy(func(p *Policy) { p.StatusHeader = "Bad:Name" }), []string{"X-Virus-Scanned"}},
	}
	for _, tt := range tests {
		if got := HeaderNames(tt.p); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("HeaderNames(%+v) = %q, want %q", tt.p, got, tt.want)
		}
	}
}

func TestValidHeaderName(t *testing.T) {
	for s, want := range map[string]bool{
		"X-Virus-Status": true, "a": true, "X_Odd!~{}": true,
		"": false, "X Virus": false, "X:Virus": false, "X-Virus\r\n": false, "X-Vírus": false, "X\x7f": false,
	} {
		if got := ValidHeaderName(s); got != want {
			t.Errorf("ValidHeaderName(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestStrings(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{Accept.String(), "accept"}, {Tag.String(), "tag"}, {TempFail.String(), "tempfail"}, {Reject.String(), "reject"},
		{Action(9).String(), "Action(9)"},
		{KindClean.String(), "clean"}, {KindVirus.String(), "virus"}, {KindError.String(), "error"}, {Kind(-1).String(), "Kind(-1)"},
		{OnErrorTempFail.String(), "tempfail"}, {OnErrorAccept.String(), "accept"}, {OnError(3).String(), "OnError(3)"},
		{OversizeReject.String(), "reject"}, {OversizeTempFail.String(), "tempfail"}, {OversizeAccept.String(), "accept"},
		{OversizePolicy(4).String(), "OversizePolicy(4)"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	// Precedence is the order of the constants.
	if !(Accept < Tag && Tag < TempFail && TempFail < Reject) {
		t.Error("action order")
	}
}
