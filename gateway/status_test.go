package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
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

// TestStatusRecentAcrossFunctions checks that the recent lists merge the
// functions' invocations newest first, unknown functions included.
func TestStatusRecentAcrossFunctions(t *testing.T) {
	s := NewStatus(4)
	s.AddFunction(StatusFunction{Name: "ra", Runtime: "go"})
	s.AddFunction(StatusFunction{Name: "rb", Runtime: "go"})
	t0 := time.Now()
	for i, fn := range []string{"ra", "rb", "unknown", "ra", "rb", "ra"} {
		outcome := "success"
		if i%2 == 1 {
			outcome = "error"
		}
		s.Observe(invoker.Invocation{Function: fn, RequestID: fmt.Sprint(fn, i), Outcome: outcome,
			Start: t0.Add(time.Duration(i) * time.Millisecond), Duration: time.Millisecond})
	}
	rep := s.Report()
	var ids, errs []string
	for _, r := range rep.Invocations {
		ids = append(ids, r.RequestID)
	}
	for _, r := range rep.Errors {
		errs = append(errs, r.RequestID)
	}
	if want := []string{"ra5", "rb4", "ra3", "unknown2"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("recent %v, want %v", ids, want)
	}
	if want := []string{"ra5", "ra3", "rb1"}; !reflect.DeepEqual(errs, want) {
		t.Errorf("errors %v, want %v", errs, want)
	}
	if a := rep.Functions[0]; a.Invocations != 3 || a.ErrorRate != 2.0/3 {
		t.Errorf("ra: %+v", a)
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

// TestAdminStatusPage: / and /status.json behind the admin token, the page
// self-contained (no external asset) and carrying its first figures.
func TestAdminStatusPage(t *testing.T) {
	st := NewStatus(0)
	st.AddFunction(StatusFunction{Name: "page-fn", Runtime: "process", Instances: 2})
	st.Observe(invoker.Invocation{Function: "page-fn", RequestID: "req-<1>", Outcome: "success", Start: time.Now()})
	a := NewAdmin(AdminConfig{Token: "s3cret"}, nil, Deps{})
	a.SetStatus(st)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = a.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.Shutdown(ctx)
	})
	url := "http://" + ln.Addr().String()
	c := &http.Client{Timeout: 5 * time.Second}
	for _, path := range []string{"/", "/status.json"} {
		if code, _ := get(t, c, url+path, ""); code != 401 {
			t.Errorf("%s without the token: %d", path, code)
		}
	}
	code, page := get(t, c, url+"/", "s3cret")
	if code != 200 || !strings.Contains(page, `"name":"page-fn"`) || !strings.Contains(page, `req-\u003c1\u003e`) {
		t.Fatalf("page %d:\n%s", code, page)
	}
	for _, external := range []string{"http://", "https://", "src=\"//", "@import"} {
		if strings.Contains(page, external) {
			t.Errorf("the page refers to an external asset (%s)", external)
		}
	}
	code, doc := get(t, c, url+"/status.json", "s3cret")
	var rep StatusReport
	if err := json.Unmarshal([]byte(doc), &rep); code != 200 || err != nil || len(rep.Functions) != 1 || rep.Invocations[0].RequestID != "req-<1>" {
		t.Fatalf("status.json %d %v: %s", code, err, doc)
	}
}
