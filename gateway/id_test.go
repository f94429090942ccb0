package gateway

import (
	"regexp"
	"testing"
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestNewRequestID(t *testing.T) {
	seen := map[[idLen]byte]bool{}
	var nibbles [idLen]map[byte]bool
	for i := range nibbles {
		nibbles[i] = map[byte]bool{}
	}
	for range 2000 {
		var id [idLen]byte
		newRequestID(&id)
		if !uuidV4.Match(id[:]) {
			t.Fatalf("not a canonical v4 UUID: %s", id[:])
		}
		if seen[id] {
			t.Fatalf("duplicate %s", id[:])
		}
		seen[id] = true
		for i, c := range id {
			nibbles[i][c] = true
		}
	}
	// Every random position takes every hex digit: no byte is left
	// unwritten or written twice.
	for i, m := range nibbles {
		want := 16
		switch i {
		case 8, 13, 18, 23, 14:
			want = 1
		case 19:
			want = 4
		}
		if len(m) != want {
			t.Errorf("position %d took %d values, want %d", i, len(m), want)
		}
	}
}

func BenchmarkNewRequestID(b *testing.B) {
	var id [idLen]byte
	for b.Loop() {
		newRequestID(&id)
	}
}
