package formats

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/plugins"
)

func TestDecodeStorageNotificationSamples(t *testing.T) {
	t.Parallel()
	type want struct {
		types   []string
		subject string // of the first event
		key     string // s3.object.key of the first event's data
	}
	wants := map[string]want{
		"s3-put-encoded-key.json":       {[]string{plugins.TypeStorageCreated}, "amzn-s3-demo-bucket/photos/my summer(2024).jpg", "photos/my summer(2024).jpg"},
		"s3-multipart-unicode-key.json": {[]string{plugins.TypeStorageCreated}, "media-archive/videos/Straße & Café/clip+1.mp4", "videos/Straße & Café/clip+1.mp4"},
		"s3-delete-objects.json":        {[]string{plugins.TypeStorageRemoved, plugins.TypeStorageRemoved}, "amzn-s3-demo-bucket/photos/a.jpg", "photos/a.jpg"},
		"s3-delete-marker.json":         {[]string{plugins.TypeStorageRemoved}, "versioned-bucket/reports/2024/q2.pdf", "reports/2024/q2.pdf"},
		"s3-lifecycle-expiration.json":  {[]string{plugins.TypeStorageRemoved}, "scratch/tmp/upload-7f3a.part", "tmp/upload-7f3a.part"},
		"s3-restore-completed.json":     {[]string{TypeStorageRestored}, "cold-storage/backups/db-2023-12-31.tar.gz", "backups/db-2023-12-31.tar.gz"},
		"s3-test-event.json":            {nil, "", ""},
		"minio-put.json":                {[]string{plugins.TypeStorageCreated}, "images/holiday photos/beach & sun.jpg", "holiday photos/beach & sun.jpg"},
		"minio-delete.json":             {[]string{plugins.TypeStorageRemoved}, "images/old.png", "old.png"},
	}
	for _, file := range samples(t, "s3") {
		name := file[len("testdata/s3/"):]
		t.Run(name, func(t *testing.T) {
			w, ok := wants[name]
			if !ok {
				t.Fatalf("no expectations for %s", name)
			}
			body, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := DecodeStorageNotification(body)
			if err != nil {
				t.Fatalf("DecodeStorageNotification: %v", err)
			}
			if len(evs) != len(w.types) {
				t.Fatalf("%d events, want %d", len(evs), len(w.types))
			}
			ids := map[string]bool{}
			for i, ev := range evs {
				assertSDKValid(t, ev)
				if ev.Type != w.types[i] {
					t.Errorf("event %d: type %q, want %q", i, ev.Type, w.types[i])
				}
				if ev.PartitionKey != ev.Subject {
					t.Errorf("event %d: partitionkey %q, want the subject %q", i, ev.PartitionKey, ev.Subject)
				}
				if ids[ev.ID] {
					t.Errorf("event %d: id %s repeats", i, ev.ID)
				}
				ids[ev.ID] = true
			}
			if len(evs) > 0 {
				if evs[0].Subject != w.subject {
					t.Errorf("subject %q, want %q", evs[0].Subject, w.subject)
				}
				var rec struct {
					EventName string `json:"eventName"`
					S3        struct {
						Object struct {
							Key       string `json:"key"`
							Sequencer string `json:"sequencer"`
						} `json:"object"`
					} `json:"s3"`
				}
				if err := json.Unmarshal(evs[0].Data, &rec); err != nil {
					t.Fatal(err)
				}
				if rec.S3.Object.Key != w.key {
					t.Errorf("data s3.object.key %q, want %q", rec.S3.Object.Key, w.key)
				}
				if !strings.Contains(string(body), `"`+rec.EventName+`"`) || rec.EventName == "" {
					t.Errorf("eventName %q not kept as given", rec.EventName)
				}
				if rec.S3.Object.Sequencer != "" && !strings.Contains(string(body), rec.S3.Object.Sequencer) {
					t.Errorf("sequencer %q not kept", rec.S3.Object.Sequencer)
				}
			}
			again, _ := DecodeStorageNotification(body)
			for i := range again {
				if again[i].ID != evs[i].ID {
					t.Errorf("event %d: id not stable: %s then %s", i, evs[i].ID, again[i].ID)
				}
			}
			goldenEvents(t, strings.TrimSuffix(file, ".json")+".golden", evs)
		})
	}
}

