package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nobounce/nobounce/sockaddr"
)

// target is one milter of a comparison.
type target struct {
	name string
	addr sockaddr.Addr
	pid  int
}

// parseTarget reads NAME=SOCKET[,pid=PID].
func parseTarget(s string) (target, error) {
	name, rest, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return target{}, fmt.Errorf("-target %q: want NAME=SOCKET[,pid=PID]", s)
	}
	sock, opts, _ := strings.Cut(rest, ",")
	a, err := sockaddr.Parse(sock)
	if err != nil {
		return target{}, fmt.Errorf("-target %q: %w", s, err)
	}
	t := target{name: name, addr: a}
	if opts != "" {
		v, ok := strings.CutPrefix(opts, "pid=")
		if !ok {
			return target{}, fmt.Errorf("-target %q: unknown option %q", s, opts)
		}
		if t.pid, err = strconv.Atoi(v); err != nil || t.pid <= 0 {
			return target{}, fmt.Errorf("-target %q: bad pid", s)
		}
	}
	return t, nil
}

// run is one measured run of one target, as stored in the JSON file.
type run struct {
	Target   string         `json:"target"`
	Round    int            `json:"round"`
	Messages int            `json:"messages"`
	Seconds  float64        `json:"seconds"`
	Rate     float64        `json:"rate"` // messages/s
	P50ms    float64        `json:"p50_ms"`
	P99ms    float64        `json:"p99_ms"`
	MaxMs    float64        `json:"max_ms"`
	Errors   int            `json:"errors"`
	ErrorEx  []string       `json:"error_examples,omitempty"`
	Replies  map[string]int `json:"replies"`
	RSSMB    float64        `json:"rss_mb"`     // peak RSS of the milter (and its children) in this run
	CPUMsMsg float64        `json:"cpu_ms_msg"` // CPU time of the milter (and its children) per message
}

// comparison is one side-by-side measurement: the first target against
// each other one, with the same messages and concurrency, alternating runs.
type comparison struct {
	Title    string   `json:"title"`
	Goals    string   `json:"goals,omitempty"`
	Workload string   `json:"workload"`
	Sessions int      `json:"sessions"`
	Messages int      `json:"messages"`
	PerConn  int      `json:"per_conn"`
	Rounds   int      `json:"rounds"`
	Targets  []string `json:"targets"`
	Machine  string   `json:"machine"`
	Date     string   `json:"date"`
	Runs     []run    `json:"runs"`
}

