package plugins

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// Metric is one custom metric datum a function emitted: through an
// Embedded Metric Format line on its log output (DecodeEMF), or, for a Go
// function, through PutMetric.
type Metric struct {
	// Namespace groups metrics, as CloudWatch's namespace does.
	Namespace string
	// Name is the metric's name within Namespace.
	Name string
	// Unit is a CloudWatch unit ("Milliseconds", "Count", "Bytes/Second",
	// …); "" is None.
	Unit string
	// Dimensions label the series, in the order the function gave them.
	Dimensions []Dimension
	// Values are the observations; EMF allows up to 100 in one line.
	Values []float64
}

// Dimension is one name/value label of a Metric.
type Dimension struct {
	Name, Value string
}

// MetricSink receives the metrics a function emits. It must be safe for
// concurrent use and must not retain m's slices after it returns.
type MetricSink func(m *Metric)

// PutMetric records one observation of a custom metric from a Go function:
// what an EMF log line is to a subprocess. ctx is the invocation's context;
// outside an invocation, or when the host collects no metrics, the datum is
// dropped. It is safe for concurrent use.
func PutMetric(ctx context.Context, namespace, name, unit string, value float64, dims ...Dimension) {
	fi, _ := ctx.Value(ctxKey{}).(*fnInfo)
	if fi == nil || fi.metrics == nil {
		return
	}
	v := [1]float64{value}
	fi.metrics(&Metric{Namespace: namespace, Name: name, Unit: unit, Dimensions: dims, Values: v[:]})
}

// EMF limits, as CloudWatch enforces them.
const (
	emfMaxMetrics    = 100 // metrics per directive
	emfMaxDimensions = 30  // dimensions per dimension set
	emfMaxValues     = 100 // values per metric
)

// ErrNotEMF is returned by DecodeEMF for a line that is not an Embedded
// Metric Format object at all (no "_aws" key): an ordinary log line.
var ErrNotEMF = errors.New("plugins: not an EMF line")

// IsEMF reports whether line looks like an Embedded Metric Format object: a
// JSON object mentioning "_aws". It is cheap, for telling EMF from other
// log lines before decoding; DecodeEMF decides.
func IsEMF(line []byte) bool {
	line = bytes.TrimSpace(line)
	return len(line) > 0 && line[0] == '{' && bytes.Contains(line, []byte(`"_aws"`))
}

type emfRoot struct {
	AWS *struct {
		Timestamp         json.RawMessage `json:"Timestamp"`
		CloudWatchMetrics []struct {
			Namespace  string     `json:"Namespace"`
			Dimensions [][]string `json:"Dimensions"`
			Metrics    []struct {
				Name string `json:"Name"`
				Unit string `json:"Unit"`
			} `json:"Metrics"`
		} `json:"CloudWatchMetrics"`
	} `json:"_aws"`
}

// DecodeEMF decodes one CloudWatch Embedded Metric Format line:
//
//	{"_aws":{"Timestamp":…,"CloudWatchMetrics":[{"Namespace":"shop",
//	  "Dimensions":[["service"]],"Metrics":[{"Name":"latency","Unit":"Milliseconds"}]}]},
//	 "service":"cart","latency":12.5}
//
// It returns one Metric per metric and dimension set (a directive with no
// dimension set gives one Metric without dimensions). It returns ErrNotEMF
// for a line without "_aws", and an error saying what is wrong for an EMF
// line that breaks the format (a dimension or metric missing from the
// root, a value that is not a number, over the format's limits); it never
// panics. It is safe for concurrent use.
func DecodeEMF(line []byte) ([]Metric, error) {
	var root map[string]json.RawMessage
	if err := json.Unmarshal(line, &root); err != nil {
		if !IsEMF(line) {
			return nil, ErrNotEMF
		}
		return nil, fmt.Errorf("plugins: EMF: not a JSON object: %w", err)
	}
	if _, ok := root["_aws"]; !ok {
		return nil, ErrNotEMF
	}
	var doc emfRoot
	if err := json.Unmarshal(line, &doc); err != nil || doc.AWS == nil {
		if err == nil {
			err = errors.New("null")
		}
		return nil, fmt.Errorf("plugins: EMF: _aws is not a metadata object: %w", err)
	}
	if len(doc.AWS.CloudWatchMetrics) == 0 {
		return nil, errors.New("plugins: EMF: _aws.CloudWatchMetrics is missing or empty")
	}
	var out []Metric
	for di, d := range doc.AWS.CloudWatchMetrics {
		if d.Namespace == "" {
			return nil, fmt.Errorf("plugins: EMF: CloudWatchMetrics[%d].Namespace is missing", di)
		}
		if len(d.Metrics) == 0 {
			return nil, fmt.Errorf("plugins: EMF: CloudWatchMetrics[%d].Metrics is empty", di)
		}
		if len(d.Metrics) > emfMaxMetrics {
			return nil, fmt.Errorf("plugins: EMF: CloudWatchMetrics[%d] has %d metrics, over the limit of %d", di, len(d.Metrics), emfMaxMetrics)
		}
		sets := d.Dimensions
		if len(sets) == 0 {
			sets = [][]string{nil}
		}
		dimSets := make([][]Dimension, 0, len(sets))
		for si, set := range sets {
			if len(set) > emfMaxDimensions {
				return nil, fmt.Errorf("plugins: EMF: CloudWatchMetrics[%d].Dimensions[%d] has %d dimensions, over the limit of %d", di, si, len(set), emfMaxDimensions)
			}
			dims := make([]Dimension, 0, len(set))
			for _, name := range set {
				raw, ok := root[name]
				if !ok {
					return nil, fmt.Errorf("plugins: EMF: dimension %q has no value in the line", name)
				}
				var v string
				if err := json.Unmarshal(raw, &v); err != nil {
					return nil, fmt.Errorf("plugins: EMF: dimension %q is not a string", name)
				}
				dims = append(dims, Dimension{Name: name, Value: v})
			}
			dimSets = append(dimSets, dims)
		}
		for mi, m := range d.Metrics {
			if m.Name == "" {
				return nil, fmt.Errorf("plugins: EMF: CloudWatchMetrics[%d].Metrics[%d].Name is missing", di, mi)
			}
			if _, err := UnitScale(m.Unit); err != nil {
				return nil, fmt.Errorf("plugins: EMF: metric %q: %w", m.Name, err)
			}
			raw, ok := root[m.Name]
			if !ok {
				return nil, fmt.Errorf("plugins: EMF: metric %q has no value in the line", m.Name)
			}
			vals, err := emfValues(raw)
			if err != nil {
				return nil, fmt.Errorf("plugins: EMF: metric %q: %w", m.Name, err)
			}
			for _, dims := range dimSets {
				out = append(out, Metric{Namespace: d.Namespace, Name: m.Name, Unit: m.Unit, Dimensions: dims, Values: vals})
			}
		}
	}
	return out, nil
}

