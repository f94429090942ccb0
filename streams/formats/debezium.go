package formats

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/plugins"
)

// CDC event types, one per Debezium op. Sluice documents insert,
// update, delete and read; truncate (op "t") and message (op "m", logical decoding
// messages of PostgreSQL and Db2) are Debezium's two other ops.
const (
	TypeCDCInsert   = plugins.TypeCDCPrefix + "insert"
	TypeCDCUpdate   = plugins.TypeCDCPrefix + "update"
	TypeCDCDelete   = plugins.TypeCDCPrefix + "delete"
	TypeCDCRead     = plugins.TypeCDCPrefix + "read"
	TypeCDCTruncate = plugins.TypeCDCPrefix + "truncate"
	TypeCDCMessage  = plugins.TypeCDCPrefix + "message"
)

var cdcTypes = map[string]string{
	"c": TypeCDCInsert,
	"u": TypeCDCUpdate,
	"d": TypeCDCDelete,
	"r": TypeCDCRead,
	"t": TypeCDCTruncate,
	"m": TypeCDCMessage,
}

// Debezium is the Decoder of cdc triggers: Debezium change events in JSON,
// with or without the JsonConverter's {"schema":…,"payload":…} wrapper.
// Each record becomes one envelope:
//
//   - type: sluice.cdc.insert, .update, .delete, .read (snapshot rows),
//     .truncate or .message, from op c, u, d, r, t, m
//   - data: the change event (the payload, without the schema) as given:
//     op, before, after, source with all its fields, ts_ms, ts_us, ts_ns,
//     transaction and whatever else the connector adds
//   - subject: source db.schema.table, or db.table when the source has no
//     schema (MySQL), or db.collection (MongoDB)
//   - partitionkey: the record key (the row's primary key), schema wrapper
//     removed, as compact JSON with sorted object keys, so that equal keys
//     are equal strings; a key that is not JSON is kept as text (base64 when
//     it is not UTF-8); empty without a key
//   - source: /debezium/CONNECTOR/NAME (source.connector and source.name),
//     as Debezium's own CloudEvents converter names it
//   - id: TOPIC-PARTITION-OFFSET of the record, the id the raw decoder
//     gives it too; a record without a topic (sluice invoke) gets a hash
//     of its key and value
//   - time: when the change happened in the database (source.ts_ns, ts_us
//     or ts_ms, the most precise present), else the event's ts_ms, else
//     the record's timestamp
//   - kafkatopic, kafkapartition, kafkaoffset and the record's headers
//
// A tombstone (a nil, empty or JSON null value, or a wrapper whose payload
// is null) yields no events and no error; IsTombstone tells it apart for
// counting. Any other value that is not a change event (no op, an unknown
// op, no source object) is an error wrapping ErrMalformed, for the dead
// letter. The zero value is ready; it is safe for concurrent use.
type Debezium struct{}

var _ Decoder = Debezium{}

// IsTombstone reports whether the Debezium decoder skips r as a tombstone:
// its value is nil, empty, JSON null, or a schema wrapper whose payload is
// null. Kafka triggers call it when Decode returns no events, to count
// sluice_cdc_tombstones_total.
func IsTombstone(r *Record) bool {
	v := bytes.TrimSpace(r.Value)
	if len(v) == 0 || string(v) == "null" {
		return true
	}
	if v[0] != '{' {
		return false
	}
	// Keys match exactly, as Decode reads them: a struct would take
	// "PAYLOAD" for "payload" (encoding/json folds case), which Decode
	// does not.
	var top map[string]json.RawMessage
	if json.Unmarshal(v, &top) != nil || top["op"] != nil {
		return false
	}
	// A present null decodes into a RawMessage as "null", an absent key as
	// nil: only the wrapper's null payload is a tombstone.
	return string(top["payload"]) == "null"
}

