package gateway

import (
	"bytes"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metrics"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parseExposition parses text with Prometheus' own parser and fails the
// test on any family left untyped or without help.
func parseExposition(t *testing.T, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("Prometheus' parser rejects the exposition: %v\n%s", err, text)
	}
	for name, f := range fams {
		if f.GetType() == dto.MetricType_UNTYPED {
			t.Errorf("family %s is untyped", name)
		}
		if f.GetHelp() == "" {
			t.Errorf("family %s has no help", name)
		}
	}
	return fams
}

func TestWriteMetricsPrometheusParses(t *testing.T) {
	// One family split over two sets, as each function's series are.
	a, b := metrics.NewSet(), metrics.NewSet()
	a.GetOrCreateCounter(`sluice_test_expo_total{function="a"}`).Inc()
	b.GetOrCreateCounter(`sluice_test_expo_total{function="b"}`).Add(2)
	a.GetOrCreatePrometheusHistogram(`sluice_test_expo_seconds{function="a"}`).Update(0.2)
	b.GetOrCreatePrometheusHistogram(`sluice_test_expo_seconds{function="b"}`).Update(2)
	b.GetOrCreateGauge(`sluice_test_expo_depth{function="b"}`, func() float64 { return 3 })
	metrics.RegisterSet(a)
	metrics.RegisterSet(b)
	t.Cleanup(func() { metrics.UnregisterSet(a, true); metrics.UnregisterSet(b, true) })

	var out bytes.Buffer
	WriteMetrics(&out)
	fams := parseExposition(t, out.Bytes())
	tests := []struct {
		name   string
		typ    dto.MetricType
		series int
	}{
		{"sluice_test_expo_total", dto.MetricType_COUNTER, 2},
		{"sluice_test_expo_seconds", dto.MetricType_HISTOGRAM, 2},
		{"sluice_test_expo_depth", dto.MetricType_GAUGE, 1},
		{"go_gc_duration_seconds", dto.MetricType_SUMMARY, 1},
	}
	for _, tt := range tests {
		f := fams[tt.name]
		if f == nil {
			t.Errorf("no family %s", tt.name)
			continue
		}
		if f.GetType() != tt.typ || len(f.GetMetric()) != tt.series {
			t.Errorf("%s: type %v with %d series, want %v with %d", tt.name, f.GetType(), len(f.GetMetric()), tt.typ, tt.series)
		}
	}
	if n := strings.Count(out.String(), "# TYPE sluice_test_expo_total "); n != 1 {
		t.Errorf("sluice_test_expo_total typed %d times", n)
	}
}

func TestRegroup(t *testing.T) {
	in := "# HELP x_total\n# TYPE x_total counter\nx_total{a=\"1\"} 1\n" +
		"# HELP h\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n" +
		"untyped_thing 3\n" +
		"# HELP x_total\n# TYPE x_total counter\nx_total{a=\"2\"} 2\n"
	want := "# HELP x_total x total.\n# TYPE x_total counter\nx_total{a=\"1\"} 1\nx_total{a=\"2\"} 2\n" +
		"# HELP h h.\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n" +
		"# HELP untyped_thing untyped thing.\n# TYPE untyped_thing gauge\nuntyped_thing 3\n"
	if got := string(regroup([]byte(in))); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

// TestGrafanaDashboard: the dashboard in configs parses and queries only
// families Sluice writes.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../configs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Panels) == 0 {
		t.Fatal("no panels")
	}
	re := regexp.MustCompile(`sluice_[a-z_]+`)
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, name := range re.FindAllString(tg.Expr, -1) {
				base := name
				for _, suf := range []string{"_bucket", "_count", "_sum"} {
					if b, ok := strings.CutSuffix(name, suf); ok && familyHelp[b] != "" {
						base = b
					}
				}
				if familyHelp[base] == "" {
					t.Errorf("panel %q queries %s, which Sluice does not write", p.Title, name)
				}
			}
		}
	}
}
