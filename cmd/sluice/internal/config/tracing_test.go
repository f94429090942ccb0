package config

import (
	"testing"
)

// TestTracing checks the tracing section's values, defaults and the
// environment's endpoint.
func TestTracing(t *testing.T) {
	t.Parallel()
	env := func(v string) func(string) (string, bool) {
		return func(k string) (string, bool) {
			if k == EnvOTLPEndpoint && v != "" {
				return v, true
			}
			return "", false
		}
	}
	for _, tc := range []struct {
		name string
		src  string
		env  string
		want Tracing
	}{
		{"off by default", "log: {level: info}\n", "", Tracing{SampleRatio: 1, ServiceName: "sluice"}},
		{"all set", "tracing:\n  otlp_endpoint: http://127.0.0.1:4318\n  sample_ratio: 0.25\n  service_name: edge\n", "",
			Tracing{OTLPEndpoint: "http://127.0.0.1:4318", SampleRatio: 0.25, ServiceName: "edge"}},
		{"ratio zero is kept", "tracing: {otlp_endpoint: https://c.example:4318/v1/traces, sample_ratio: 0}\n", "",
			Tracing{OTLPEndpoint: "https://c.example:4318/v1/traces", SampleRatio: 0, ServiceName: "sluice"}},
		{"integer ratio", "tracing: {otlp_endpoint: http://c:4318, sample_ratio: 1}\n", "",
			Tracing{OTLPEndpoint: "http://c:4318", SampleRatio: 1, ServiceName: "sluice"}},
		{"ratio as a string", "tracing: {otlp_endpoint: http://c:4318, sample_ratio: '0.5'}\n", "",
			Tracing{OTLPEndpoint: "http://c:4318", SampleRatio: 0.5, ServiceName: "sluice"}},
		{"environment turns it on", "log: {level: info}\n", "http://127.0.0.1:4318",
			Tracing{OTLPEndpoint: "http://127.0.0.1:4318", SampleRatio: 1, ServiceName: "sluice"}},
		{"file wins over environment", "tracing: {otlp_endpoint: http://a:1}\n", "http://b:2",
			Tracing{OTLPEndpoint: "http://a:1", SampleRatio: 1, ServiceName: "sluice"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, err := ParseEnv("t.yaml", []byte(tc.src), env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			got := f.Tracing
			got.ratioSet = false
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if got.Enabled() != (tc.want.OTLPEndpoint != "") {
				t.Errorf("Enabled() = %v", got.Enabled())
			}
		})
	}
}

// TestTracingProblems checks each tracing problem's message and position.
func TestTracingProblems(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		src  string
		env  string
		want []string
	}{
		{"endpoint not a URL", "tracing:\n  otlp_endpoint: 127.0.0.1:4318\n", "",
			[]string{`t.yaml:2:18: otlp_endpoint: want an http:// or https:// URL, got "127.0.0.1:4318"`}},
		{"endpoint grpc scheme", "tracing:\n  otlp_endpoint: grpc://c:4317\n", "",
			[]string{`t.yaml:2:18: otlp_endpoint: want an http:// or https:// URL, got "grpc://c:4317"`}},
		{"endpoint with a query", "tracing:\n  otlp_endpoint: http://c:4318/?a=b\n", "",
			[]string{`t.yaml:2:18: otlp_endpoint: a query or fragment has no place in "http://c:4318/?a=b"`}},
		{"ratio above one", "tracing:\n  sample_ratio: 1.5\n", "",
			[]string{`t.yaml:2:17: sample_ratio: must be from 0 to 1, got 1.5`}},
		{"ratio negative", "tracing:\n  sample_ratio: -1\n", "",
			[]string{`t.yaml:2:17: sample_ratio: must be from 0 to 1, got -1`}},
		{"ratio not a number", "tracing:\n  sample_ratio: half\n", "",
			[]string{`t.yaml:2:17: sample_ratio: expected a number from 0 to 1, got "half"`}},
		{"ratio NaN", "tracing:\n  sample_ratio: .nan\n", "",
			[]string{`t.yaml:2:17: sample_ratio: expected a number from 0 to 1, got a number`}},
		{"ratio a list", "tracing:\n  sample_ratio: [1]\n", "",
			[]string{`t.yaml:2:17: sample_ratio: expected a number from 0 to 1, got a list`}},
		{"empty service name", "tracing:\n  service_name: ''\n", "",
			[]string{`t.yaml:2:17: service_name: must not be empty`}},
		{"unknown key", "tracing:\n  endpoint: http://c:4318\n", "",
			nil},
		{"bad environment endpoint", "tracing:\n  service_name: x\n", "localhost:4318",
			[]string{`t.yaml:1:1: OTEL_EXPORTER_OTLP_ENDPOINT: want an http:// or https:// URL, got "localhost:4318"`}},
		{"not a mapping", "tracing: on\n", "",
			[]string{`t.yaml:1:10: tracing: expected a mapping, got a string`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := func(k string) (string, bool) {
				if k == EnvOTLPEndpoint && tc.env != "" {
					return tc.env, true
				}
				return "", false
			}
			got := problems(t, tc.src, env)
			if tc.want == nil {
				if len(got) != 1 {
					t.Fatalf("want one problem, got %q", got)
				}
				return
			}
			equalLines(t, got, tc.want)
		})
	}
}
