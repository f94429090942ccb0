package streams

import (
	"strconv"
	"testing"
	"unsafe"

	"github.com/sluicehq/sluice/streams/formats"
)

// ids builds the ids of offsets as decodeAll does, and checks that each
// stays what formats.RecordID makes of it once later ones are appended.
func checkIDs(t *testing.T, topic string, part int32, offsets []int64) {
	t.Helper()
	prefix := formats.RecordIDPrefix(topic, part)
	var buf []byte
	if n := len(offsets); n > 0 {
		buf = make([]byte, 0, n*(len(prefix)+digits(max(offsets[n-1], 0))))
	}
	got := make([]string, len(offsets))
	prev, prevOffset := 0, int64(0)
	for i, off := range offsets {
		start := len(buf)
		buf = appendNextID(buf, prev, prefix, off, i > 0 && off == prevOffset+1)
		got[i] = unsafe.String(&buf[start], len(buf)-start)
		prev, prevOffset = start, off
	}
	for i, off := range offsets {
		if want := formats.RecordID(&formats.Record{Topic: topic, Partition: part, Offset: off}); got[i] != want {
			t.Fatalf("offset %d: id %q, want %q (offsets %v)", off, got[i], want, offsets)
		}
	}
}

func TestAppendNextID(t *testing.T) {
	for _, tc := range []struct {
		name    string
		offsets []int64
	}{
		{"one", []int64{0}},
		{"run", []int64{0, 1, 2, 3}},
		{"nine to ten", []int64{8, 9, 10, 11}},
		{"carry twice", []int64{98, 99, 100, 101}},
		{"carry inside", []int64{1099, 1100, 1101}},
		{"gap", []int64{5, 7, 8, 20, 21}},
		{"gap over a digit", []int64{9, 1000, 1001}},
		{"large", []int64{9_999_999_999, 10_000_000_000, 10_000_000_001}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkIDs(t, "orders", 3, tc.offsets) })
	}
}

func FuzzAppendNextID(f *testing.F) {
	f.Add(int64(0), uint8(3), uint8(0))
	f.Add(int64(99), uint8(5), uint8(1))
	f.Add(int64(999_999), uint8(40), uint8(7))
	f.Fuzz(func(t *testing.T, first int64, n, gapEvery uint8) {
		if first < 0 || first > 1<<62 {
			return
		}
		offs := []int64{first}
		for i := 1; i < int(n); i++ {
			step := int64(1)
			if gapEvery > 0 && i%int(gapEvery) == 0 {
				step = int64(i) * 7
			}
			offs = append(offs, offs[i-1]+step)
		}
		checkIDs(t, "t-"+strconv.Itoa(int(n)), int32(gapEvery), offs)
	})
}
