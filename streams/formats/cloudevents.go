package formats

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

// Content types of the CloudEvents Kafka protocol binding.
const (
	// CloudEventsContentType marks a structured-mode record: the value is
	// the whole event as JSON.
	CloudEventsContentType = "application/cloudevents+json"
	// cloudEventsBatchContentType is batched mode, which the Kafka binding
	// does not define.
	cloudEventsBatchContentType = "application/cloudevents-batch+json"
	// CloudEventsHeaderPrefix starts the header of each attribute of a
	// binary-mode record ("ce_id", "ce_type", ...).
	CloudEventsHeaderPrefix = "ce_"
)

// ErrNotCloudEvent is wrapped by the errors of CloudEvents.Decode: the
// record is a poison record for a cloudevents trigger.
var ErrNotCloudEvent = errors.New("formats: record is not a CloudEvent")

// CloudEvents decodes records written under the CloudEvents Kafka protocol
// binding into the event they carry:
//
//   - structured mode: a "content-type: application/cloudevents+json"
//     header and the event as JSON in the value (what streams.Publisher
//     writes). A value that is a JSON object with a "specversion" and no
//     ce_ headers is read the same way without the header, as plain
//     producers such as kcat cannot always set one;
//   - binary mode: the attributes in "ce_<name>" headers, the data in the
//     value and its type in the "content-type" header. Extensions become
//     string attributes.
//
// Either way the record's topic, partition and offset replace any kafka*
// attributes of the event, its other headers become kafkaheaders, and its
// key becomes the partitionkey when the event has none. Records that are
// neither, or that lack id, source, type or specversion 1.0, fail with an
// error wrapping ErrNotCloudEvent. Its zero value is ready to use and safe
// for concurrent use.
type CloudEvents struct{}

var _ Decoder = CloudEvents{}

// Decode implements Decoder.
func (CloudEvents) Decode(r *Record) ([]*plugins.Event, error) {
	ct, hasCT := contentTypeHeader(r.Headers)
	media := strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	var (
		ev  *plugins.Event
		err error
	)
	switch {
	case hasCT && media == CloudEventsContentType:
		ev, err = decodeStructured(r)
	case hasCT && media == cloudEventsBatchContentType:
		return nil, fmt.Errorf("%w: batched mode (%s) is not part of the Kafka binding", ErrNotCloudEvent, cloudEventsBatchContentType)
	case hasCEHeaders(r.Headers):
		ev, err = decodeBinary(r, ct)
	case looksStructured(r.Value):
		ev, err = decodeStructured(r)
	default:
		return nil, fmt.Errorf("%w: no ce_ headers and no %s content-type", ErrNotCloudEvent, CloudEventsContentType)
	}
	if err != nil {
		return nil, err
	}
	ev.KafkaTopic = r.Topic
	ev.KafkaPartition = r.Partition
	ev.KafkaOffset = r.Offset
	if ev.PartitionKey == "" && r.Key != nil {
		ev.PartitionKey = string(r.Key)
	}
	return []*plugins.Event{ev}, nil
}

func decodeStructured(r *Record) (*plugins.Event, error) {
	ev := &plugins.Event{}
	if err := ev.UnmarshalJSON(r.Value); err != nil {
		return nil, fmt.Errorf("%w: structured mode: %w", ErrNotCloudEvent, err)
	}
	ev.KafkaHeaders = nil
	for _, h := range r.Headers {
		if strings.EqualFold(h.Key, "content-type") {
			continue
		}
		if h.Key == "traceparent" && string(h.Value) == ev.TraceParent {
			// A copy of the event's own traceparent, for consumers that do
			// not read CloudEvents (Sluice's publisher writes one): not a
			// header of the event's.
			continue
		}
		ev.KafkaHeaders = append(ev.KafkaHeaders, h)
	}
	return ev, nil
}

func decodeBinary(r *Record, ct string) (*plugins.Event, error) {
	ev := &plugins.Event{Data: r.Value, DataContentType: ct}
	var specversion string
	seen := make(map[string]bool, 8)
	for _, h := range r.Headers {
		if !strings.HasPrefix(h.Key, CloudEventsHeaderPrefix) {
			if !strings.EqualFold(h.Key, "content-type") {
				ev.KafkaHeaders = append(ev.KafkaHeaders, h)
			}
			continue
		}
		name := h.Key[len(CloudEventsHeaderPrefix):]
		if !validAttrName(name) {
			return nil, fmt.Errorf("%w: header %q: attribute names are lowercase letters and digits", ErrNotCloudEvent, h.Key)
		}
		if seen[name] {
			return nil, fmt.Errorf("%w: header %q appears twice", ErrNotCloudEvent, h.Key)
		}
		seen[name] = true
		v := string(h.Value)
		switch name {
		case "specversion":
			specversion = v
		case "id":
			ev.ID = v
		case "source":
			ev.Source = v
		case "type":
			ev.Type = v
		case "subject":
			ev.Subject = v
		case "dataschema":
			ev.DataSchema = v
		case "datacontenttype":
			// Not part of binary mode (content-type is), but harmless.
			if ev.DataContentType == "" {
				ev.DataContentType = v
			}
		case "time":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return nil, fmt.Errorf("%w: ce_time %q is not RFC 3339", ErrNotCloudEvent, v)
			}
			ev.Time = t
		case "partitionkey":
			ev.PartitionKey = v
		case "traceparent":
			ev.TraceParent = v
		case "tracestate":
			ev.TraceState = v
		case "kafkatopic", "kafkapartition", "kafkaoffset", "kafkaheaders", "data":
			// The record's own place and headers win.
		default:
			if ev.Extensions == nil {
				ev.Extensions = make(map[string]any)
			}
			ev.Extensions[name] = v
		}
	}
	if specversion != plugins.SpecVersion {
		return nil, fmt.Errorf("%w: ce_specversion %q, want %q", ErrNotCloudEvent, specversion, plugins.SpecVersion)
	}
	for _, req := range []struct{ name, v string }{{"id", ev.ID}, {"source", ev.Source}, {"type", ev.Type}} {
		if req.v == "" {
			return nil, fmt.Errorf("%w: missing ce_%s", ErrNotCloudEvent, req.name)
		}
	}
	return ev, nil
}

func hasCEHeaders(hs []plugins.KafkaHeader) bool {
	for _, h := range hs {
		if strings.HasPrefix(h.Key, CloudEventsHeaderPrefix) {
			return true
		}
	}
	return false
}

// looksStructured reports whether v is a JSON object naming a specversion,
// cheaply: the full decode checks the rest.
func looksStructured(v []byte) bool {
	v = bytes.TrimLeft(v, " \t\r\n")
	return len(v) > 0 && v[0] == '{' && bytes.Contains(v, []byte(`"specversion"`))
}

// validAttrName reports whether s is a CloudEvents attribute name: lowercase
// ASCII letters and digits.
func validAttrName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
