package formats

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

// stubKafka stands in for the Kafka triggers' decoders, which other
// packages' tests cover: it checks the record Normalize builds.
type stubKafka struct{}

func (s stubKafka) Decode(r *Record) ([]*plugins.Event, error) {
	return []*plugins.Event{{ID: r.Topic, Source: "stub", Type: plugins.TypeKafkaRecord, Data: r.Value,
		PartitionKey: string(r.Key), KafkaTopic: r.Topic, KafkaOffset: r.Offset, Time: r.Timestamp}}, nil
}

func TestNormalize(t *testing.T) {
	t.Parallel()
	s3body, err := os.ReadFile("testdata/s3/s3-put-encoded-key.json")
	if err != nil {
		t.Fatal(err)
	}
	hook, err := DecodeStorageNotification(s3body)
	if err != nil {
		t.Fatal(err)
	}
	cdc := loadRecord(t, "testdata/debezium/pg-insert-with-schema.json")
	trigger, err := Debezium{}.Decode(cdc)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2024, 7, 14, 10, 0, 0, 0, time.UTC)

	t.Run("storage as the webhook", func(t *testing.T) {
		evs, err := Normalize("storage", s3body, NormalizeOptions{})
		if err != nil || len(evs) != 1 || string(evs[0].Data) != string(hook[0].Data) || evs[0].ID != hook[0].ID {
			t.Fatalf("Normalize storage = %v, %v", evs, err)
		}
	})
	t.Run("storage bare record", func(t *testing.T) {
		s := string(s3body)
		bare := s[strings.Index(s, "[")+1 : strings.LastIndex(s, "]")]
		evs, err := Normalize("storage", []byte(bare), NormalizeOptions{})
		if err != nil || len(evs) != 1 || evs[0].ID != hook[0].ID {
			t.Fatalf("Normalize storage of one record = %v, %v", evs, err)
		}
	})
	t.Run("storage test event", func(t *testing.T) {
		evs, err := Normalize("storage", []byte(`{"Service":"Amazon S3","Event":"s3:TestEvent"}`), NormalizeOptions{})
		if err != nil || len(evs) != 0 {
			t.Fatalf("Normalize test event = %v, %v", evs, err)
		}
	})
	t.Run("cdc as the trigger", func(t *testing.T) {
		evs, err := Normalize("cdc", cdc.Value, NormalizeOptions{Topic: cdc.Topic, Offset: cdc.Offset, Key: cdc.Key})
		if err != nil || len(evs) != 1 {
			t.Fatalf("Normalize cdc = %v, %v", evs, err)
		}
		got, want := evs[0], trigger[0]
		if got.ID != want.ID || got.Type != want.Type || got.Subject != want.Subject || got.PartitionKey != want.PartitionKey ||
			string(got.Data) != string(want.Data) || !got.Time.Equal(want.Time) {
			t.Errorf("Normalize cdc = %+v, want %+v", got, want)
		}
	})
	t.Run("cdc without a topic", func(t *testing.T) {
		evs, err := Normalize("cdc", cdc.Value, NormalizeOptions{})
		if err != nil || len(evs) != 1 || evs[0].KafkaTopic != "" || evs[0].ID == "" {
			t.Fatalf("Normalize cdc = %+v, %v", evs, err)
		}
		assertSDKValid(t, evs[0])
	})
	t.Run("cdc tombstone", func(t *testing.T) {
		evs, err := Normalize("cdc", []byte("null"), NormalizeOptions{})
		if err != nil || len(evs) != 0 {
			t.Fatalf("Normalize tombstone = %v, %v", evs, err)
		}
	})
	t.Run("schedule", func(t *testing.T) {
		evs, err := Normalize("schedule", []byte(`{"job":"cleanup"}`), NormalizeOptions{Schedule: "nightly", Time: at})
		want, _ := ScheduleTick("nightly", at, []byte(`{"job":"cleanup"}`))
		if err != nil || len(evs) != 1 || evs[0].ID != want.ID || string(evs[0].Data) != string(want.Data) {
			t.Fatalf("Normalize schedule = %v, %v", evs, err)
		}
	})
	t.Run("schedule defaults", func(t *testing.T) {
		before := time.Now().Truncate(time.Second)
		evs, err := Normalize("schedule", nil, NormalizeOptions{})
		if err != nil || len(evs) != 1 || evs[0].Subject != "invoke" || evs[0].Time.Before(before) || evs[0].Time.Nanosecond() != 0 {
			t.Fatalf("Normalize schedule = %+v, %v", evs, err)
		}
	})
	t.Run("kafka through the trigger's decoder", func(t *testing.T) {
		evs, err := Normalize("kafka", []byte(`{"order":1}`), NormalizeOptions{Topic: "orders", Offset: 4, Key: []byte("k1"), Time: at, Kafka: stubKafka{}})
		if err != nil || len(evs) != 1 || evs[0].KafkaTopic != "orders" || evs[0].KafkaOffset != 4 || evs[0].PartitionKey != "k1" ||
			string(evs[0].Data) != `{"order":1}` || !evs[0].Time.Equal(at) {
			t.Fatalf("Normalize kafka = %+v, %v", evs, err)
		}
		if _, err := Normalize("kafka", []byte(`{}`), NormalizeOptions{}); err == nil {
			t.Fatal("Normalize kafka without a decoder succeeded")
		}
	})
	t.Run("errors", func(t *testing.T) {
		if _, err := Normalize("storage", []byte(`{"Records":[{}]}`), NormalizeOptions{}); !errors.Is(err, ErrMalformed) {
			t.Errorf("bad storage: %v", err)
		}
		if _, err := Normalize("cdc", []byte(`{"ts_ms":1}`), NormalizeOptions{}); !errors.Is(err, ErrMalformed) {
			t.Errorf("bad cdc: %v", err)
		}
		if _, err := Normalize("schedule", []byte(`{`), NormalizeOptions{}); !errors.Is(err, ErrMalformed) {
			t.Errorf("bad schedule: %v", err)
		}
		if _, err := Normalize("ftp", nil, NormalizeOptions{}); !errors.Is(err, ErrUnknownSource) {
			t.Errorf("unknown source: %v", err)
		}
	})
}