func cdcErr(path, format string, args ...any) error {
	return &DecodeError{Format: "debezium", Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Decode implements Decoder.
func (Debezium) Decode(r *Record) ([]*plugins.Event, error) {
	v := bytes.TrimSpace(r.Value)
	if len(v) == 0 || string(v) == "null" {
		return nil, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(v, &top); err != nil {
		if json.Valid(v) {
			return nil, cdcErr("", "not a Debezium change event: the value is not a JSON object")
		}
		return nil, cdcErr("", "not JSON: %v", err)
	}
	if top == nil {
		return nil, nil
	}
	payload, prefix := v, ""
	if p, ok := top["payload"]; ok && top["op"] == nil {
		// The JsonConverter's wrapper: {"schema": …, "payload": …}.
		if string(p) == "null" {
			return nil, nil
		}
		var inner map[string]json.RawMessage
		if err := json.Unmarshal(p, &inner); err != nil || inner == nil {
			return nil, cdcErr("payload", "not a Debezium change event: want an object")
		}
		top, payload, prefix = inner, p, "payload."
	}
	rawOp, ok := top["op"]
	if !ok {
		return nil, cdcErr("", `not a Debezium change event: no "op" (a heartbeat, schema change or transaction record?)`)
	}
	var op string
	if json.Unmarshal(rawOp, &op) != nil {
		return nil, cdcErr(prefix+"op", "want a string")
	}
	typ, ok := cdcTypes[op]
	if !ok {
		return nil, cdcErr(prefix+"op", "%q is not a Debezium op (c, u, d, r, t, m)", op)
	}
	var src map[string]json.RawMessage
	if rawSrc, ok := top["source"]; !ok || json.Unmarshal(rawSrc, &src) != nil || src == nil {
		return nil, cdcErr(prefix+"source", "want an object")
	}
	for _, k := range []string{"before", "after"} {
		if b, ok := top[k]; ok && len(b) > 0 && b[0] != '{' && b[0] != '"' && string(b) != "null" {
			return nil, cdcErr(prefix+k, "want an object, a string or null")
		}
	}
	s := func(k string) string {
		var x string
		_ = json.Unmarshal(src[k], &x) // not a string: treated as absent
		return x
	}
	table := s("table")
	if table == "" {
		table = s("collection")
	}
	var parts []string
	for _, p := range []string{s("db"), s("schema"), table} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	source := "/debezium"
	if c, n := s("connector"), s("name"); c != "" || n != "" {
		source += "/" + c + "/" + n
	}
	var data bytes.Buffer
	if err := json.Compact(&data, payload); err != nil {
		return nil, cdcErr("", "not JSON: %v", err)
	}
	ev := &plugins.Event{
		Source:          source,
		Type:            typ,
		Time:            cdcTime(src, top, r.Timestamp),
		Subject:         strings.Join(parts, "."),
		DataContentType: "application/json",
		DataValidJSON:   true, // built by encoding/json or a fuzzed encoder here
		Data:            data.Bytes(),
		PartitionKey:    canonicalKey(r.Key),
	}
	if r.Topic != "" {
		ev.ID = r.Topic + "-" + strconv.FormatInt(int64(r.Partition), 10) + "-" + strconv.FormatInt(r.Offset, 10)
		setKafka(ev, r)
	} else {
		ev.ID = hashID(string(r.Key), string(v))
	}
	return []*plugins.Event{ev}, nil
}

// cdcTime picks the most precise timestamp of the change that is a
// usable time (a positive number within RFC 3339's years).
func cdcTime(src, top map[string]json.RawMessage, fallback time.Time) time.Time {
	nanos := func(n int64) time.Time { return time.Unix(0, n) }
	for _, c := range []struct {
		m    map[string]json.RawMessage
		key  string
		unix func(int64) time.Time
	}{{src, "ts_ns", nanos}, {src, "ts_us", time.UnixMicro}, {src, "ts_ms", time.UnixMilli}, {top, "ts_ms", time.UnixMilli}} {
		n, err := strconv.ParseInt(string(c.m[c.key]), 10, 64)
		if err != nil || n <= 0 {
			continue
		}
		if t := c.unix(n).UTC(); plugins.ValidTime(t) {
			return t
		}
	}
	return recordTime(fallback)
}

// canonicalKey renders a Debezium record key as the partition key.
func canonicalKey(key []byte) string {
	k := bytes.TrimSpace(key)
	if len(k) == 0 {
		return ""
	}
	var v any
	if decodeJSON(k, &v) != nil {
		if utf8.Valid(key) {
			return string(key)
		}
		return base64.StdEncoding.EncodeToString(key)
	}
	if m, ok := v.(map[string]any); ok {
		if p, ok := m["payload"]; ok && len(m) <= 2 {
			if _, hasSchema := m["schema"]; hasSchema || len(m) == 1 {
				v = p
			}
		}
	}
	if v == nil {
		return ""
	}
	b, err := marshalJSON(v) // maps encode with sorted keys
	if err != nil {
		return string(key)
	}
	return string(b)
}
