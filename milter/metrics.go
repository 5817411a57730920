package milter

import (
	"github.com/nobounce/nobounce/metrics"
	"github.com/nobounce/nobounce/scan"
	"github.com/nobounce/nobounce/verdict"
)

// serverMetrics are the milter's counters; all nil (no-ops) until
// RegisterMetrics.
type serverMetrics struct {
	verdicts    *metrics.CounterVec   // action, reason
	scanSeconds *metrics.HistogramVec // scanner
	scanErrors  *metrics.CounterVec   // scanner
	refused     *metrics.CounterVec   // over max_sessions
}

// RegisterMetrics adds the milter's metrics to r. Call it before Serve.
func (s *Server) RegisterMetrics(r *metrics.Registry) {
	s.metrics = serverMetrics{
		verdicts: r.Counter("nobounce_milter_verdicts_total",
			"Messages answered at the end of DATA, by action (accept, tag, tempfail, reject) and reason.", "action", "reason"),
		scanSeconds: r.Histogram("nobounce_scan_duration_seconds",
			"Time from the start of a scan to the scanner's answer.", metrics.DurationBuckets, "scanner"),
		scanErrors: r.Counter("nobounce_scan_errors_total",
			"Scans that gave no answer (unreachable, error, timeout).", "scanner"),
		refused: r.Counter("nobounce_milter_sessions_refused_total",
			"MTA connections refused with 421 because max_sessions were open."),
	}
	r.GaugeFunc("nobounce_milter_sessions", "MTA connections open now.", func() float64 { return float64(s.Sessions()) })
}

func (m *serverMetrics) observe(v verdict.Verdict, results []scan.Result) {
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
