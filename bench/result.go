package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latency is a latency distribution summary, in milliseconds.
type Latency struct {
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
}

// Second is one second of a run, for the latency-over-time chart.
type Second struct {
	T      int     `json:"t"`
	Count  int64   `json:"count"`
	Errors int64   `json:"errors"`
	P50    float64 `json:"p50_ms"`
	P99    float64 `json:"p99_ms"`
}

// Bucket is one bar of the latency histogram.
type Bucket struct {
	UpToMS float64 `json:"up_to_ms"`
	Count  int64   `json:"count"`
}

// Result is what one load run measured. Rates are per second of the run's
// measured duration.
type Result struct {
	Name       string           `json:"name"`
	Target     string           `json:"target"`
	Mode       string           `json:"mode"` // "closed-loop, N connections" or "open-loop, R/s"
	Duration   time.Duration    `json:"duration_ns"`
	Requests   int64            `json:"requests"`
	OK         int64            `json:"ok"`
	Errors     map[string]int64 `json:"errors"`
	Throughput float64          `json:"throughput_per_s"`
	Bytes      int64            `json:"bytes"`
	Latency    Latency          `json:"latency"`
	Series     []Second         `json:"series"`
	Histogram  []Bucket         `json:"histogram"`

	hist *hdrhistogram.Histogram // every latency, for merging runs
}

// Histograms track latencies in microseconds from 1µs to 10 minutes with
// three significant digits: enough for a p99.9 of a sub-millisecond loopback
// call and of a 30-second timeout alike.
const (
	histMin    = 1
	histMax    = int64(10 * time.Minute / time.Microsecond)
	histDigits = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigits) }

// coarse histograms (two significant digits) hold the per-second series,
// where there are many and precision matters less.
func newCoarseHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, 2) }

func ms(us int64) float64 { return float64(us) / 1000 }

func summarize(h *hdrhistogram.Histogram) Latency {
	return Latency{
		Mean: h.Mean() / 1000,
		P50:  ms(h.ValueAtQuantile(50)),
		P90:  ms(h.ValueAtQuantile(90)),
		P99:  ms(h.ValueAtQuantile(99)),
		P999: ms(h.ValueAtQuantile(99.9)),
		Max:  ms(h.Max()),
	}
}

// histogramBuckets folds h into log-spaced bars (4 per decade) for the chart.
func histogramBuckets(h *hdrhistogram.Histogram) []Bucket {
	if h.TotalCount() == 0 {
		return nil
	}
	var out []Bucket
	bound := 10.0 // µs
	var prev int64
	for bound < float64(histMax) {
		n := countUpTo(h, int64(bound))
		out = append(out, Bucket{UpToMS: bound / 1000, Count: n - prev})
		prev = n
		if n == h.TotalCount() {
			break
		}
		bound *= 1.7782794 // 10^(1/4)
	}
	// Trim empty leading bars.
	for len(out) > 1 && out[0].Count == 0 {
		out = out[1:]
	}
	return out
}

func countUpTo(h *hdrhistogram.Histogram, v int64) int64 {
	var n int64
	for _, b := range h.Distribution() {
		if b.To <= v {
			n += b.Count
		}
	}
	return n
}

// Print writes the human summary of r.
func (r *Result) Print(w io.Writer) {
	fmt.Fprintf(w, "%s  %s  (%s, %s)\n", r.Name, r.Target, r.Mode, r.Duration.Round(time.Millisecond))
	fmt.Fprintf(w, "  requests   %d  ok %d  throughput %.0f/s\n", r.Requests, r.OK, r.Throughput)
	l := r.Latency
	fmt.Fprintf(w, "  latency    p50 %.3fms  p90 %.3fms  p99 %.3fms  p99.9 %.3fms  max %.3fms  mean %.3fms\n",
		l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean)
	if len(r.Errors) == 0 {
		fmt.Fprintf(w, "  errors     none\n")
		return
	}
	kinds := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	parts := make([]string, 0, len(kinds))
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%s %d", k, r.Errors[k]))
	}
	fmt.Fprintf(w, "  errors     %s\n", strings.Join(parts, ", "))
}

// ErrorCount is the number of failed requests of every kind.
func (r *Result) ErrorCount() int64 {
	var n int64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// WriteJSON writes r as indented JSON to path.
func (r *Result) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
