package formats

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/sluicehq/sluice/plugins"
)

func hdr(kv ...string) []plugins.KafkaHeader {
	var hs []plugins.KafkaHeader
	for i := 0; i+1 < len(kv); i += 2 {
		hs = append(hs, plugins.KafkaHeader{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return hs
}

func TestCloudEventsBinary(t *testing.T) {
	r := &Record{
		Topic: "orders", Partition: 2, Offset: 41, Key: []byte("cust-7"), Value: []byte(`{"total":12.5}`),
		Headers: hdr("ce_specversion", "1.0", "ce_id", "A-1", "ce_source", "/shop", "ce_type", "com.shop.order",
			"ce_time", "2026-01-02T03:04:05.5Z", "ce_subject", "o/1", "ce_traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
			"ce_tenant", "acme", "content-type", "application/json", "x-other", "kept"),
	}
	evs, err := CloudEvents{}.Decode(r)
	if err != nil {
		t.Fatal(err)
	}
	ev := evs[0]
	want := plugins.Event{ID: "A-1", Source: "/shop", Type: "com.shop.order", Subject: "o/1", DataContentType: "application/json",
		PartitionKey: "cust-7", KafkaTopic: "orders", KafkaPartition: 2, KafkaOffset: 41}
	if ev.ID != want.ID || ev.Source != want.Source || ev.Type != want.Type || ev.Subject != want.Subject ||
		ev.DataContentType != want.DataContentType || ev.PartitionKey != want.PartitionKey ||
		ev.KafkaTopic != want.KafkaTopic || ev.KafkaPartition != want.KafkaPartition || ev.KafkaOffset != want.KafkaOffset {
		t.Errorf("event = %+v", ev)
	}
	if !ev.Time.Equal(time.Date(2026, 1, 2, 3, 4, 5, 5e8, time.UTC)) {
		t.Errorf("time = %v", ev.Time)
	}
	if ev.Extensions["tenant"] != "acme" || ev.TraceParent == "" {
		t.Errorf("extensions = %v, traceparent %q", ev.Extensions, ev.TraceParent)
	}
	if len(ev.KafkaHeaders) != 1 || ev.KafkaHeaders[0].Key != "x-other" {
		t.Errorf("kafka headers = %v", ev.KafkaHeaders)
	}
	if string(ev.Data) != `{"total":12.5}` {
		t.Errorf("data = %s", ev.Data)
	}
}

func TestCloudEventsStructuredFromSDK(t *testing.T) {
	// The reference SDK writes the structured-mode value.
	ce := cloudevents.NewEvent()
	ce.SetID("evt-9")
	ce.SetSource("urn:test")
	ce.SetType("com.example.thing")
	ce.SetSubject("things/9")
	ce.SetTime(time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC))
	ce.SetExtension("partitionkey", "pk-1")
	ce.SetExtension("kafkatopic", "liar") // the record's topic must win
	ce.SetExtension("region", "eu")
	if err := ce.SetData("application/json", map[string]any{"n": 1}); err != nil {
		t.Fatal(err)
	}
	value, err := json.Marshal(ce)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		headers []plugins.KafkaHeader
	}{
		{"with content-type", hdr("content-type", "application/cloudevents+json; charset=UTF-8", "h", "v")},
		{"without headers", hdr("h", "v")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Record{Topic: "jobs", Partition: 1, Offset: 5, Key: []byte("other"), Value: value, Headers: tc.headers}
			evs, err := CloudEvents{}.Decode(r)
			if err != nil {
				t.Fatal(err)
			}
			ev := evs[0]
			if ev.ID != "evt-9" || ev.Source != "urn:test" || ev.Type != "com.example.thing" || ev.Subject != "things/9" {
				t.Errorf("attributes = %+v", ev)
			}
			if ev.PartitionKey != "pk-1" {
				t.Errorf("partitionkey = %q, want the event's own", ev.PartitionKey)
			}
			if ev.KafkaTopic != "jobs" || ev.KafkaPartition != 1 || ev.KafkaOffset != 5 {
				t.Errorf("kafka* = %s/%d/%d", ev.KafkaTopic, ev.KafkaPartition, ev.KafkaOffset)
			}
			if ev.Extensions["region"] != "eu" || string(ev.Data) != `{"n":1}` {
				t.Errorf("extensions %v data %s", ev.Extensions, ev.Data)
			}
			if len(ev.KafkaHeaders) != 1 || ev.KafkaHeaders[0].Key != "h" {
				t.Errorf("kafka headers = %v", ev.KafkaHeaders)
			}
			// And the SDK reads back what we encode.
			var back cloudevents.Event
			if err := json.Unmarshal(ev.AppendJSON(nil), &back); err != nil {
				t.Fatalf("SDK cannot read our envelope: %v", err)
			}
			if back.ID() != "evt-9" || back.Extensions()["kafkaoffset"] == nil {
				t.Errorf("SDK read %v", back)
			}
		})
	}
}

