package main

import (
	"fmt"
	"html"
	"os"
	"strings"
)

// drawChart writes an SVG of the comparisons in the JSON files: for each,
// messages/s, p99 and peak RSS of every target as bars (each comparison on
// its own scale), the first target's ratios and whether its goals are met;
// and prints the summary tables.
func drawChart(out string, files []string) error {
	if len(files) == 0 {
		return fmt.Errorf("-chart: name the comparison JSON files as arguments")
	}
	var cs []*comparison
	for _, f := range files {
		c, err := loadComparison(f)
		if err != nil {
			return err
		}
		cs = append(cs, c)
		c.summary(os.Stdout)
	}

	const (
		labelW = 200
		colW   = 270
		gap    = 20
		barH   = 16
		rowH   = 20
		left   = 10
	)
	width := left + labelW + 3*(colW+gap)
	var b strings.Builder
	y := 0
	line := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	text := func(x, y int, anchor, style, s string) {
		line(`<text x="%d" y="%d" text-anchor="%s" %s>%s</text>`, x, y, anchor, style, html.EscapeString(s))
	}

	y += 24
	text(left, y, "start", `font-size="15" font-weight="bold"`, "nobounce beside the milters in use: same scanner, same messages, same concurrency")
	y += 18
	text(left, y, "start", `font-size="11" fill="#555"`, "medians over alternating runs; ratios are nobounce ÷ peer within each round; each comparison has its own scale")
	y += 26
	cols := []struct {
		title string
		get   func(figures) float64
		unit  string
	}{
		{"messages/s (longer is better)", func(f figures) float64 { return f.rate }, "/s"},
		{"p99, end of body → reply (shorter better)", func(f figures) float64 { return f.p99 }, " ms"},
		{"peak RSS (shorter is better)", func(f figures) float64 { return f.rss }, " MB"},
	}
	for i, col := range cols {
		text(left+labelW+i*(colW+gap), y, "start", `font-size="12" font-weight="bold"`, col.title)
	}
	y += 10

	for _, c := range cs {
		y += 18
		text(left, y, "start", `font-size="13" font-weight="bold"`, c.Title)
		y += 14
		text(left, y, "start", `font-size="10" fill="#555"`,
			fmt.Sprintf("%s; %d sessions; %d rounds × %d messages", c.Workload, c.Sessions, c.Rounds, c.Messages))
		y += 6
		figs := map[string]figures{}
		for _, t := range c.Targets {
			figs[t] = c.figures(t)
		}
		for i, col := range cols {
			x0 := left + labelW + i*(colW+gap)
			maxV := 0.0
			for _, t := range c.Targets {
				maxV = max(maxV, col.get(figs[t]))
			}
			for j, t := range c.Targets {
				v := col.get(figs[t])
				by := y + j*rowH
				if i == 0 {
					text(left+labelW-8, by+barH-4, "end", `font-size="12"`, t)
				}
				w := 0
				if maxV > 0 {
					w = int(float64(colW-70) * v / maxV)
				}
				fill := "#9e9e9e"
				if j == 0 {
					fill = "#1f77b4"
				}
				line(`<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`, x0, by, max(w, 1), barH, fill)
				text(x0+w+4, by+barH-4, "start", `font-size="11"`, fmtValue(v)+col.unit)
			}
		}
		y += len(c.Targets)*rowH + 14
		// the ratios against each peer, and the goals
		others := c.Targets[1:]
		if len(others) == 0 {
			others = []string{""}
		}
		for _, o := range others {
			ratios := []string{"", "", ""}
			if o != "" {
				r, _, _ := c.rateRatio(o)
				p, _, _ := c.p99Ratio(o)
				ratios[0], ratios[1] = fmt.Sprintf("%.2f× %s", r, o), fmt.Sprintf("%.2f× %s", p, o)
			}
			marks := []string{"", "", ""}
			colour := []string{"#333", "#333", "#333"}
			for _, g := range c.goals() {
				if o == "" && g.what != "rss" {
					continue
				}
				v, met := c.check(g, o)
				k := map[string]int{"rate": 0, "p99": 1, "rss": 2}[g.what]
				mark := "✗"
				col := "#c62828"
				if met {
					mark, col = "✓", "#2e7d32"
				}
				if g.what == "rss" {
					ratios[2] = fmt.Sprintf("%s %.0f MB", c.Targets[0], v)
				}
				marks[k] = fmt.Sprintf(" (goal %s: %s)", strings.TrimPrefix(strings.TrimPrefix(g.String(), "messages/s "), "peak RSS "), mark)
				colour[k] = col
			}
			for i := range cols {
				if ratios[i] == "" {
					continue
				}
				text(left+labelW+i*(colW+gap), y, "start", fmt.Sprintf(`font-size="11" fill="%s"`, colour[i]), ratios[i]+marks[i])
			}
			y += 15
		}
		y += 4
		line(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ddd"/>`, left, y, width-10, y)
	}
	y += 18
	if len(cs) > 0 {
		text(left, y, "start", `font-size="10" fill="#555"`, "drawn by cmd/nobounce-bench from testbed/compare.sh's runs; "+cs[0].Machine+"; "+cs[0].Date)
	}
	y += 10
	svg := fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`+"\n", width, y, width, y) +
		fmt.Sprintf(`<rect width="%d" height="%d" fill="white"/>`+"\n", width, y) + b.String() + "</svg>\n"
	return os.WriteFile(out, []byte(svg), 0o644)
}

func fmtValue(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
