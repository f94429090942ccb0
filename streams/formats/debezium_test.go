package formats

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

// loadRecord reads a testdata record file: {"topic", "partition",
// "offset", "key", "value"} with the key and value as JSON (null: none).
func loadRecord(t testing.TB, file string) *Record {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Topic     string          `json:"topic"`
		Partition int32           `json:"partition"`
		Offset    int64           `json:"offset"`
		Key       json.RawMessage `json:"key"`
		Value     json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	r := &Record{Topic: f.Topic, Partition: f.Partition, Offset: f.Offset,
		Timestamp: time.Date(2024, 7, 14, 10, 0, 0, 0, time.UTC)}
	if string(f.Key) != "null" {
		r.Key = f.Key
	}
	if string(f.Value) != "null" {
		r.Value = f.Value
	}
	return r
}

func TestDebeziumSamples(t *testing.T) {
	t.Parallel()
	type want struct {
		typ, subject, key string // "" type: a tombstone
		op                string
	}
	wants := map[string]want{
		"pg-insert-with-schema.json":              {TypeCDCInsert, "postgres.inventory.customers", `{"id":1005}`, "c"},
		"pg-update.json":                          {TypeCDCUpdate, "postgres.inventory.customers", `{"id":1004}`, "u"},
		"pg-update-default-replica-identity.json": {TypeCDCUpdate, "postgres.inventory.customers", `{"id":1004}`, "u"},
		"pg-delete.json":                          {TypeCDCDelete, "postgres.inventory.customers", `{"id":1005}`, "d"},
		"pg-tombstone.json":                       {},
		"pg-snapshot-read.json":                   {TypeCDCRead, "postgres.inventory.customers", `{"id":1001}`, "r"},
		"pg-truncate.json":                        {TypeCDCTruncate, "postgres.inventory.customers", "", "t"},
		"pg-message.json":                         {TypeCDCMessage, "postgres", `{"prefix":"audit"}`, "m"},
		"mysql-insert-with-schema.json":           {TypeCDCInsert, "inventory.customers", `{"id":1005}`, "c"},
		"mysql-update.json":                       {TypeCDCUpdate, "inventory.customers", `{"id":1004}`, "u"},
		"mysql-delete-with-schema.json":           {TypeCDCDelete, "inventory.customers", `{"id":1004}`, "d"},
		"mysql-tombstone-with-schema.json":        {},
		"mysql-snapshot-read.json":                {TypeCDCRead, "inventory.customers", `{"id":1001}`, "r"},
		"mysql-snapshot-read-last.json":           {TypeCDCRead, "inventory.customers", `{"id":1004}`, "r"},
		"mysql-truncate.json":                     {TypeCDCTruncate, "inventory.customers", "", "t"},
	}
	for _, file := range samples(t, "debezium") {
		name := file[len("testdata/debezium/"):]
		t.Run(name, func(t *testing.T) {
			w, ok := wants[name]
			if !ok {
				t.Fatalf("no expectations for %s", name)
			}
			r := loadRecord(t, file)
			evs, err := Debezium{}.Decode(r)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got := IsTombstone(r); got != (w.typ == "") {
				t.Errorf("IsTombstone = %v", got)
			}
			if w.typ == "" {
				if len(evs) != 0 {
					t.Fatalf("a tombstone gave %d events", len(evs))
				}
				return
			}
			if len(evs) != 1 {
				t.Fatalf("%d events, want 1", len(evs))
			}
			ev := evs[0]
			assertSDKValid(t, ev)
			if ev.Type != w.typ || ev.Subject != w.subject || ev.PartitionKey != w.key {
				t.Errorf("type %q subject %q partitionkey %q, want %q %q %q", ev.Type, ev.Subject, ev.PartitionKey, w.typ, w.subject, w.key)
			}
			if ev.KafkaTopic != r.Topic || ev.KafkaPartition != r.Partition || ev.KafkaOffset != r.Offset {
				t.Errorf("kafka extensions %s/%d/%d", ev.KafkaTopic, ev.KafkaPartition, ev.KafkaOffset)
			}
			var data map[string]json.RawMessage
			if err := json.Unmarshal(ev.Data, &data); err != nil {
				t.Fatal(err)
			}
			if _, wrapped := data["schema"]; wrapped {
				t.Errorf("data kept the schema wrapper")
			}
			if string(data["op"]) != `"`+w.op+`"` {
				t.Errorf("data op %s, want %q", data["op"], w.op)
			}
			// Everything of the change event is kept, byte for byte up to
			// whitespace.
			var orig struct {
				Payload json.RawMessage `json:"payload"`
			}
			payload := r.Value
			if json.Unmarshal(r.Value, &orig) == nil && orig.Payload != nil {
				payload = orig.Payload
			}
			if !bytes.Equal(compact(t, payload), ev.Data) {
				t.Errorf("data is not the change event as given:\n%s\n%s", ev.Data, compact(t, payload))
			}
			goldenEvents(t, strings.TrimSuffix(file, ".json")+".golden", evs)
		})
	}
}

