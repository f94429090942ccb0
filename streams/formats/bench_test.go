package formats

import (
	"os"
	"testing"
)

func BenchmarkDecodeStorageNotification(b *testing.B) {
	body, err := os.ReadFile("testdata/s3/s3-put-encoded-key.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := DecodeStorageNotification(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDebezium(b *testing.B) {
	for _, name := range []string{"pg-update", "mysql-insert-with-schema"} {
		b.Run(name, func(b *testing.B) {
			r := loadRecord(b, "testdata/debezium/"+name+".json")
			b.ReportAllocs()
			b.SetBytes(int64(len(r.Value)))
			for b.Loop() {
				if _, err := (Debezium{}).Decode(r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
