package plugins

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeEMF(t *testing.T) {
	tests := []struct {
		name string
		line string
		want []Metric
		err  string // substring; "" means no error
	}{
		{
			name: "one metric one dimension set",
			line: `{"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"shop","Dimensions":[["service"]],"Metrics":[{"Name":"latency","Unit":"Milliseconds"}]}]},"service":"cart","latency":12.5}`,
			want: []Metric{{Namespace: "shop", Name: "latency", Unit: "Milliseconds", Dimensions: []Dimension{{"service", "cart"}}, Values: []float64{12.5}}},
		},
		{
			name: "two dimension sets and an array of values",
			line: `{"_aws":{"CloudWatchMetrics":[{"Namespace":"ns","Dimensions":[["a"],["a","b"]],"Metrics":[{"Name":"m"}]}]},"a":"x","b":"y","m":[1,2]}`,
			want: []Metric{
				{Namespace: "ns", Name: "m", Dimensions: []Dimension{{"a", "x"}}, Values: []float64{1, 2}},
				{Namespace: "ns", Name: "m", Dimensions: []Dimension{{"a", "x"}, {"b", "y"}}, Values: []float64{1, 2}},
			},
		},
		{
			name: "no dimensions",
			line: `{"_aws":{"CloudWatchMetrics":[{"Namespace":"ns","Metrics":[{"Name":"orders","Unit":"Count"}]}]},"orders":1}`,
			want: []Metric{{Namespace: "ns", Name: "orders", Unit: "Count", Dimensions: []Dimension{}, Values: []float64{1}}},
		},
		{name: "plain log line", line: `hello world`, err: ErrNotEMF.Error()},
		{name: "json without _aws", line: `{"msg":"hi"}`, err: ErrNotEMF.Error()},
		{name: "broken json", line: `{"_aws":{`, err: "not a JSON object"},
		{name: "_aws not an object", line: `{"_aws":3}`, err: "_aws is not a metadata object"},
		{name: "_aws null", line: `{"_aws":null}`, err: "_aws is not a metadata object"},
		{name: "no directives", line: `{"_aws":{"CloudWatchMetrics":[]}}`, err: "missing or empty"},
		{name: "no namespace", line: `{"_aws":{"CloudWatchMetrics":[{"Metrics":[{"Name":"m"}]}]},"m":1}`, err: "Namespace is missing"},
		{name: "no metrics", line: `{"_aws":{"CloudWatchMetrics":[{"Namespace":"n","Metrics":[]}]}}`, err: "Metrics is empty"},
		{name: "dimension missing", line: `{"_aws":{"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["d"]],"Metrics":[{"Name":"m"}]}]},"m":1}`, err: `dimension "d" has no value`},
		{name: "dimension not a string", line: `{"_aws":{"CloudWatchMetrics":[{"Namespace":"n","Dimensions":[["d"]],"Metrics":[{"Name":"m"}]}]},"d":1,"m":1}`, err: `dimension "d" is not a string`},
		{name: "value missing", line: `{"_aws":{"CloudWatchMetrics":[{"Namespace":"n","Metrics":[{"Name":"m"}]}]}}`, err: `metric "m" has no value`},
		{name: "value a string", line: `{"_aws":{"CloudWatchMetrics":[{"Namespace":"n","Metrics":[{"Name":"m"}]}]},"m":"1"}`, err: "not a number"},
		{name: "empty array", line: `{"_aws":{"CloudWatchMetrics":[{"Namespace":"n","Metrics":[{"Name":"m"}]}]},"m":[]}`, err: "empty"},
		{name: "unknown unit", line: `{"_aws":{"CloudWatchMetrics":[{"Namespace":"n","Metrics":[{"Name":"m","Unit":"Parsecs"}]}]},"m":1}`, err: `unknown unit "Parsecs"`},
		{name: "metric without name", line: `{"_aws":{"CloudWatchMetrics":[{"Namespace":"n","Metrics":[{"Unit":"Count"}]}]}}`, err: "Name is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeEMF([]byte(tt.line))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if _, err := DecodeEMF([]byte("x")); !errors.Is(err, ErrNotEMF) {
		t.Fatalf("a plain line: %v, want ErrNotEMF", err)
	}
}

func TestPutMetric(t *testing.T) {
	var got []Metric
	ctx := WithFunctionMetrics(context.Background(), "f", nil, func(m *Metric) {
		c := *m
		c.Values = append([]float64(nil), m.Values...)
		got = append(got, c)
	})
	PutMetric(ctx, "shop", "orders", "Count", 2, Dimension{"service", "cart"})
	PutMetric(context.Background(), "shop", "dropped", "Count", 1) // no sink: dropped
	want := []Metric{{Namespace: "shop", Name: "orders", Unit: "Count", Dimensions: []Dimension{{"service", "cart"}}, Values: []float64{2}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func FuzzDecodeEMF(f *testing.F) {
	f.Add([]byte(`{"_aws":{"CloudWatchMetrics":[{"Namespace":"shop","Dimensions":[["service"]],"Metrics":[{"Name":"latency","Unit":"Milliseconds"}]}]},"service":"cart","latency":12.5}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		ms, err := DecodeEMF(line)
		if err != nil {
			if ms != nil {
				t.Fatal("metrics with an error")
			}
			return
		}
		for _, m := range ms {
			if m.Namespace == "" || m.Name == "" || len(m.Values) == 0 {
				t.Fatalf("incomplete metric %+v", m)
			}
			if _, err := UnitScale(m.Unit); err != nil {
				t.Fatal(err)
			}
		}
	})
}
