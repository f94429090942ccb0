package streams

import (
	"math/bits"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// recordPool recycles the slices the client decodes fetched records into
// (kgo.PoolRecords): at a million records a second, the client's own
// allocation of them was a fifth of what a trigger allocates, and
// collecting garbage is most of what a record costs. The trigger gives a
// record back (kgo.Record.Recycle) once it is done with it (recycle); a
// slice returns here when all of its records are back. Records the trigger
// drops without recycling (a partition taken away) only keep their slice
// from coming back, for the collector to take. Only the Record structs are
// pooled, never the bytes they point to: events share the values, and a
// function may keep its events.
//
// Slices are pooled by capacity, powers of two, so that a slice fits any
// batch up to its size. It is safe for concurrent use.
type recordPool struct {
	classes    [32]sync.Pool // by log2 of capacity
	gets, puts atomic.Int64  // slices handed out and back, for tests
}

var _ kgo.PoolRecords = (*recordPool)(nil)

// GetRecords implements kgo.PoolRecords.
func (rp *recordPool) GetRecords(n int) []kgo.Record {
	rp.gets.Add(1)
	c := bits.Len(uint(max(n, 1) - 1))
	if c >= len(rp.classes) {
		return make([]kgo.Record, 0, n)
	}
	if s, ok := rp.classes[c].Get().(*[]kgo.Record); ok {
		return (*s)[:0]
	}
	return make([]kgo.Record, 0, 1<<c)
}

// PutRecords implements kgo.PoolRecords. kgo zeroed the records.
func (rp *recordPool) PutRecords(s []kgo.Record) {
	c := bits.Len(uint(cap(s))) - 1
	rp.puts.Add(1)
	if c < 0 || c >= len(rp.classes) || cap(s) != 1<<c {
		return // not one of ours
	}
	rp.classes[c].Put(&s)
}

// recycle gives r's client record back to the pool: the trigger is done
// with it (it was done, dead-lettered or dropped) and never looks at it
// again. The event keeps what it shares (value, key, headers): those are
// not pooled.
func recycle(r *rec) {
	if r.kr != nil {
		r.kr.Recycle()
		r.kr = nil
	}
}
