package formats

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

// ErrUnknownSource is returned by Normalize for a source it does not know.
var ErrUnknownSource = errors.New("formats: unknown source")

// NormalizeOptions are the parts of a source event that a pasted payload
// does not carry. The zero value is usable for storage, cdc and schedule.
type NormalizeOptions struct {
	// Topic, Partition and Offset place the record of cdc and kafka
	// payloads, as a trigger would have read it. An empty Topic leaves the
	// kafka extensions out (and cdc ids become a hash of key and value).
	Topic     string
	Partition int32
	Offset    int64
	// Key is the record key of cdc and kafka payloads: a Debezium key
	// becomes the partitionkey. Defaults to none.
	Key []byte
	// Schedule names the schedule of a schedule payload. Defaults to
	// "invoke".
	Schedule string
	// Time is the scheduled time of a schedule payload and the timestamp of
	// a record. Defaults to now, truncated to the second.
	Time time.Time
	// Kafka decodes kafka payloads: the Decoder of the function's Kafka
	// trigger (the raw, cloudevents or s3 format), so that the envelope is
	// the one the trigger would build. Required for kafka.
	Kafka Decoder
}

// Normalize turns a raw source payload, as a user would paste it for
// `sluice invoke --as SOURCE`, into the envelopes the real source would
// produce:
//
//   - storage: an S3 notification, a MinIO notification, or one bare S3
//     record, decoded as DecodeStorageNotification does (s3:TestEvent: no
//     events)
//   - cdc: a Debezium change event value, decoded as Debezium does
//     (a tombstone: no events)
//   - schedule: the schedule's payload (JSON; empty means null), wrapped as
//     ScheduleTick does
//   - kafka: a record value, decoded by opts.Kafka
//
// It returns no events and no error when the source would have skipped the
// payload; decoding errors wrap ErrMalformed; an unknown source is
// ErrUnknownSource. It is safe for concurrent use.
func Normalize(as string, payload []byte, opts NormalizeOptions) ([]*plugins.Event, error) {
	at := opts.Time
	if at.IsZero() {
		at = time.Now().Truncate(time.Second)
	}
	rec := &Record{Topic: opts.Topic, Partition: opts.Partition, Offset: opts.Offset, Key: opts.Key, Value: payload, Timestamp: at}
	switch as {
	case "storage":
		return DecodeStorageNotification(wrapBareRecord(payload))
	case "cdc":
		return Debezium{}.Decode(rec)
	case "schedule":
		name := opts.Schedule
		if name == "" {
			name = "invoke"
		}
		ev, err := ScheduleTick(name, at, payload)
		if err != nil {
			return nil, err
		}
		return []*plugins.Event{ev}, nil
	case "kafka":
		if opts.Kafka == nil {
			return nil, errors.New("formats: normalizing a kafka payload needs the trigger's decoder (NormalizeOptions.Kafka)")
		}
		return opts.Kafka.Decode(rec)
	}
	return nil, fmt.Errorf("%w %q (want storage, cdc, schedule or kafka)", ErrUnknownSource, as)
}

// wrapBareRecord wraps one S3 record, pasted without its {"Records": […]},
// so that it decodes like a notification.
func wrapBareRecord(payload []byte) []byte {
	var probe struct {
		Records   json.RawMessage `json:"Records"`
		EventName json.RawMessage `json:"eventName"`
		S3        json.RawMessage `json:"s3"`
	}
	if json.Unmarshal(payload, &probe) != nil || probe.Records != nil || probe.EventName == nil || probe.S3 == nil {
		return payload
	}
	var b bytes.Buffer
	b.WriteString(`{"Records":[`)
	b.Write(bytes.TrimSpace(payload))
	b.WriteString(`]}`)
	return b.Bytes()
}
