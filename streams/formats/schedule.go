package formats

import (
	"bytes"
	"encoding/json"
	"net/url"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

// ScheduleTick builds the envelope of one tick of the schedule trigger
// named name, due at scheduled:
//
//   - type: sluice.schedule.tick
//   - data: {"schedule": name, "scheduledTime": RFC 3339 UTC, "payload":
//     payload} (payload null when empty)
//   - id: "name@scheduledTime", the same on every instance and every
//     retry, so a duplicate tick is detectable
//   - source: sluice://schedule/NAME (path-escaped)
//   - subject and partitionkey: name
//   - time: scheduled
//
// name must not be empty and payload (the trigger's payload) must be JSON;
// otherwise the error wraps ErrMalformed. It is safe for concurrent use.
func ScheduleTick(name string, scheduled time.Time, payload []byte) (*plugins.Event, error) {
	if name == "" {
		return nil, &DecodeError{Format: "schedule", Path: "name", Msg: "empty"}
	}
	p := bytes.TrimSpace(payload)
	if len(p) == 0 {
		p = []byte("null")
	}
	if !json.Valid(p) {
		return nil, &DecodeError{Format: "schedule", Path: "payload", Msg: "not JSON"}
	}
	at := scheduled.UTC().Format(time.RFC3339Nano)
	data := make([]byte, 0, len(name)+len(at)+len(p)+48)
	data = append(data, `{"schedule":`...)
	data = plugins.AppendJSONString(data, name)
	data = append(data, `,"scheduledTime":`...)
	data = plugins.AppendJSONString(data, at)
	data = append(data, `,"payload":`...)
	var compacted bytes.Buffer
	if err := json.Compact(&compacted, p); err != nil {
		return nil, &DecodeError{Format: "schedule", Path: "payload", Msg: "not JSON"}
	}
	data = append(data, compacted.Bytes()...)
	data = append(data, '}')
	return &plugins.Event{
		ID:              name + "@" + at,
		Source:          "sluice://schedule/" + url.PathEscape(name),
		Type:            plugins.TypeScheduleTick,
		Time:            scheduled,
		Subject:         name,
		DataContentType: "application/json",
		DataValidJSON:   true, // built by encoding/json or a fuzzed encoder here
		Data:            data,
		PartitionKey:    name,
	}, nil
}
