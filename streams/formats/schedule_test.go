package formats

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

func TestScheduleTick(t *testing.T) {
	t.Parallel()
	at := time.Date(2024, 7, 14, 12, 5, 0, 0, time.FixedZone("CEST", 2*3600))
	ev, err := ScheduleTick("nightly cleanup", at, []byte(` {"job": "cleanup", "older_than": "30d"} `))
	if err != nil {
		t.Fatal(err)
	}
	assertSDKValid(t, ev)
	goldenEvents(t, "testdata/schedule/tick.golden", []*plugins.Event{ev})
	if ev.ID != "nightly cleanup@2024-07-14T10:05:00Z" || ev.Source != "sluice://schedule/nightly%20cleanup" ||
		ev.Type != plugins.TypeScheduleTick || !ev.Time.Equal(at) || ev.Subject != "nightly cleanup" {
		t.Errorf("envelope %+v", ev)
	}
	var data struct {
		Schedule      string          `json:"schedule"`
		ScheduledTime time.Time       `json:"scheduledTime"`
		Payload       json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(ev.Data, &data); err != nil {
		t.Fatal(err)
	}
	if data.Schedule != "nightly cleanup" || !data.ScheduledTime.Equal(at) || string(data.Payload) != `{"job":"cleanup","older_than":"30d"}` {
		t.Errorf("data %s", ev.Data)
	}
	again, _ := ScheduleTick("nightly cleanup", at.UTC(), []byte(`{"job":"cleanup","older_than":"30d"}`))
	if again.ID != ev.ID {
		t.Errorf("the same tick has ids %q and %q", ev.ID, again.ID)
	}
	next, _ := ScheduleTick("nightly cleanup", at.Add(time.Minute), nil)
	if next.ID == ev.ID || string(next.Data) != `{"schedule":"nightly cleanup","scheduledTime":"2024-07-14T10:06:00Z","payload":null}` {
		t.Errorf("next tick: id %q data %s", next.ID, next.Data)
	}
	for _, bad := range []struct {
		name    string
		payload string
	}{{"n", "{job: cleanup}"}, {"", "{}"}} {
		if _, err := ScheduleTick(bad.name, at, []byte(bad.payload)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ScheduleTick(%q, %q): %v, want ErrMalformed", bad.name, bad.payload, err)
		}
	}
}

func FuzzScheduleTick(f *testing.F) {
	f.Add("every-minute", int64(1720958700), []byte(`{"a":1}`))
	f.Add("a/b c?d", int64(-1), []byte(``))
	f.Fuzz(func(t *testing.T, name string, unix int64, payload []byte) {
		ev, err := ScheduleTick(name, time.Unix(unix%(1<<35), 0), payload)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		checkEnvelope(t, ev)
		if !json.Valid(ev.Data) {
			t.Fatalf("data %q", ev.Data)
		}
	})
}
