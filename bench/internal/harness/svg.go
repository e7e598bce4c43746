package harness

import (
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
)

// WriteSVG draws every row that has a target: its median ratio (a dot),
// the smallest and largest of its runs' ratios (a line), and its target (a
// tick), on a log scale, green where the target is met and red where not.
// Skipped rows are listed in grey with the word "skipped".
func (r *Report) WriteSVG(w io.Writer) error {
	var rows []Row
	for _, row := range r.Rows {
		if row.Target != "" {
			rows = append(rows, row)
		}
	}
	const (
		width   = 920
		labelW  = 460
		plotX   = labelW + 10
		plotW   = width - plotX - 60
		rowH    = 22
		top     = 48
		bottom  = 30
		dotR    = 4.5
		fontCSS = "font-family:sans-serif;font-size:12px"
	)
	// The axis spans every ratio and target, in whole decades.
	lo, hi := 1.0, 1.0
	for _, row := range rows {
		for _, v := range []float64{row.Min, row.Max, row.MinRatio} {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	lo, hi = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
	if lo == hi {
		hi *= 10
	}
	x := func(v float64) float64 {
		return plotX + plotW*(math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))
	}
	height := top + rowH*len(rows) + bottom
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" style="%s">`+"\n",
		width, height, width, height, fontCSS)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="10" y="18" font-weight="bold">wirereactor against its peers: ratio = peer time ÷ ours (log scale; right of 1× we are faster)</text>`+"\n")
	fmt.Fprintf(&b, `<text x="10" y="34" fill="#555">%s · %s · load %s · median of %d runs (dot), min–max (line), target (tick)</text>`+"\n",
		r.Started.Format("2006-01-02"), html.EscapeString(r.Machine.CPU), html.EscapeString(r.Machine.LoadAvg), r.Count)
	// Grid: 1, 2, 5 per decade, or decades alone on a wide axis.
	e0, e1 := int(math.Round(math.Log10(lo))), int(math.Round(math.Log10(hi)))
	steps := []float64{1, 2, 5}
	if e1-e0 > 3 {
		steps = []float64{1}
	}
	for e := e0; e <= e1; e++ {
		for _, m := range steps {
			if e == e1 && m > 1 {
				break
			}
			v := m * math.Pow10(e)
			stroke, sw := "#ddd", 1.0
			if e == 0 && m == 1 {
				stroke, sw = "#888", 1.5
			}
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-width="%.1f"/>`+"\n",
				x(v), top-6, x(v), top+rowH*len(rows), stroke, sw)
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s×</text>`+"\n",
				x(v), top+rowH*len(rows)+16, strconv.FormatFloat(v, 'g', -1, 64))
		}
	}
	for i, row := range rows {
		y := float64(top + rowH*i + rowH/2)
		label := row.Group + ": " + row.Name + " vs " + row.Peer
		if len([]rune(label)) > 72 {
			label = string([]rune(label)[:71]) + "…"
		}
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`+"\n",
			labelW, y, html.EscapeString(label))
		color := "#999"
		if row.Met != nil {
			color = "#c62828"
			if *row.Met {
				color = "#2e7d32"
			}
		}
		if row.MinRatio > 0 {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333" stroke-width="2"><title>target %s</title></line>`+"\n",
				x(row.MinRatio), y-8, x(row.MinRatio), y+8, html.EscapeString(row.Target))
		}
		if row.Skipped != "" || row.Ratio <= 0 {
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" dominant-baseline="middle" fill="#999">skipped</text>`+"\n", plotX+4, y)
			continue
		}
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>`+"\n",
			x(row.Min), y, x(row.Max), y, color)
		fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="%.1f" fill="%s"><title>%s</title></circle>`+"\n",
			x(row.Ratio), y, dotR, color, html.EscapeString(row.ratioText()+", target "+row.Target))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" dominant-baseline="middle" fill="%s">%s×</text>`+"\n",
			math.Max(x(row.Max), x(row.MinRatio))+6, y, color, fmtRatio(row.Ratio))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}
