package filter

import (
	"testing"

	"github.com/sluicehq/sluice/plugins"
)

// s3Event is a storage envelope as formats produces it, the kind of event
// a trigger filter runs on most.
func s3Event() *plugins.Event {
	return &plugins.Event{
		ID: "3f2b5c1e9a7d4e60b1c2d3e4f5a6b7c8", Source: "aws:s3.us-east-1.photos",
		Type: plugins.TypeStorageCreated, Subject: "photos/img/2024/summer.jpg", PartitionKey: "photos/img/2024/summer.jpg",
		DataContentType: "application/json",
		Data:            []byte(`{"awsRegion":"us-east-1","eventName":"ObjectCreated:Put","eventSource":"aws:s3","eventTime":"2024-06-01T12:00:00.000Z","eventVersion":"2.1","requestParameters":{"sourceIPAddress":"203.0.113.7"},"responseElements":{"x-amz-id-2":"EXAMPLE123/5678abcdefghijklambdaisawesome/mnopqrstuvwxyzABCDEFGH","x-amz-request-id":"EXAMPLE123456789"},"s3":{"bucket":{"arn":"arn:aws:s3:::photos","name":"photos","ownerIdentity":{"principalId":"EXAMPLE"}},"configurationId":"thumbs","object":{"eTag":"0123456789abcdef0123456789abcdef","key":"img/2024/summer.jpg","sequencer":"0A1B2C3D4E5F678901","size":1048576},"s3SchemaVersion":"1.0"},"userIdentity":{"principalId":"EXAMPLE"}}`),
	}
}

func BenchmarkMatch(b *testing.B) {
	cases := []struct{ name, pattern string }{
		{"type", `{"type": ["sluice.storage.object.created"]}`},
		{"type-miss", `{"type": ["sluice.storage.object.removed"], "data": {"s3": {"object": {"key": [{"prefix": "img/"}]}}}}`},
		{"data-prefix", `{"data": {"s3": {"object": {"key": [{"prefix": "img/"}], "size": [{"numeric": [">", 0, "<=", 10485760]}]}}}}`},
		{"data-anything-but", `{"data": {"eventName": [{"anything-but": {"prefix": "ObjectRemoved:"}}], "requestParameters": {"sourceIPAddress": [{"cidr": "203.0.113.0/24"}]}}}`},
		{"data-miss", `{"data": {"s3": {"bucket": {"name": ["videos"]}}}}`},
	}
	ev := s3Event()
	for _, c := range cases {
		p := MustCompile(c.pattern)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(ev.Data)))
			for b.Loop() {
				p.Match(ev)
			}
		})
	}
}

func BenchmarkCompile(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Compile([]byte(seedPatterns[4])); err != nil {
			b.Fatal(err)
		}
	}
}
