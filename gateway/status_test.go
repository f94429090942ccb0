package gateway

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/sluicehq/sluice/invoker"
)

func TestStatusReport(t *testing.T) {
	set := metrics.NewSet()
	set.GetOrCreateGauge(`sluice_concurrent_executions{function="st-a"}`, func() float64 { return 1 })
	set.GetOrCreateGauge(`sluice_queue_depth{function="st-a"}`, func() float64 { return 4 })
	set.GetOrCreateCounter(`sluice_cold_starts_total{function="st-b"}`).Add(3)
	set.GetOrCreateGauge(`sluice_instances{function="st-b",state="busy"}`, func() float64 { return 2 })
	set.GetOrCreateGauge(`sluice_instances{function="st-b",state="idle"}`, func() float64 { return 5 })
	set.GetOrCreateGauge(`sluice_kafka_lag_records{group="st-g",topic="t",partition="0"}`, func() float64 { return 7 })
	set.GetOrCreateGauge(`sluice_kafka_lag_records{group="st-g",topic="t",partition="1"}`, func() float64 { return 3 })
	metrics.RegisterSet(set)
	t.Cleanup(func() { metrics.UnregisterSet(set, true) })

	s := NewStatus(3)
	s.AddFunction(StatusFunction{Name: "st-a", Runtime: "go", Instances: 8})
	s.AddFunction(StatusFunction{Name: "st-b", Runtime: "process", Instances: 7})
	s.AddTrigger(StatusTrigger{Name: "kafka:st-g", Kind: "kafka", Function: "st-a", Group: "st-g"})
	s.AddTrigger(StatusTrigger{Name: "POST /a", Kind: "http", Function: "st-a"})
	now := time.Now()
	for i := 1; i <= 100; i++ {
		inv := invoker.Invocation{Function: "st-a", RequestID: fmt.Sprint("r", i), Trigger: "http", Outcome: "success",
			Start: now, Duration: time.Duration(i) * time.Millisecond, Attempt: 1}
		if i%10 == 0 {
			inv.Outcome, inv.Err = "error", errors.New(strings.Repeat("x", 1000))
		}
		s.Observe(inv)
	}
	s.Observe(invoker.Invocation{Function: "st-a", Outcome: "success", Start: now.Add(-2 * statusWindow)}) // out of the window

	rep := s.Report()
	a, b := rep.Functions[0], rep.Functions[1]
	if a.Invocations != 100 || a.ErrorRate != 0.1 || a.P50MS != 50 || a.P99MS != 99 || a.Busy != 1 || a.Idle != 7 || a.Queued != 4 {
		t.Errorf("st-a: %+v", a)
	}
	if b.Busy != 2 || b.Idle != 5 || b.ColdStarts != 3 || b.Invocations != 0 {
		t.Errorf("st-b: %+v", b)
	}
	if lag := rep.Triggers[0].Lag; lag == nil || *lag != 10 {
		t.Errorf("lag %v, want 10", lag)
	}
	if rep.Triggers[1].Lag != nil {
		t.Errorf("an HTTP trigger has a lag")
	}
	var ids []string
	for _, r := range rep.Invocations {
		ids = append(ids, r.RequestID)
	}
	if !reflect.DeepEqual(ids, []string{"", "r100", "r99"}) {
		t.Errorf("recent %v, want the last 3, newest first", ids)
	}
	ids = ids[:0]
	for _, r := range rep.Errors {
		ids = append(ids, r.RequestID)
		if len(r.Error) > maxStatusError+len("…") {
			t.Errorf("error of %d bytes kept", len(r.Error))
		}
	}
	if !reflect.DeepEqual(ids, []string{"r100", "r90", "r80"}) {
		t.Errorf("errors %v", ids)
	}
}

func TestParseLabels(t *testing.T) {
	tests := []struct {
		in     string
		labels map[string]string
		value  string
		ok     bool
	}{
		{`a="1",b="x\"y\\z\n"} 3`, map[string]string{"a": "1", "b": "x\"y\\z\n"}, " 3", true},
		{`} 1`, map[string]string{}, " 1", true},
		{`a="1"`, nil, "", false},
		{`a=1} 2`, nil, "", false},
		{`a="unterminated`, nil, "", false},
	}
	for _, tt := range tests {
		labels, value, ok := parseLabels(tt.in)
		if ok != tt.ok || value != tt.value || (ok && !reflect.DeepEqual(labels, tt.labels)) {
			t.Errorf("parseLabels(%q) = %v %q %v", tt.in, labels, value, ok)
		}
	}
}

func FuzzParseLabels(f *testing.F) {
	f.Add(`a="1",b="x\"y"} 3`)
	f.Add(`} 1`)
	f.Fuzz(func(t *testing.T, s string) {
		_, _, _ = parseLabels(s)
	})
}

func FuzzRegroup(f *testing.F) {
	f.Add([]byte("# HELP x_total\n# TYPE x_total counter\nx_total{a=\"1\"} 1\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		// Every sample line comes out once, whatever the input.
		samples := func(b []byte) int {
			n := 0
			for _, l := range strings.Split(string(b), "\n") {
				if strings.TrimSpace(l) != "" && l[0] != '#' {
					n++
				}
			}
			return n
		}
		if got, want := samples(regroup(in)), samples(in); got != want {
			t.Fatalf("%d sample lines out of %d: %q", got, want, in)
		}
	})
}
