package process

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

// TestAppendBatchLineTraceParents: the invocation's traceparents replace
// the events' in the envelopes sent, and the events are left as they were.
func TestAppendBatchLineTraceParents(t *testing.T) {
	const evTP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	const invTP = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01"
	evs := []*plugins.Event{{ID: "1", Source: "s", Type: "t", TraceParent: evTP}, {ID: "2", Source: "s", Type: "t", TraceParent: evTP}}
	for _, tc := range []struct {
		name string
		tps  []string
		want []string
	}{
		{"untraced", nil, []string{evTP, evTP}},
		{"traced", []string{invTP, invTP}, []string{invTP, invTP}},
		{"partly", []string{invTP, ""}, []string{invTP, evTP}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			line := appendBatchLine(nil, "b", time.Time{}, evs, tc.tps)
			var got struct{ Events []plugins.Event }
			if err := json.Unmarshal(line, &got); err != nil {
				t.Fatal(err)
			}
			for i, ev := range got.Events {
				if ev.TraceParent != tc.want[i] {
					t.Errorf("event %d traceparent %q, want %q", i, ev.TraceParent, tc.want[i])
				}
			}
			if evs[0].TraceParent != evTP || evs[1].TraceParent != evTP {
				t.Error("the events were changed")
			}
		})
	}
}