func emfValues(raw json.RawMessage) ([]float64, error) {
	raw = bytes.TrimSpace(raw)
	var vals []float64
	if len(raw) > 0 && raw[0] == '[' {
		if err := json.Unmarshal(raw, &vals); err != nil {
			return nil, errors.New("the value is not a number or an array of numbers")
		}
		if len(vals) == 0 {
			return nil, errors.New("the array of values is empty")
		}
		if len(vals) > emfMaxValues {
			return nil, fmt.Errorf("%d values, over the limit of %d", len(vals), emfMaxValues)
		}
	} else {
		var v float64
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, errors.New("the value is not a number or an array of numbers")
		}
		vals = []float64{v}
	}
	for _, v := range vals {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, errors.New("the value is not finite")
		}
	}
	return vals, nil
}

// Scale is how a CloudWatch unit maps to a Prometheus base unit: multiply
// a value by Factor and name the metric with Suffix ("" for none).
type Scale struct {
	Factor float64
	Suffix string
}

var units = map[string]Scale{
	"": {1, ""}, "None": {1, ""}, "Count": {1, ""}, "Percent": {1, "percent"},
	"Seconds": {1, "seconds"}, "Milliseconds": {1e-3, "seconds"}, "Microseconds": {1e-6, "seconds"},
	"Bytes": {1, "bytes"}, "Kilobytes": {1e3, "bytes"}, "Megabytes": {1e6, "bytes"}, "Gigabytes": {1e9, "bytes"}, "Terabytes": {1e12, "bytes"},
	"Bits": {1, "bits"}, "Kilobits": {1e3, "bits"}, "Megabits": {1e6, "bits"}, "Gigabits": {1e9, "bits"}, "Terabits": {1e12, "bits"},
	"Count/Second": {1, "per_second"},
	"Bytes/Second": {1, "bytes_per_second"}, "Kilobytes/Second": {1e3, "bytes_per_second"}, "Megabytes/Second": {1e6, "bytes_per_second"},
	"Gigabytes/Second": {1e9, "bytes_per_second"}, "Terabytes/Second": {1e12, "bytes_per_second"},
	"Bits/Second": {1, "bits_per_second"}, "Kilobits/Second": {1e3, "bits_per_second"}, "Megabits/Second": {1e6, "bits_per_second"},
	"Gigabits/Second": {1e9, "bits_per_second"}, "Terabits/Second": {1e12, "bits_per_second"},
}

// UnitScale returns how CloudWatch unit maps to Prometheus' base units
// (Milliseconds to seconds × 0.001, Kilobytes to bytes × 1000, Count to no
// suffix), or an error naming an unknown unit.
func UnitScale(unit string) (Scale, error) {
	s, ok := units[unit]
	if !ok {
		return Scale{}, fmt.Errorf("unknown unit %q (CloudWatch units: Seconds, Milliseconds, Microseconds, Bytes, Kilobytes, …, Bits, …, Percent, Count, None, and the /Second rates)", unit)
	}
	return s, nil
}