func TestCloudEventsErrors(t *testing.T) {
	tests := []struct {
		name string
		rec  Record
		want string
	}{
		{"plain value", Record{Value: []byte("hello")}, "no ce_ headers"},
		{"plain json", Record{Value: []byte(`{"a":1}`)}, "no ce_ headers"},
		{"structured garbage", Record{Value: []byte("{"), Headers: hdr("content-type", CloudEventsContentType)}, "structured mode"},
		{"structured missing id", Record{Value: []byte(`{"specversion":"1.0","source":"s","type":"t"}`)}, "id"},
		{"batch", Record{Value: []byte(`[]`), Headers: hdr("content-type", "application/cloudevents-batch+json")}, "batched"},
		{"binary wrong version", Record{Headers: hdr("ce_specversion", "0.3", "ce_id", "1", "ce_source", "s", "ce_type", "t")}, "specversion"},
		{"binary missing type", Record{Headers: hdr("ce_specversion", "1.0", "ce_id", "1", "ce_source", "s")}, "ce_type"},
		{"binary bad time", Record{Headers: hdr("ce_specversion", "1.0", "ce_id", "1", "ce_source", "s", "ce_type", "t", "ce_time", "yesterday")}, "RFC 3339"},
		{"binary bad name", Record{Headers: hdr("ce_specversion", "1.0", "ce_id", "1", "ce_source", "s", "ce_type", "t", "ce_Bad-Name", "x")}, "lowercase"},
		{"binary duplicate", Record{Headers: hdr("ce_specversion", "1.0", "ce_id", "1", "ce_id", "2", "ce_source", "s", "ce_type", "t")}, "twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := CloudEvents{}.Decode(&tt.rec)
			if err == nil {
				t.Fatalf("Decode = %+v, want an error", evs[0])
			}
			if !errors.Is(err, ErrNotCloudEvent) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want ErrNotCloudEvent mentioning %q", err, tt.want)
			}
		})
	}
}

func FuzzCloudEvents(f *testing.F) {
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"s","type":"t","data":{"x":1}}`), "content-type", "application/cloudevents+json", "ce_x", "")
	f.Add([]byte("payload"), "ce_specversion", "1.0", "ce_id", "7")
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"AA=="}`), "", "", "", "")
	f.Fuzz(func(t *testing.T, value []byte, k1, v1, k2, v2 string) {
		hs := []plugins.KafkaHeader{{Key: k1, Value: []byte(v1)}, {Key: k2, Value: []byte(v2)},
			{Key: "ce_source", Value: []byte("s")}, {Key: "ce_type", Value: []byte("t")}}
		r := &Record{Topic: "t", Partition: 1, Offset: 2, Key: []byte("k"), Value: value, Headers: hs}
		evs, err := CloudEvents{}.Decode(r)
		if err != nil {
			if !errors.Is(err, ErrNotCloudEvent) {
				t.Fatalf("error does not wrap ErrNotCloudEvent: %v", err)
			}
			return
		}
		ev := evs[0]
		if ev.ID == "" || ev.Source == "" || ev.Type == "" {
			t.Fatalf("decoded an event without required attributes: %+v", ev)
		}
		if ev.KafkaOffset != 2 || ev.KafkaTopic != "t" {
			t.Fatalf("record position lost: %+v", ev)
		}
		enc := ev.AppendJSON(nil)
		var back plugins.Event
		if err := back.UnmarshalJSON(enc); err != nil {
			t.Fatalf("decoded event does not re-encode to a CloudEvent: %v\n%s", err, enc)
		}
	})
}

// TestCloudEventsStructuredTraceparentHeader: a traceparent header that
// copies the event's own is not kept as a header; any other is.
func TestCloudEventsStructuredTraceparentHeader(t *testing.T) {
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	value := []byte(`{"specversion":"1.0","id":"1","source":"s","type":"t","traceparent":"` + tp + `"}`)
	for _, tc := range []struct {
		name    string
		headers []plugins.KafkaHeader
		kept    int
	}{
		{"copy of the event's", hdr("content-type", "application/cloudevents+json", "traceparent", tp), 0},
		{"another trace", hdr("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := CloudEvents{}.Decode(&Record{Topic: "jobs", Value: value, Headers: tc.headers})
			if err != nil {
				t.Fatal(err)
			}
			if evs[0].TraceParent != tp || len(evs[0].KafkaHeaders) != tc.kept {
				t.Errorf("traceparent %q, headers %v", evs[0].TraceParent, evs[0].KafkaHeaders)
			}
		})
	}
}
