package custom

import (
	"bytes"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/plugins"
)

func TestRegistry(t *testing.T) {
	r := New(2)
	add := func(fn string, m plugins.Metric) bool { return r.Add(fn, &m) }
	if !add("orders", plugins.Metric{Namespace: "Shop", Name: "Latency", Unit: "Milliseconds", Dimensions: []plugins.Dimension{{Name: "service", Value: "cart"}, {Name: "function", Value: "x"}}, Values: []float64{250, 750}}) {
		t.Fatal("first series dropped")
	}
	if !add("orders", plugins.Metric{Namespace: "Shop", Name: "Latency", Unit: "Milliseconds", Dimensions: []plugins.Dimension{{Name: "function", Value: "x"}, {Name: "service", Value: "cart"}}, Values: []float64{1000}}) {
		t.Fatal("the same series (dimensions in another order) dropped")
	}
	if !add("orders", plugins.Metric{Namespace: "shop", Name: "orders placed", Unit: "Count", Values: []float64{1}}) {
		t.Fatal("second series dropped")
	}
	if add("orders", plugins.Metric{Namespace: "shop", Name: "orders placed", Unit: "Count", Dimensions: []plugins.Dimension{{Name: "id", Value: "1"}}, Values: []float64{1}}) {
		t.Fatal("a third series over the cap of 2 was kept")
	}
	if !add("other", plugins.Metric{Namespace: "shop", Name: "bytes", Unit: "Kilobytes", Dimensions: []plugins.Dimension{{Name: "9lives", Value: "a\"b"}}, Values: []float64{2}}) {
		t.Fatal("another function's series dropped")
	}
	var b bytes.Buffer
	r.WritePrometheus(&b)
	for _, want := range []string{
		"# TYPE sluice_custom_shop_latency_seconds summary\n",
		`sluice_custom_shop_latency_seconds_sum{function="orders",exported_function="x",service="cart"} 2` + "\n",
		`sluice_custom_shop_latency_seconds_count{function="orders",exported_function="x",service="cart"} 3` + "\n",
		`sluice_custom_shop_orders_placed_count{function="orders"} 1` + "\n",
		`sluice_custom_shop_bytes_sum{function="other",_9lives="a\"b"} 2000` + "\n",
		"# TYPE sluice_custom_metrics_dropped_total counter\n",
		`sluice_custom_metrics_dropped_total{function="orders"} 1` + "\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("missing %q in\n%s", want, b.String())
		}
	}
	if r.Series("orders") != 2 || r.Dropped("orders") != 1 || r.Dropped("other") != 0 {
		t.Fatalf("series %d dropped %d", r.Series("orders"), r.Dropped("orders"))
	}
}

func TestLabelName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Service", "service"}, {"function", "exported_function"}, {"quantile", "exported_quantile"},
		{"le", "exported_le"}, {"9x", "_9x"}, {"__name__", "x__name__"}, {"a-b c", "a_b_c"}, {"", "_"},
	}
	for _, tt := range tests {
		if got := labelName(tt.in); got != tt.want {
			t.Errorf("labelName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestFamilyName(t *testing.T) {
	tests := []struct{ ns, name, suffix, want string }{
		{"Shop", "Latency", "seconds", "sluice_custom_shop_latency_seconds"},
		{"my-app/v2", "p99 latency", "seconds", "sluice_custom_my_app_v2_p99_latency_seconds"},
		{"a", "wait_seconds", "seconds", "sluice_custom_a_wait_seconds"},
		{"a", "hits", "", "sluice_custom_a_hits"},
		{"", "", "", "sluice_custom____"},
	}
	for _, tt := range tests {
		if got := FamilyName(tt.ns, tt.name, tt.suffix); got != tt.want {
			t.Errorf("FamilyName(%q, %q, %q) = %q, want %q", tt.ns, tt.name, tt.suffix, got, tt.want)
		}
	}
}
