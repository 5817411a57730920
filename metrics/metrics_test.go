package metrics

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestExposition(t *testing.T) {
	r := New()
	v := r.Counter("nobounce_milter_verdicts_total", "Verdicts by action and reason.", "action", "reason")
	v.Inc("reject", "virus")
	v.Inc("reject", "virus")
	v.Inc("accept", "clean")
	h := r.Histogram("nobounce_scan_duration_seconds", "Time per scan.", []float64{0.01, 0.1, 1}, "scanner")
	h.Observe(0.005, "clamd")
	h.Observe(0.05, "clamd")
	h.Observe(5, "clamd")
	r.GaugeFunc("nobounce_milter_sessions", "MTA connections open.", func() float64 { return 3 })
	e := r.Counter("nobounce_scan_errors_total", "Failed scans.", "scanner")
	e.Inc(`odd"name\`)

	var b bytes.Buffer
	r.Write(&b)
	golden := filepath.Join("testdata", "exposition.txt")
	if os.Getenv("UPDATE") != "" {
		os.WriteFile(golden, b.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("exposition:\n%s\nwant:\n%s", b.String(), want)
	}
	if v.Value("reject", "virus") != 2 {
		t.Errorf("Value = %v", v.Value("reject", "virus"))
	}
}

func TestNilSafe(t *testing.T) {
	var c *CounterVec
	var h *HistogramVec
	c.Inc("x")
	h.Observe(1, "x")
}
