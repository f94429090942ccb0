// Package custom holds the custom metrics functions emit (Embedded Metric
// Format lines on their log output, plugins.PutMetric from Go functions)
// as Prometheus series: one summary family per namespace, metric and unit,
// named sluice_custom_<namespace>_<name>_<unit> with the unit converted to
// Prometheus' base unit (Milliseconds become _seconds), the dimensions as
// labels beside a function label. Each observation adds to the series'
// _sum and _count, so a CloudWatch Sum is a rate of _sum and an Average is
// _sum over _count.
//
// A function may hold at most Registry's cap of series; further new series
// are dropped and counted in sluice_custom_metrics_dropped_total{function},
// so a function that puts a request id in a dimension cannot grow the
// gateway's memory without bound.
//
// The package imports the standard library and plugins only.
package custom

import (
	"bytes"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/plugins"
)

// DefaultMaxSeries is the series cap per function of New(0).
const DefaultMaxSeries = 1000

// Registry holds every function's custom series. Its methods are safe for
// concurrent use.
type Registry struct {
	max int

	mu       sync.Mutex
	families map[string]*family // by family name
	perFn    map[string]int     // function -> series held
	dropped  map[string]uint64  // function -> data dropped over the cap
}

type family struct {
	series map[string]*series // by rendered label set
}

type series struct {
	sum   float64
	count uint64
}

// New returns an empty Registry holding at most maxSeries series per
// function (0: DefaultMaxSeries).
func New(maxSeries int) *Registry {
	if maxSeries <= 0 {
		maxSeries = DefaultMaxSeries
	}
	return &Registry{max: maxSeries, families: map[string]*family{}, perFn: map[string]int{}, dropped: map[string]uint64{}}
}

// Add records m for function. It reports false when m would have made a new
// series over the function's cap, and was dropped and counted instead. A
// metric with an unknown unit is dropped the same way (DecodeEMF rejects
// those before they get here).
func (r *Registry) Add(function string, m *plugins.Metric) bool {
	scale, err := plugins.UnitScale(m.Unit)
	if err != nil {
		r.mu.Lock()
		r.dropped[function]++
		r.mu.Unlock()
		return false
	}
	name := FamilyName(m.Namespace, m.Name, scale.Suffix)
	labels := renderLabels(function, m.Dimensions)
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.families[name]
	var s *series
	if f != nil {
		s = f.series[labels]
	}
	if s == nil {
		if r.perFn[function] >= r.max {
			r.dropped[function]++
			return false
		}
		if f == nil {
			f = &family{series: map[string]*series{}}
			r.families[name] = f
		}
		s = &series{}
		f.series[labels] = s
		r.perFn[function]++
	}
	for _, v := range m.Values {
		v *= scale.Factor
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		s.sum += v
		s.count++
	}
	return true
}

// Sink returns the plugins.MetricSink of function, for Go functions'
// plugins.PutMetric.
func (r *Registry) Sink(function string) plugins.MetricSink {
	return func(m *plugins.Metric) { r.Add(function, m) }
}

// Series returns how many series function holds.
func (r *Registry) Series(function string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.perFn[function]
}

// Dropped returns how many data of function were dropped over its cap.
func (r *Registry) Dropped(function string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.dropped[function]
}

// WritePrometheus writes every family in the Prometheus text format, each
// with its HELP and TYPE, families and series sorted, then
// sluice_custom_metrics_dropped_total for the functions that dropped any.
// It has the signature metrics.RegisterMetricsWriter takes.
func (r *Registry) WritePrometheus(w io.Writer) {
	var b bytes.Buffer
	r.mu.Lock()
	names := make([]string, 0, len(r.families))
	for n := range r.families {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		f := r.families[n]
		b.WriteString("# HELP " + n + " A custom metric functions emit (EMF or plugins.PutMetric): the sum and count of its observations.\n")
		b.WriteString("# TYPE " + n + " summary\n")
		keys := make([]string, 0, len(f.series))
		for k := range f.series {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			s := f.series[k]
			b.WriteString(n + "_sum" + k + " " + strconv.FormatFloat(s.sum, 'g', -1, 64) + "\n")
			b.WriteString(n + "_count" + k + " " + strconv.FormatUint(s.count, 10) + "\n")
		}
	}
	if len(r.dropped) > 0 {
		const d = "sluice_custom_metrics_dropped_total"
		b.WriteString("# HELP " + d + " Custom metric data dropped: a new series over the function's cap, or an unknown unit.\n")
		b.WriteString("# TYPE " + d + " counter\n")
		fns := make([]string, 0, len(r.dropped))
		for fn := range r.dropped {
			fns = append(fns, fn)
		}
		slices.Sort(fns)
		for _, fn := range fns {
			b.WriteString(d + `{function="` + escapeValue(fn) + `"} ` + strconv.FormatUint(r.dropped[fn], 10) + "\n")
		}
	}
	r.mu.Unlock()
	_, _ = w.Write(b.Bytes())
}

// FamilyName returns sluice_custom_<namespace>_<name>_<suffix>, each part
// sanitized to Prometheus' metric name characters (lower case, anything
// else an underscore); the suffix is left off when the name already ends
// with it.
func FamilyName(namespace, name, suffix string) string {
	n := "sluice_custom_" + sanitize(namespace) + "_" + sanitize(name)
	if suffix != "" && !strings.HasSuffix(n, "_"+suffix) {
		n += "_" + suffix
	}
	return n
}

// sanitize lower-cases s and turns every run of characters outside
// [a-z0-9_] into one underscore.
func sanitize(s string) string {
	var b strings.Builder
	under := false
	for _, c := range strings.ToLower(s) {
		ok := c == '_' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !ok {
			if !under {
				b.WriteByte('_')
			}
			under = true
			continue
		}
		under = c == '_'
		b.WriteRune(c)
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

// labelName sanitizes a dimension name into a label name: Prometheus'
// characters, not starting with a digit, not reserved (__), and function
// (Sluice's own label), quantile and le (the labels of summaries and
// histograms) renamed exported_<name>, as Prometheus renames a clashing
// target label.
func labelName(s string) string {
	n := sanitize(s)
	if n[0] >= '0' && n[0] <= '9' {
		n = "_" + n
	}
	if strings.HasPrefix(n, "__") {
		n = "x" + n
	}
	switch n {
	case "function", "quantile", "le":
		n = "exported_" + n
	}
	return n
}

// renderLabels renders {function="…",dim="…",…}, dimensions sorted by
// name, a repeated name kept once (its first value).
func renderLabels(function string, dims []plugins.Dimension) string {
	type kv struct{ k, v string }
	kvs := make([]kv, 0, len(dims))
	for _, d := range dims {
		k := labelName(d.Name)
		if slices.ContainsFunc(kvs, func(x kv) bool { return x.k == k }) {
			continue
		}
		kvs = append(kvs, kv{k, d.Value})
	}
	slices.SortFunc(kvs, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	var b strings.Builder
	b.WriteString(`{function="` + escapeValue(function) + `"`)
	for _, x := range kvs {
		b.WriteString("," + x.k + `="` + escapeValue(x.v) + `"`)
	}
	b.WriteByte('}')
	return b.String()
}

var valueEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

func escapeValue(s string) string { return valueEscaper.Replace(strings.ToValidUTF8(s, "\uFFFD")) }
