package plugintest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/plugins/plugintest"
)

// recorder stands in for testing.T, to see what Run reports.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestRun(t *testing.T) {
	evs := []*plugins.Event{
		{ID: "a", Data: []byte(`1`)},
		{ID: "b", Data: []byte(`2`)},
	}
	var kept *plugins.Event
	tests := []struct {
		name    string
		h       plugins.Handler
		wantErr int
	}{
		{"keeps nothing", func(_ context.Context, ev *plugins.Event) ([]byte, error) {
			return []byte(`"` + ev.ID + `"`), nil
		}, 0},
		{"keeps the value, not the event", func(_ context.Context, ev *plugins.Event) ([]byte, error) {
			return append([]byte(nil), ev.Data...), nil
		}, 0},
		{"reads the event of the call before", func(_ context.Context, ev *plugins.Event) ([]byte, error) {
			prev := kept
			kept = ev
			if prev == nil {
				return []byte(`null`), nil
			}
			return []byte(`"` + prev.ID + `"`), nil
		}, 1},
		{"fails with the kept event's data", func(_ context.Context, ev *plugins.Event) ([]byte, error) {
			prev := kept
			kept = ev
			if prev == nil {
				return nil, nil
			}
			return nil, fmt.Errorf("bad %s", prev.Data)
		}, 1},
		{"panics", func(context.Context, *plugins.Event) ([]byte, error) { panic("boom") }, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kept = nil
			r := &recorder{TB: t}
			out := plugintest.Run(r, tt.h, evs...)
			if len(r.errs) != tt.wantErr {
				t.Errorf("Run reported %q, want %d problems", r.errs, tt.wantErr)
			}
			if len(out) != len(evs) {
				t.Errorf("%d results for %d events", len(out), len(evs))
			}
			if evs[0].ID != "a" || string(evs[1].Data) != "2" {
				t.Error("Run modified the caller's events")
			}
		})
	}
}

func TestPoison(t *testing.T) {
	ev := &plugins.Event{ID: "x", Data: []byte(`{}`), KafkaOffset: 7}
	plugins.Poison(ev)
	if !plugins.IsPoisoned(ev) || ev.KafkaOffset != -1 || string(ev.Data) != `"`+plugins.Poisoned+`"` {
		t.Errorf("poisoned event: %+v", ev)
	}
	b, err := ev.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !plugins.ValidJSON(b) {
		t.Errorf("a poisoned event encodes to invalid JSON: %s", b)
	}
}
