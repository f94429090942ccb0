package bench

import (
	"fmt"
	"html/template"
	"math"
	"os"
	"strings"
)

// WriteHTML writes a self-contained HTML report of r to path: the summary,
// latency (p50, p99) and throughput over time, and the latency histogram,
// drawn as inline SVG so the file opens anywhere without network access.
func (r *Result) WriteHTML(path string) error {
	var b strings.Builder
	data := struct {
		R        *Result
		Timeline template.HTML
		Hist     template.HTML
		Errors   int64
	}{r, template.HTML(timelineSVG(r.Series)), template.HTML(histogramSVG(r.Histogram)), r.ErrorCount()}
	if err := reportTmpl.Execute(&b, data); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

var reportTmpl = template.Must(template.New("report").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>sluice bench: {{.R.Name}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}td,th{padding:.2em .8em;text-align:right;border-bottom:1px solid #ddd}
th{text-align:left}svg{background:#fafafa;border:1px solid #ddd;margin:.5em 0}
.p50{stroke:#2b6cb0}.p99{stroke:#c53030}.rps{fill:#c6f6d5}
</style></head><body>
<h1>sluice bench: {{.R.Name}}</h1>
<p>{{.R.Target}} — {{.R.Mode}}, {{.R.Duration}}</p>
<table>
<tr><th>requests</th><td>{{.R.Requests}}</td></tr>
<tr><th>ok</th><td>{{.R.OK}}</td></tr>
<tr><th>errors</th><td>{{.Errors}}{{range $k, $v := .R.Errors}} ({{$k}}: {{$v}}){{end}}</td></tr>
<tr><th>throughput</th><td>{{printf "%.0f" .R.Throughput}}/s</td></tr>
<tr><th>p50 / p90 / p99 / p99.9 / max</th><td>{{printf "%.3f" .R.Latency.P50}} / {{printf "%.3f" .R.Latency.P90}} / {{printf "%.3f" .R.Latency.P99}} / {{printf "%.3f" .R.Latency.P999}} / {{printf "%.3f" .R.Latency.Max}} ms</td></tr>
</table>
<h2>Latency over time</h2>
<p>Blue: p50, red: p99 (left axis, ms, log scale); green bars: requests per second (right axis).</p>
{{.Timeline}}
<h2>Latency histogram</h2>
<p>Requests per latency bucket (log-spaced, 4 per decade).</p>
{{.Hist}}
</body></html>
`))

const (
	svgW, svgH = 900, 300
	padL, padR = 60, 60
	padT, padB = 20, 40
)

func timelineSVG(series []Second) string {
	if len(series) == 0 {
		return "<p>no data</p>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%d" height="%d" xmlns="http://www.w3.org/2000/svg">`, svgW, svgH)
	n := series[len(series)-1].T + 1
	x := func(t float64) float64 { return padL + t*float64(svgW-padL-padR)/float64(n) }
	var maxCount int64
	minL, maxL := math.Inf(1), 0.0
	for _, s := range series {
		maxCount = max(maxCount, s.Count)
		minL = math.Min(minL, math.Max(s.P50, 0.001))
		maxL = math.Max(maxL, s.P99)
	}
	lo, hi := math.Floor(math.Log10(minL)), math.Ceil(math.Log10(math.Max(maxL, minL*10)))
	y := func(v float64) float64 {
		f := (math.Log10(math.Max(v, 0.001)) - lo) / (hi - lo)
		return float64(svgH-padB) - f*float64(svgH-padT-padB)
	}
	barW := math.Max(1, float64(svgW-padL-padR)/float64(n)-1)
	for _, s := range series {
		h := float64(s.Count) / float64(max(maxCount, 1)) * float64(svgH-padT-padB)
		fmt.Fprintf(&b, `<rect class="rps" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, x(float64(s.T)), float64(svgH-padB)-h, barW, h)
	}
	for d := lo; d <= hi; d++ {
		v := math.Pow(10, d)
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="5" y="%.1f" font-size="11">%g ms</text>`, padL, svgW-padR, y(v), y(v), y(v)+4, v)
	}
	for _, cls := range []string{"p50", "p99"} {
		var pts []string
		for _, s := range series {
			v := s.P50
			if cls == "p99" {
				v = s.P99
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(float64(s.T)+0.5), y(v)))
		}
		fmt.Fprintf(&b, `<polyline class="%s" fill="none" stroke-width="2" points="%s"/>`, cls, strings.Join(pts, " "))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11">%d/s</text>`, svgW-padR+5, padT+10, maxCount)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11">0 s</text><text x="%d" y="%d" font-size="11">%d s</text>`, padL, svgH-padB+15, svgW-padR-30, svgH-padB+15, n)
	b.WriteString(`</svg>`)
	return b.String()
}

func histogramSVG(buckets []Bucket) string {
	if len(buckets) == 0 {
		return "<p>no data</p>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%d" height="%d" xmlns="http://www.w3.org/2000/svg">`, svgW, svgH)
	var maxCount int64
	for _, k := range buckets {
		maxCount = max(maxCount, k.Count)
	}
	w := float64(svgW-padL-padR) / float64(len(buckets))
	for i, k := range buckets {
		h := float64(k.Count) / float64(max(maxCount, 1)) * float64(svgH-padT-padB)
		x := padL + float64(i)*w
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4299e1"><title>≤ %.3g ms: %d</title></rect>`, x, float64(svgH-padB)-h, math.Max(w-2, 1), h, k.UpToMS, k.Count)
		if i%2 == 0 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="10">%.3g</text>`, x, svgH-padB+14, k.UpToMS)
		}
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11">ms</text>`, svgW-padR+5, svgH-padB+14)
	b.WriteString(`</svg>`)
	return b.String()
}
