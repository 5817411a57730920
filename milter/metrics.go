package milter

import (
	"github.com/nobounce/nobounce/metrics"
	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/verdict"
)

// Metrics are the milter's counters. A nil *Metrics, or one made from a nil
// registry, counts nothing.
type Metrics struct {
	verdicts    *metrics.CounterVec   // action, reason
	scanSeconds *metrics.HistogramVec // scanner
	scanErrors  *metrics.CounterVec   // scanner
	refused     *metrics.CounterVec   // over max_sessions

	// envelope checks (recipient.go)
	checks          *metrics.CounterVec // result, reason
	events          *metrics.CounterVec // event
	batv            *metrics.CounterVec // result
	blocklisted     *metrics.CounterVec // zone
	blocklistErrors *metrics.CounterVec
}

// NewMetrics registers the milter's counters in r; with r nil they count
// nothing. One per process: give it to NewServer and BuildRecipient.
func NewMetrics(r *metrics.Registry) *Metrics {
	if r == nil {
		return &Metrics{}
	}
	return &Metrics{
		verdicts: r.Counter("nobounce_milter_verdicts_total",
			"Messages answered at the end of DATA, by action (accept, tag, tempfail, reject) and reason.", "action", "reason"),
		scanSeconds: r.Histogram("nobounce_scan_duration_seconds",
			"Time from the start of a scan to the scanner's answer.", metrics.DurationBuckets, "scanner"),
		scanErrors: r.Counter("nobounce_scan_errors_total",
			"Scans that gave no answer (unreachable, error, timeout).", "scanner"),
		refused: r.Counter("nobounce_milter_sessions_refused_total",
			"MTA connections refused with 421 because max_sessions were open."),
		checks: r.Counter("nobounce_recipient_checks_total",
			"Recipients answered at RCPT TO, by result (accept, reject, tempfail) and reason.", "result", "reason"),
		events: r.Counter("nobounce_recipient_events_total",
			"Recipient verification events: callout (an SMTP connection to a backend), callout-failed (it could not tell), catch-all (a backend accepted a random address).", "event"),
		batv: r.Counter("nobounce_batv_total",
			"BATV: signed (a sender signed), verified (a signed bounce accepted), refused (a bounce without a valid signature).", "result"),
		blocklisted: r.Counter("nobounce_blocklist_rejects_total",
			"Bounces refused at MAIL FROM because the client is listed, by zone.", "zone"),
		blocklistErrors: r.Counter("nobounce_blocklist_errors_total",
			"Blocklist lookups that failed or timed out (the bounce was let through)."),
	}
}

// RegisterMetrics adds the server's gauges to r. Call it before Serve.
func (s *Server) RegisterMetrics(r *metrics.Registry) {
	r.GaugeFunc("nobounce_milter_sessions", "MTA connections open now.", func() float64 { return float64(s.Sessions()) })
}

func (m *Metrics) observe(v verdict.Verdict, results []scan.Result) {
	m.verdicts.Inc(v.Action.String(), string(v.Reason))
	for _, r := range results {
		if r.Skipped != "" {
			continue
		}
		m.scanSeconds.Observe(r.Elapsed.Seconds(), r.Scanner)
		if r.Status == scan.Failed {
			m.scanErrors.Inc(r.Scanner)
		}
	}
}
