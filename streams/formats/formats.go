// Package formats decodes what sources deliver (Kafka records, storage
// notifications) into CloudEvents envelopes. It is pure: no I/O, no
// franz-go types, so the gateway's webhooks and the Kafka triggers share it
// and every decoder can be fuzzed on its own.
package formats

import (
	"time"

	"github.com/sluicehq/sluice/plugins"
)

// Record is a Kafka record as decoders see it.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte // nil: no key
	Value     []byte // nil: a tombstone
	Headers   []plugins.KafkaHeader
	Timestamp time.Time
	// ID, when not empty, is the record's RecordID, computed by the caller:
	// a trigger builds the ids of a whole fetch in one allocation instead of
	// one per record. Decoders get it from RecordID, never directly.
	ID string
}

// Decoder turns one Kafka record into envelopes. It returns no events and a
// nil error for a record to skip on purpose (a Debezium tombstone); an error
// for a record it cannot decode (a poison record: it goes to dead letter).
// Decoders must never panic, and must be safe for concurrent use. They may
// keep r's byte slices in the events (the caller does not reuse them) but
// not r itself, which the caller reuses for the next record.
type Decoder interface {
	Decode(r *Record) ([]*plugins.Event, error)
}

// IntoDecoder is implemented by decoders that make at most one event per
// record. DecodeInto fills ev, a zero Event the caller owns (a trigger
// allocates the events of a whole fetch at once rather than one per
// record), and reports whether the record made an event: false with a nil
// error is a record to skip on purpose. Its errors, and the rules of what it
// may keep of r, are Decode's; it must be safe for concurrent use.
type IntoDecoder interface {
	Decoder
	DecodeInto(r *Record, ev *plugins.Event) (bool, error)
}