func TestDebeziumTime(t *testing.T) {
	t.Parallel()
	fallback := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		value string
		want  time.Time
	}{
		{`{"op":"c","source":{"ts_ms":1720950000123,"ts_us":1720950000123456,"ts_ns":1720950000123456789},"ts_ms":1}`, time.Unix(0, 1720950000123456789).UTC()},
		{`{"op":"c","source":{"ts_ms":1720950000123,"ts_us":1720950000123456},"ts_ms":1}`, time.UnixMicro(1720950000123456).UTC()},
		{`{"op":"c","source":{"ts_ms":1720950000123},"ts_ms":1}`, time.UnixMilli(1720950000123).UTC()},
		{`{"op":"c","source":{},"ts_ms":1720950000999}`, time.UnixMilli(1720950000999).UTC()},
		{`{"op":"c","source":{"ts_ms":"soon"}}`, fallback},
		// Year 24152: a valid number of milliseconds that RFC 3339 cannot
		// write; the next candidate is used.
		{`{"op":"c","source":{"ts_ms":700000000000000},"ts_ms":1720950000999}`, time.UnixMilli(1720950000999).UTC()},
		{`{"op":"c","source":{"ts_us":-5,"ts_ms":700000000000000}}`, fallback},
	}
	for _, tt := range tests {
		evs, err := Debezium{}.Decode(&Record{Value: []byte(tt.value), Timestamp: fallback})
		if err != nil {
			t.Fatal(err)
		}
		if !evs[0].Time.Equal(tt.want) {
			t.Errorf("%s: time %v, want %v", tt.value, evs[0].Time, tt.want)
		}
	}
	// A record timestamp out of range too: no time at all, and the
	// envelope still parses.
	evs, err := Debezium{}.Decode(&Record{Value: []byte(`{"op":"c","source":{"ts_ms":700000000000000}}`), Timestamp: time.UnixMilli(700000000000000)})
	if err != nil {
		t.Fatal(err)
	}
	if !evs[0].Time.IsZero() {
		t.Errorf("time %v, want none", evs[0].Time)
	}
	checkEnvelope(t, evs[0])
}

func TestDebeziumKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key  []byte
		want string
	}{
		{nil, ""},
		{[]byte(`{"id":1}`), `{"id":1}`},
		{[]byte(` {"b": 2, "a": "x&y"} `), `{"a":"x&y","b":2}`},
		{[]byte(`{"schema":{"type":"struct"},"payload":{"order_id":7,"line":2}}`), `{"line":2,"order_id":7}`},
		{[]byte(`{"schema":null,"payload":null}`), ""},
		{[]byte(`{"id":12345678901234567890}`), `{"id":12345678901234567890}`},
		{[]byte(`Struct{id=1001}`), "Struct{id=1001}"},
		{[]byte{0xff, 0x01}, "/wE="},
		{[]byte(`"plain"`), `"plain"`},
	}
	for _, tt := range tests {
		if got := canonicalKey(tt.key); got != tt.want {
			t.Errorf("canonicalKey(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestDebeziumErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, value, want string
	}{
		{"not json", `{"op": "c",`, "formats: debezium: not JSON"},
		{"not an object", `[1, 2]`, "the value is not a JSON object"},
		{"heartbeat", `{"ts_ms": 1720950000123}`, `no "op"`},
		{"schema change", `{"source":{"server":"dbserver1"},"databaseName":"inventory","ddl":"CREATE TABLE t (id INT)","tableChanges":[]}`, `no "op"`},
		{"unknown op", `{"op": "x", "source": {}}`, `op: "x" is not a Debezium op`},
		{"op not string", `{"op": 1, "source": {}}`, "op: want a string"},
		{"no source", `{"op": "c", "after": {"id": 1}}`, "source: want an object"},
		{"source not object", `{"op": "c", "source": "pg"}`, "source: want an object"},
		{"after not object", `{"op": "c", "source": {}, "after": 5}`, "after: want an object, a string or null"},
		{"wrapper payload not object", `{"schema": {}, "payload": [1]}`, "payload: not a Debezium change event"},
		{"wrapped unknown op", `{"schema": {}, "payload": {"op": "z", "source": {}}}`, `payload.op: "z" is not a Debezium op`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Record{Topic: "t", Value: []byte(tt.value)}
			evs, err := Debezium{}.Decode(r)
			if err == nil {
				t.Fatalf("no error; %d events", len(evs))
			}
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want ErrMalformed containing %q", err, tt.want)
			}
			if IsTombstone(r) {
				t.Errorf("IsTombstone is true for a poison record")
			}
		})
	}
}

