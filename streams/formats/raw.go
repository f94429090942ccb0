package formats

import (
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

// RawSourcePrefix starts the source of every event Raw decodes; the topic
// follows it ("kafka://orders").
const RawSourcePrefix = "kafka://"

// Raw decodes any Kafka record into one sluice.kafka.record event:
//
//   - id: "<topic>-<partition>-<offset>", stable across redeliveries, so a
//     function can deduplicate what at-least-once delivery repeats;
//   - source: "kafka://<topic>"; type: plugins.TypeKafkaRecord;
//   - time: the record's timestamp (omitted when the record has none);
//   - data: the value. A record with a "content-type" header keeps that
//     type; otherwise a value that is valid JSON travels as JSON
//     (application/json, the "data" member) and anything else as bytes
//     (application/octet-stream, "data_base64"). A tombstone (nil value)
//     has no data;
//   - partitionkey: the key as a string (invalid UTF-8 is replaced when the
//     envelope is encoded; the raw key stays in the dead-letter record);
//   - kafkatopic, kafkapartition, kafkaoffset and kafkaheaders: the record's.
//
// The event shares the record's value and headers without copying them.
// Raw never fails. Its zero value is ready to use and safe for concurrent
// use.
type Raw struct{}

var _ Decoder = Raw{}

var _ IntoDecoder = Raw{}

// rawEvent holds the event and the one-element slice Decode returns in a
// single allocation: this runs once per consumed record.
type rawEvent struct {
	ev  plugins.Event
	one [1]*plugins.Event
}

// Decode implements Decoder.
func (Raw) Decode(r *Record) ([]*plugins.Event, error) {
	re := &rawEvent{}
	re.one[0] = &re.ev
	Raw{}.DecodeInto(r, &re.ev)
	return re.one[:], nil
}

// DecodeInto implements IntoDecoder; it always makes an event.
func (Raw) DecodeInto(r *Record, ev *plugins.Event) (bool, error) {
	ev.ID = RecordID(r)
	ev.Source = rawSource(r.Topic)
	ev.Type = plugins.TypeKafkaRecord
	ev.Time = recordTime(r.Timestamp)
	ev.KafkaTopic = r.Topic
	ev.KafkaPartition = r.Partition
	ev.KafkaOffset = r.Offset
	ev.KafkaHeaders = r.Headers
	if r.Key != nil {
		ev.PartitionKey = string(r.Key)
	}
	if r.Value != nil {
		ev.Data = r.Value
		if ct, ok := contentTypeHeader(r.Headers); ok {
			ev.DataContentType = ct
		} else if maybeJSON(r.Value) && plugins.ValidJSON(r.Value) {
			ev.DataContentType = "application/json"
			// Checked right above: encoders need not check it again.
			ev.DataValidJSON = true
		} else {
			ev.DataContentType = "application/octet-stream"
		}
	}
	return true, nil
}

// lastSource caches the source of the last topic seen: a trigger decodes
// runs of records of one topic, and the concatenation is an allocation per
// record otherwise.
var lastSource atomic.Pointer[[2]string]

func rawSource(topic string) string {
	if p := lastSource.Load(); p != nil && p[0] == topic {
		return p[1]
	}
	s := RawSourcePrefix + topic
	lastSource.Store(&[2]string{topic, s})
	return s
}

// maybeJSON reports whether v can start a JSON text, sparing the validation
// of binary and plain-text values.
func maybeJSON(v []byte) bool {
	for _, c := range v {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{', '[', '"', '-', 't', 'f', 'n', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			return true
		default:
			return false
		}
	}
	return false
}

// RecordID returns the stable event id of a record:
// "<topic>-<partition>-<offset>" (r.ID when the caller computed it). Topic
// names may hold dashes, but the last two fields are numbers, so the id
// still names one record.
func RecordID(r *Record) string {
	if r.ID != "" {
		return r.ID
	}
	return string(AppendRecordID(make([]byte, 0, len(r.Topic)+24), r.Topic, r.Partition, r.Offset))
}

// RecordIDPrefix returns what the RecordIDs of a partition's records start
// with: "<topic>-<partition>-"; the offset follows it.
func RecordIDPrefix(topic string, partition int32) string {
	b := make([]byte, 0, len(topic)+13)
	b = append(b, topic...)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(partition), 10)
	return string(append(b, '-'))
}

// AppendRecordID appends the RecordID of the record at topic, partition and
// offset to dst.
func AppendRecordID(dst []byte, topic string, partition int32, offset int64) []byte {
	dst = append(dst, topic...)
	dst = append(dst, '-')
	dst = strconv.AppendInt(dst, int64(partition), 10)
	dst = append(dst, '-')
	return strconv.AppendInt(dst, offset, 10)
}

// recordTime returns t, or the zero time for a record without a timestamp
// (Kafka's -1, or a client that sent 0).
func recordTime(t time.Time) time.Time {
	if t.UnixMilli() <= 0 || !plugins.ValidTime(t) {
		return time.Time{}
	}
	return t
}

// contentTypeHeader returns the value of the first "content-type" header
// (matched case-insensitively, as Kafka clients differ), trimmed.
func contentTypeHeader(hs []plugins.KafkaHeader) (string, bool) {
	for _, h := range hs {
		if len(h.Key) == len("content-type") && strings.EqualFold(h.Key, "content-type") {
			ct := strings.TrimSpace(string(h.Value))
			return ct, ct != ""
		}
	}
	return "", false
}
