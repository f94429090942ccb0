package formats

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

func TestRaw(t *testing.T) {
	ts := time.Date(2026, 3, 1, 12, 0, 0, 123e6, time.UTC)
	hdrs := []plugins.KafkaHeader{{Key: "trace", Value: []byte{0, 1, 2}}}
	tests := []struct {
		name     string
		rec      Record
		wantCT   string
		wantJSON string // substring of the encoded envelope
	}{
		{"json object", Record{Topic: "orders", Partition: 3, Offset: 17, Key: []byte("k1"), Value: []byte(`{"a":1}`), Timestamp: ts},
			"application/json", `"data":{"a":1}`},
		{"json scalar", Record{Topic: "t", Value: []byte(`42`), Timestamp: ts}, "application/json", `"data":42`},
		{"bytes", Record{Topic: "t", Value: []byte{0xff, 0x00, 'x'}, Timestamp: ts}, "application/octet-stream", `"data_base64":"/wB4"`},
		{"text that is not json", Record{Topic: "t", Value: []byte("hello")}, "application/octet-stream", `"data_base64":"aGVsbG8="`},
		{"content-type header wins", Record{Topic: "t", Value: []byte("hello"), Headers: []plugins.KafkaHeader{{Key: "Content-Type", Value: []byte("text/plain")}}},
			"text/plain", `"data":"hello"`},
		{"tombstone", Record{Topic: "t", Key: []byte("gone"), Value: nil, Timestamp: ts}, "", `"partitionkey":"gone"`},
		{"headers kept", Record{Topic: "t", Value: []byte(`{}`), Headers: hdrs}, "application/json", `"kafkaheaders":"[{\"key\":\"trace\",\"value\":\"AAEC\"}]"`},
		{"no timestamp", Record{Topic: "t", Value: []byte(`{}`), Timestamp: time.UnixMilli(-1)}, "application/json", `"kafkaoffset":0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := Raw{}.Decode(&tt.rec)
			if err != nil || len(evs) != 1 {
				t.Fatalf("Decode = %v, %v", evs, err)
			}
			ev := evs[0]
			if want := RecordID(&tt.rec); ev.ID != want {
				t.Errorf("id = %q, want %q", ev.ID, want)
			}
			if ev.Source != "kafka://"+tt.rec.Topic || ev.Type != plugins.TypeKafkaRecord {
				t.Errorf("source, type = %q, %q", ev.Source, ev.Type)
			}
			if ev.DataContentType != tt.wantCT {
				t.Errorf("datacontenttype = %q, want %q", ev.DataContentType, tt.wantCT)
			}
			if ev.KafkaTopic != tt.rec.Topic || ev.KafkaPartition != tt.rec.Partition || ev.KafkaOffset != tt.rec.Offset {
				t.Errorf("kafka* = %s/%d/%d", ev.KafkaTopic, ev.KafkaPartition, ev.KafkaOffset)
			}
			if ev.PartitionKey != string(tt.rec.Key) {
				t.Errorf("partitionkey = %q, want %q", ev.PartitionKey, tt.rec.Key)
			}
			if tt.rec.Timestamp.UnixMilli() > 0 && !ev.Time.Equal(tt.rec.Timestamp) {
				t.Errorf("time = %v, want %v", ev.Time, tt.rec.Timestamp)
			}
			if tt.rec.Timestamp.UnixMilli() <= 0 && !ev.Time.IsZero() {
				t.Errorf("time = %v, want none", ev.Time)
			}
			if !bytes.Equal(ev.Data, tt.rec.Value) || (tt.rec.Value == nil) != (ev.Data == nil) {
				t.Errorf("data = %q, want %q", ev.Data, tt.rec.Value)
			}
			enc := ev.AppendJSON(nil)
			if !json.Valid(enc) {
				t.Fatalf("envelope is not JSON: %s", enc)
			}
			if !bytes.Contains(enc, []byte(tt.wantJSON)) {
				t.Errorf("envelope %s lacks %s", enc, tt.wantJSON)
			}
			var back plugins.Event
			if err := back.UnmarshalJSON(enc); err != nil {
				t.Fatalf("envelope does not decode: %v", err)
			}
			if !bytes.Equal(back.Data, ev.Data) || back.KafkaOffset != ev.KafkaOffset || len(back.KafkaHeaders) != len(ev.KafkaHeaders) {
				t.Errorf("round trip changed the event: %+v", back)
			}
		})
	}
}

func TestRecordID(t *testing.T) {
	r := &Record{Topic: "a-b", Partition: 12, Offset: 345}
	if got := RecordID(r); got != "a-b-12-345" {
		t.Fatalf("RecordID = %q", got)
	}
	if got := RecordIDPrefix("a-b", 12) + "345"; got != RecordID(r) {
		t.Fatalf("RecordIDPrefix + offset = %q, RecordID = %q", got, RecordID(r))
	}
	if got := string(AppendRecordID([]byte("x"), "a-b", 12, 345)); got != "xa-b-12-345" {
		t.Fatalf("AppendRecordID = %q", got)
	}
	// An id the caller computed is the record's id.
	r.ID = "precomputed"
	if got := RecordID(r); got != "precomputed" {
		t.Fatalf("RecordID with Record.ID set = %q", got)
	}
}

// TestRawDecodeInto checks that DecodeInto fills an event exactly as Decode
// makes one, and marks JSON it validated.
func TestRawDecodeInto(t *testing.T) {
	ts := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name      string
		rec       Record
		validJSON bool
	}{
		{"json", Record{Topic: "t", Partition: 1, Offset: 2, Key: []byte("k"), Value: []byte(`{"a":[1,2]}`), Timestamp: ts}, true},
		{"json-looking, invalid", Record{Topic: "t", Value: []byte(`{"a":`)}, false},
		{"bytes", Record{Topic: "t", Value: []byte{0, 1, 2}}, false},
		{"typed by header", Record{Topic: "t", Value: []byte(`{}`), Headers: []plugins.KafkaHeader{{Key: "content-type", Value: []byte("application/json")}}}, false},
		{"tombstone", Record{Topic: "t", Key: []byte("k")}, false},
		{"id given", Record{Topic: "t", Offset: 9, ID: "t-0-9", Value: []byte(`1`)}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := Raw{}.Decode(&tt.rec)
			if err != nil {
				t.Fatal(err)
			}
			var ev plugins.Event
			ok, err := Raw{}.DecodeInto(&tt.rec, &ev)
			if !ok || err != nil {
				t.Fatalf("DecodeInto = %v, %v", ok, err)
			}
			if !reflect.DeepEqual(&ev, evs[0]) {
				t.Fatalf("DecodeInto made\n%+v\nDecode made\n%+v", ev, *evs[0])
			}
			if ev.DataValidJSON != tt.validJSON {
				t.Fatalf("DataValidJSON = %v, want %v", ev.DataValidJSON, tt.validJSON)
			}
		})
	}
}

func TestRawAllocs(t *testing.T) {
	r := &Record{Topic: "t", Partition: 1, Offset: 99, Key: []byte("k"), Value: []byte(`{"n":1}`), Timestamp: time.Now()}
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := (Raw{}).Decode(r); err != nil {
			t.Fatal(err)
		}
	})
	// The event with its slice, the id, the source and the key string.
	if allocs > 4 {
		t.Fatalf("Raw.Decode allocates %.0f times per record, want at most 4", allocs)
	}
}

func FuzzRaw(f *testing.F) {
	f.Add("events", int32(0), int64(0), []byte("k"), []byte(`{"a":[1,2]}`), "h", []byte("v"), int64(1700000000000))
	f.Add("t", int32(7), int64(1<<40), []byte(nil), []byte{0xff, 0xfe}, "content-type", []byte("text/plain"), int64(-1))
	f.Fuzz(func(t *testing.T, topic string, part int32, off int64, key, value []byte, hk string, hv []byte, ms int64) {
		r := &Record{Topic: topic, Partition: part, Offset: off, Key: key, Value: value,
			Headers: []plugins.KafkaHeader{{Key: hk, Value: hv}}, Timestamp: time.UnixMilli(ms)}
		evs, err := Raw{}.Decode(r)
		if err != nil || len(evs) != 1 {
			t.Fatalf("Raw failed: %v", err)
		}
		// The bulk path a trigger takes: the id computed from the
		// partition's prefix, the event filled in place.
		var into plugins.Event
		bulk := *r
		bulk.ID = RecordIDPrefix(topic, part) + strconv.FormatInt(off, 10)
		if ok, err := (Raw{}).DecodeInto(&bulk, &into); !ok || err != nil || !reflect.DeepEqual(&into, evs[0]) {
			t.Fatalf("DecodeInto = %v, %v:\n%+v\nDecode:\n%+v", ok, err, into, *evs[0])
		}
		if evs[0].DataValidJSON && !json.Valid(value) {
			t.Fatalf("%q marked valid JSON", value)
		}
		enc := evs[0].AppendJSON(nil)
		var back plugins.Event
		if err := back.UnmarshalJSON(enc); err != nil {
			t.Fatalf("Raw produced an envelope that does not decode: %v\n%s", err, enc)
		}
		// Kafka has no topic without a name; the envelope carries the
		// position with the topic, so only a named topic's comes back.
		if topic != "" && (back.KafkaOffset != off || back.KafkaPartition != part) {
			t.Fatalf("kafka position lost: %+v", back)
		}
		if topic == "" && (back.KafkaOffset != 0 || back.KafkaPartition != 0) {
			t.Fatalf("kafka position written without a topic: %+v", back)
		}
		// Anything not carried as JSON must come back byte for byte.
		jsonData := plugins.IsJSONContentType(evs[0].DataContentType) && json.Valid(value)
		if value != nil && !jsonData && !bytes.Equal(back.Data, value) {
			t.Fatalf("data changed: %q -> %q (%s)", value, back.Data, evs[0].DataContentType)
		}
	})
}
