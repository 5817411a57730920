package milter

import (
	"context"
	"net/netip"
	"time"

	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/verdict"
)

// Settings is everything the handling of one message depends on. A Session
// takes the current Settings when a message starts and keeps them to its
// end, so a reload never changes the rules halfway through a message.
type Settings struct {
	Scanners []scan.Scanner
	// OnError is each scanner's failure policy, by scanner name; missing
	// means tempfail.
	OnError map[string]verdict.OnError
	// Roles says what each scanner looks for, by name; missing means a
	// virus scanner.
	Roles      map[string]verdict.Role
	Policy     verdict.Policy
	Scan       scan.Options  // scan size limit, spool placement
	EOMTimeout time.Duration // from the final "." to our reply
	Recipient  RecipientSettings

	// Spam scanners (Roles RoleSpam) are skipped for authenticated senders
	// and for clients in these networks; virus scans never are.
	SpamSkipAuthenticated bool
	SpamSkipNetworks      []netip.Prefix

	// NewSubject, when set, may propose a new Subject for an accepted
	// message from the scan results (rspamd's "rewrite subject").
	NewSubject func([]scan.Result) (string, bool)
}

// scanners lists the scanners for one message: a skipped spam scanner is
// replaced by one that says why, so the headers tell the truth.
func (st *Settings) scanners(env *scan.Envelope) []scan.Scanner {
	why := ""
	if st.SpamSkipAuthenticated && env.AuthUser != "" {
		why = "authenticated sender"
	} else if a, err := netip.ParseAddr(env.ClientAddr); err == nil {
		for _, p := range st.SpamSkipNetworks {
			if p.Contains(a.Unmap()) {
				why = "trusted network"
				break
			}
		}
	}
	if why == "" {
		return st.Scanners
	}
	out := make([]scan.Scanner, len(st.Scanners))
	for i, sc := range st.Scanners {
		out[i] = sc
		if st.Roles[sc.Name()] == verdict.RoleSpam {
			out[i] = skipped{name: sc.Name(), why: why}
		}
	}
	return out
}

// skipped stands in for a scanner deliberately not run on a message.
type skipped struct{ name, why string }

func (s skipped) Name() string                                   { return s.name }
func (s skipped) Begin(context.Context, *scan.Envelope) scan.Job { return s }
func (s skipped) Write(p []byte) (int, error)                    { return len(p), nil }
func (s skipped) Finish(context.Context) scan.Result {
	return scan.Result{Scanner: s.name, Status: scan.Clean, Skipped: s.why}
}
func (s skipped) Abort() {}

// Decide turns scanner results into the verdict for a message.
func (st *Settings) Decide(results []scan.Result, oversize bool) verdict.Verdict {
	in := verdict.Input{Oversize: oversize}
	for _, r := range results {
		f := verdict.Finding{Scanner: r.Scanner, OnError: st.OnError[r.Scanner], Role: st.Roles[r.Scanner],
			Text: r.Reply, Code: r.Code, Enhanced: r.Enhanced, Rule: r.Rule, Skipped: r.Skipped}
		switch r.Status {
		case scan.Clean:
			f.Kind = verdict.KindClean
			f.Advice = advice(r.Advice)
			if r.Spam != nil {
				f.Spam = &verdict.Spam{Score: r.Spam.Score, Required: r.Spam.Required, Symbols: r.Spam.Symbols, IsSpam: r.Spam.IsSpam}
			}
		case scan.Infected:
			f.Kind, f.Threat = verdict.KindVirus, r.Threat
		default:
			f.Kind = verdict.KindError
			if r.Err != nil {
				f.Err = r.Err.Error()
			}
		}
		in.Findings = append(in.Findings, f)
	}
	return verdict.Decide(in, st.Policy)
}

func advice(a scan.Advice) verdict.Action {
	switch a {
	case scan.AdviseTag:
		return verdict.Tag
	case scan.AdviseTempFail:
		return verdict.TempFail
	case scan.AdviseReject:
		return verdict.Reject
	}
	return verdict.Accept
}