func TestDebeziumTombstones(t *testing.T) {
	t.Parallel()
	for _, v := range [][]byte{nil, {}, []byte("  "), []byte("null"), []byte(`{"schema":null,"payload":null}`), []byte(`{"payload":null}`)} {
		r := &Record{Topic: "t", Key: []byte(`{"id":1}`), Value: v}
		evs, err := Debezium{}.Decode(r)
		if err != nil || len(evs) != 0 || !IsTombstone(r) {
			t.Errorf("value %q: %d events, %v, IsTombstone %v; want a counted skip", v, len(evs), err, IsTombstone(r))
		}
	}
	// Keys match exactly: a "PAYLOAD" member is not the wrapper's payload,
	// so the record is malformed (no "op"), not a tombstone.
	for _, v := range [][]byte{[]byte(`{"pAYloAD":null}`), []byte(`{"Payload":null,"schema":{}}`)} {
		r := &Record{Topic: "t", Value: v}
		evs, err := Debezium{}.Decode(r)
		if !errors.Is(err, ErrMalformed) || len(evs) != 0 || IsTombstone(r) {
			t.Errorf("value %q: %d events, %v, IsTombstone %v; want ErrMalformed and no tombstone", v, len(evs), err, IsTombstone(r))
		}
	}
}

func TestDebeziumIDWithoutTopic(t *testing.T) {
	t.Parallel()
	r := &Record{Key: []byte(`{"id":1}`), Value: []byte(`{"op":"c","source":{"connector":"mysql","name":"db1","db":"shop","table":"orders"},"after":{"id":1}}`)}
	a, err := Debezium{}.Decode(r)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Debezium{}.Decode(r)
	if a[0].ID == "" || a[0].ID != b[0].ID || a[0].KafkaTopic != "" {
		t.Errorf("id %q then %q, kafkatopic %q", a[0].ID, b[0].ID, a[0].KafkaTopic)
	}
	if a[0].Source != "/debezium/mysql/db1" || a[0].Subject != "shop.orders" {
		t.Errorf("source %q subject %q", a[0].Source, a[0].Subject)
	}
	assertSDKValid(t, a[0])
}

func FuzzDebezium(f *testing.F) {
	f.Add([]byte(`{"id":1}`), []byte(`{"op":"c","source":{"db":"d","table":"t","ts_ms":1},"after":{"id":1}}`))
	f.Add([]byte(nil), []byte(`{"schema":{},"payload":{"op":"t","source":{}}}`))
	f.Add([]byte(`k`), []byte(`{"schema":null,"payload":null}`))
	f.Fuzz(func(t *testing.T, key, value []byte) {
		r := &Record{Topic: "cdc", Partition: 1, Offset: 9, Key: key, Value: value}
		evs, err := Debezium{}.Decode(r)
		tomb := IsTombstone(r)
		switch {
		case err != nil:
			if evs != nil || !errors.Is(err, ErrMalformed) || tomb {
				t.Fatalf("error %v with %d events (tombstone %v), or not ErrMalformed", err, len(evs), tomb)
			}
		case len(evs) == 0:
			if !tomb {
				t.Fatalf("skipped %q without IsTombstone", value)
			}
		default:
			if tomb || len(evs) != 1 {
				t.Fatalf("%d events for a tombstone %v", len(evs), tomb)
			}
			checkEnvelope(t, evs[0])
			if !strings.HasPrefix(evs[0].Type, plugins.TypeCDCPrefix) || !json.Valid(evs[0].Data) {
				t.Fatalf("bad envelope %+v", evs[0])
			}
		}
	})
}