func TestDecodeStorageNotificationErrors(t *testing.T) {
	t.Parallel()
	good, err := os.ReadFile("testdata/s3/s3-put-encoded-key.json")
	if err != nil {
		t.Fatal(err)
	}
	var tmpl map[string]any
	if err := json.Unmarshal(good, &tmpl); err != nil {
		t.Fatal(err)
	}
	// mutate returns the good sample with one change to its first record,
	// followed by a second, valid record: a bad record must fail the whole
	// body even when others are fine.
	mutate := func(f func(rec, s3, obj map[string]any)) string {
		var m map[string]any
		_ = json.Unmarshal(good, &m)
		recs := m["Records"].([]any)
		var second map[string]any
		_ = json.Unmarshal(good, &second)
		rec := recs[0].(map[string]any)
		s3 := rec["s3"].(map[string]any)
		f(rec, s3, s3["object"].(map[string]any))
		m["Records"] = []any{second["Records"].([]any)[0], rec}
		b, _ := json.Marshal(m)
		return string(b)
	}
	tests := []struct {
		name, body, want string
	}{
		{"not json", `{"Records": [`, "formats: s3: not JSON"},
		{"trailing data", `{"Records": []} {}`, "not JSON: unexpected data after the JSON value"},
		{"array", `[]`, "want a JSON object, got an array"},
		{"no records", `{"Service": "Amazon S3"}`, `no "Records"`},
		{"records not array", `{"Records": {}}`, "Records: want an array, got an object"},
		{"record not object", `{"Records": [5]}`, "Records[0]: want an object, got a number"},
		{"no event name", mutate(func(rec, _, _ map[string]any) { delete(rec, "eventName") }), "Records[1].eventName: missing"},
		{"bad event time", mutate(func(rec, _, _ map[string]any) { rec["eventTime"] = "yesterday" }), `Records[1].eventTime: "yesterday" is not an RFC 3339 time`},
		{"no s3", mutate(func(rec, _, _ map[string]any) { delete(rec, "s3") }), "Records[1].s3: missing"},
		{"bucket not object", mutate(func(_, s3, _ map[string]any) { s3["bucket"] = "b" }), "Records[1].s3.bucket: want an object, got a string"},
		{"empty bucket name", mutate(func(_, s3, _ map[string]any) { s3["bucket"].(map[string]any)["name"] = "" }), "Records[1].s3.bucket.name: empty"},
		{"no key", mutate(func(_, _, obj map[string]any) { delete(obj, "key") }), "Records[1].s3.object.key: missing"},
		{"bad key encoding", mutate(func(_, _, obj map[string]any) { obj["key"] = "100%" }), `Records[1].s3.object.key: "100%" is not URL-encoded`},
		{"size not number", mutate(func(_, _, obj map[string]any) { obj["size"] = "1024" }), "Records[1].s3.object.size: want a number, got a string"},
		{"sequencer not string", mutate(func(_, _, obj map[string]any) { obj["sequencer"] = 7 }), "Records[1].s3.object.sequencer: want a string, got a number"},
		{"response elements not object", mutate(func(rec, _, _ map[string]any) { rec["responseElements"] = []any{} }), "Records[1].responseElements: want an object, got an array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := DecodeStorageNotification([]byte(tt.body))
			if err == nil {
				t.Fatalf("no error; %d events", len(evs))
			}
			if evs != nil {
				t.Errorf("events returned with the error: %d", len(evs))
			}
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%v does not wrap ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestS3DecoderKafka(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile("testdata/s3/minio-put.json")
	if err != nil {
		t.Fatal(err)
	}
	hooked, err := DecodeStorageNotification(body)
	if err != nil {
		t.Fatal(err)
	}
	r := &Record{Topic: "minio-events", Partition: 2, Offset: 77, Key: []byte("images/holiday photos/beach & sun.jpg"), Value: body,
		Headers: []plugins.KafkaHeader{{Key: "origin", Value: []byte("minio")}}}
	evs, err := S3{}.Decode(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	ev := evs[0]
	assertSDKValid(t, ev)
	if ev.KafkaTopic != "minio-events" || ev.KafkaPartition != 2 || ev.KafkaOffset != 77 || len(ev.KafkaHeaders) != 1 {
		t.Errorf("kafka extensions %q/%d/%d %v", ev.KafkaTopic, ev.KafkaPartition, ev.KafkaOffset, ev.KafkaHeaders)
	}
	if ev.ID != hooked[0].ID || ev.Subject != hooked[0].Subject || string(ev.Data) != string(hooked[0].Data) {
		t.Errorf("the Kafka envelope differs from the webhook's: %+v vs %+v", ev, hooked[0])
	}
	if _, err := (S3{}).Decode(&Record{Topic: "minio-events"}); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty value: %v, want ErrMalformed", err)
	}
}

func TestStorageType(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]string{
		"ObjectCreated:Put":                            plugins.TypeStorageCreated,
		"ObjectCreated:Post":                           plugins.TypeStorageCreated,
		"ObjectCreated:Copy":                           plugins.TypeStorageCreated,
		"ObjectCreated:CompleteMultipartUpload":        plugins.TypeStorageCreated,
		"s3:ObjectCreated:PutRetention":                plugins.TypeStorageCreated,
		"ObjectRemoved:Delete":                         plugins.TypeStorageRemoved,
		"ObjectRemoved:DeleteMarkerCreated":            plugins.TypeStorageRemoved,
		"s3:ObjectRemoved:DeleteAllVersions":           plugins.TypeStorageRemoved,
		"LifecycleExpiration:Delete":                   plugins.TypeStorageRemoved,
		"LifecycleExpiration:DeleteMarkerCreated":      plugins.TypeStorageRemoved,
		"ObjectRestore:Post":                           TypeStorageRestored,
		"ObjectRestore:Completed":                      TypeStorageRestored,
		"ObjectRestore:Delete":                         TypeStorageRestored,
		"LifecycleTransition":                          TypeStorageTransitioned,
		"s3:ObjectTransition:Complete":                 TypeStorageTransitioned,
		"IntelligentTiering":                           TypeStorageTiered,
		"ObjectTagging:Put":                            TypeStorageTagged,
		"ObjectAcl:Put":                                TypeStorageACL,
		"s3:ObjectAccessed:Get":                        TypeStorageAccessed,
		"Replication:OperationFailedReplication":       TypeStorageReplication,
		"s3:Replication:OperationCompletedReplication": TypeStorageReplication,
		"ReducedRedundancyLostObject":                  TypeStorageLost,
		"s3:BucketCreated":                             TypeStorageOther,
		"":                                             TypeStorageOther,
	} {
		if got := StorageType(name); got != want {
			t.Errorf("StorageType(%q) = %q, want %q", name, got, want)
		}
	}
}

func FuzzDecodeStorageNotification(f *testing.F) {
	f.Add([]byte(`{"Records":[]}`))
	f.Add([]byte(`{"Event":"s3:TestEvent"}`))
	f.Add([]byte(`{"Records":[{"eventName":"ObjectCreated:Put","eventTime":"2024-01-01T00:00:00Z","s3":{"bucket":{"name":"b"},"object":{"key":"a%2Bb+c","size":1}}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := DecodeStorageNotification(body)
		if err != nil {
			if evs != nil || !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v with %d events, or not ErrMalformed", err, len(evs))
			}
			return
		}
		for _, ev := range evs {
			checkEnvelope(t, ev)
			if !strings.HasPrefix(ev.Type, "sluice.storage.object.") || ev.Subject != ev.PartitionKey || !json.Valid(ev.Data) {
				t.Fatalf("bad envelope %+v", ev)
			}
		}
	})
}

// checkEnvelope is the fuzzers' cheap conformance check: the envelope has
// the required attributes and survives a round trip through JSON.
func checkEnvelope(t *testing.T, ev *plugins.Event) {
	t.Helper()
	if ev.ID == "" || ev.Source == "" || ev.Type == "" {
		t.Fatalf("missing required attribute: %+v", ev)
	}
	b, err := ev.MarshalJSON()
	if err != nil || !json.Valid(b) {
		t.Fatalf("MarshalJSON: %v %s", err, b)
	}
	var back plugins.Event
	if err := back.UnmarshalJSON(b); err != nil {
		t.Fatalf("round trip: %v in %s", err, b)
	}
}