func (c *comparison) run(ts []target, cfg config, wl *workload) error {
	c.Machine = machine()
	c.Date = time.Now().UTC().Format("2006-01-02 15:04 UTC")
	for _, t := range ts {
		c.Targets = append(c.Targets, t.name)
	}
	if cfg.warmup > 0 {
		for _, t := range ts {
			w := cfg
			w.messages = cfg.warmup
			st := runMilter(t.addr, 0, w, wl)
			fmt.Printf("warm-up %-16s %d messages, %d errors\n", t.name, st.n, len(st.errs))
		}
	}
	for r := 1; r <= c.Rounds; r++ {
		order := append([]target(nil), ts...)
		if r%2 == 0 {
			for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
				order[i], order[j] = order[j], order[i]
			}
		}
		for _, t := range order {
			st := runMilter(t.addr, t.pid, cfg, wl)
			x := run{Target: t.name, Round: r, Messages: st.n, Seconds: st.elapsed.Seconds(), Rate: st.rate(),
				P50ms: ms(st.pct(50)), P99ms: ms(st.pct(99)), Errors: len(st.errs), Replies: st.replies,
				RSSMB: float64(st.rss) / 1e6}
			if len(st.lat) > 0 {
				x.MaxMs = ms(st.lat[len(st.lat)-1])
			}
			if st.n > 0 {
				x.CPUMsMsg = ms(st.cpu) / float64(st.n)
			}
			if len(st.errs) > 3 {
				x.ErrorEx = st.errs[:3]
			} else {
				x.ErrorEx = st.errs
			}
			c.Runs = append(c.Runs, x)
			fmt.Printf("round %d %-16s %8.1f msg/s  p50 %8.2f ms  p99 %8.2f ms  RSS %6.1f MB  CPU %.2f ms/msg  %s  errors %d\n",
				r, t.name, x.Rate, x.P50ms, x.P99ms, x.RSSMB, x.CPUMsMsg, st.replyString(), x.Errors)
			for _, e := range x.ErrorEx {
				fmt.Printf("        error: %s\n", e)
			}
		}
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func (c *comparison) failed() bool {
	for _, r := range c.Runs {
		if r.Errors > 0 {
			return true
		}
	}
	return false
}

func (c *comparison) save(path string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func loadComparison(path string) (*comparison, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c comparison
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// figures are a target's medians over the rounds.
type figures struct {
	rate, p50, p99, rss, cpu float64
	errors                   int
	replies                  map[string]int
}

func (c *comparison) figures(name string) figures {
	var rate, p50, p99, rss, cpu []float64
	f := figures{replies: map[string]int{}}
	for _, r := range c.Runs {
		if r.Target != name {
			continue
		}
		rate, p50, p99 = append(rate, r.Rate), append(p50, r.P50ms), append(p99, r.P99ms)
		rss, cpu = append(rss, r.RSSMB), append(cpu, r.CPUMsMsg)
		f.errors += r.Errors
		for k, v := range r.Replies {
			f.replies[k] += v
		}
	}
	f.rate, f.p50, f.p99, f.rss, f.cpu = median(rate), median(p50), median(p99), maxOf(rss), median(cpu)
	return f
}

// ratio is the median over the rounds of what(first)/what(other), each
// quotient taken within one round; and the lowest and highest of them.
func (c *comparison) ratio(other string, what func(run) float64) (med, lo, hi float64) {
	first := c.Targets[0]
	byRound := map[int][2]float64{}
	for _, r := range c.Runs {
		v := byRound[r.Round]
		switch r.Target {
		case first:
			v[0] = what(r)
		case other:
			v[1] = what(r)
		default:
			continue
		}
		byRound[r.Round] = v
	}
	var qs []float64
	for _, v := range byRound {
		if v[1] > 0 {
			qs = append(qs, v[0]/v[1])
		}
	}
	if len(qs) == 0 {
		return 0, 0, 0
	}
	sort.Float64s(qs)
	return median(qs), qs[0], qs[len(qs)-1]
}

func (c *comparison) rateRatio(other string) (float64, float64, float64) {
	return c.ratio(other, func(r run) float64 { return r.Rate })
}

func (c *comparison) p99Ratio(other string) (float64, float64, float64) {
	return c.ratio(other, func(r run) float64 { return r.P99ms })
}

func (c *comparison) p50Ratio(other string) (float64, float64, float64) {
	return c.ratio(other, func(r run) float64 { return r.P50ms })
}

// goal is one of "rate>=2", "p99<=0.5", "rss<=150MB".
type goal struct {
	what string
	op   string
	val  float64
}

func (c *comparison) goals() []goal {
	var gs []goal
	for _, s := range strings.Split(c.Goals, ",") {
		s = strings.TrimSpace(s)
		for _, op := range []string{">=", "<="} {
			if w, v, ok := strings.Cut(s, op); ok {
				f, err := strconv.ParseFloat(strings.TrimSuffix(v, "MB"), 64)
				if err == nil {
					gs = append(gs, goal{what: w, op: op, val: f})
				}
				break
			}
		}
	}
	return gs
}

// check tells whether g is met by the first target against other.
func (c *comparison) check(g goal, other string) (value float64, met bool) {
	switch g.what {
	case "rate":
		value, _, _ = c.rateRatio(other)
	case "p99":
		value, _, _ = c.p99Ratio(other)
	case "rss":
		value = c.figures(c.Targets[0]).rss
	default:
		return 0, false
	}
	if g.op == ">=" {
		return value, value >= g.val
	}
	return value, value <= g.val
}

func (g goal) String() string {
	op := map[string]string{">=": "≥", "<=": "≤"}[g.op]
	if g.what == "rss" {
		return fmt.Sprintf("peak RSS %s %g MB", op, g.val)
	}
	name := map[string]string{"rate": "messages/s", "p99": "p99"}[g.what]
	return fmt.Sprintf("%s %s %g×", name, op, g.val)
}

// summary prints the comparison as markdown: each target's medians, then
// the ratios of the first target to each other one.
func (c *comparison) summary(w io.Writer) {
	fmt.Fprintf(w, "\n### %s\n\n", c.Title)
	fmt.Fprintf(w, "%s; %d sessions, %d messages per run, %d rounds, alternating; %s\n\n",
		c.Workload, c.Sessions, c.Messages, c.Rounds, perConnText(c.PerConn))
	fmt.Fprintf(w, "| milter | messages/s | p50 | p99 | peak RSS | CPU per message | replies (all rounds) | errors |\n")
	fmt.Fprintf(w, "|---|---|---|---|---|---|---|---|\n")
	for _, t := range c.Targets {
		f := c.figures(t)
		var kinds []string
		for k, v := range f.replies {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, v))
		}
		sort.Strings(kinds)
		fmt.Fprintf(w, "| %s | %.1f | %.2f ms | %.2f ms | %.1f MB | %.2f ms | %s | %d |\n",
			t, f.rate, f.p50, f.p99, f.rss, f.cpu, strings.Join(kinds, ", "), f.errors)
	}
	fmt.Fprintln(w)
	if len(c.Targets) == 1 {
		c.printGoals(w, "")
	}
	for _, o := range c.Targets[1:] {
		r, rlo, rhi := c.rateRatio(o)
		p, plo, phi := c.p99Ratio(o)
		p5, _, _ := c.p50Ratio(o)
		fmt.Fprintf(w, "%s / %s: messages/s **%.2f×** (rounds %.2f–%.2f), p50 %.2f×, p99 **%.2f×** (rounds %.2f–%.2f)\n",
			c.Targets[0], o, r, rlo, rhi, p5, p, plo, phi)
		c.printGoals(w, o)
	}
	fmt.Fprintf(w, "\nmachine: %s; %s\n", c.Machine, c.Date)
}

// printGoals says whether each goal is met against other ("": only the
// goals on the first target's own figures).
func (c *comparison) printGoals(w io.Writer, other string) {
	for _, g := range c.goals() {
		if other == "" && g.what != "rss" {
			continue
		}
		v, met := c.check(g, other)
		verdict := "missed"
		if met {
			verdict = "met"
		}
		unit := "×"
		if g.what == "rss" {
			unit = " MB"
		}
		fmt.Fprintf(w, "goal %s: **%s** (%.2f%s)\n", g, verdict, v, unit)
	}
}

func perConnText(n int) string {
	if n == 0 {
		return "each session keeps one milter connection"
	}
	if n == 1 {
		return "one message per milter connection (as one SMTP connection per message)"
	}
	return fmt.Sprintf("%d messages per milter connection", n)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func maxOf(v []float64) float64 {
	m := 0.0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

// machine describes this computer in one line.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(string(b), "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf(", %.0f GiB", float64(kb)/(1<<20))
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d cores (%s)%s%s, %s", runtime.NumCPU(), model, mem, kernel, runtime.Version())
}
