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

// slab holds the records of one partition's poll, with their events: one
// allocation for all of them (decodeAll). A slab is recycled once the
// watermark has passed every record in it: by then each record was
// invoked (every item's Done ran), dead-lettered or skipped, and nothing of
// the trigger or the invoker points to it. The events in it are reused
// with it, which plugins.Handler's contract allows: a function does not
// keep the *plugins.Event it was given after it returns. The values the
// event held (its strings, Data, headers) are never reused.
//
// A slab whose partition was taken away is not recycled: its records may
// still be in flight, and the collector takes it once they are not.
type slab struct {
	recs []rec
	left int // records not yet released; written by the poller before the loop sees it, then by the loop
}

// slabPool recycles slabs by capacity, powers of two. Safe for concurrent
// use.
type slabPool struct {
	classes    [32]sync.Pool
	gets, puts atomic.Int64 // for tests
}

// get returns a slab of n records, which the caller zeroes (decodeAll
// does, one at a time as it decodes them).
func (sp *slabPool) get(n int) *slab {
	sp.gets.Add(1)
	c := bits.Len(uint(max(n, 1) - 1))
	if c < len(sp.classes) {
		if s, ok := sp.classes[c].Get().(*slab); ok {
			s.recs = s.recs[:n]
			s.left = n
			return s
		}
	}
	size := n
	if c < len(sp.classes) {
		size = 1 << c
	}
	return &slab{recs: make([]rec, n, size), left: n}
}

// release marks one record of s released, and recycles s with its last.
func (sp *slabPool) release(s *slab) {
	if s.left--; s.left > 0 {
		return
	}
	c := bits.Len(uint(cap(s.recs))) - 1
	if c < 0 || c >= len(sp.classes) || cap(s.recs) != 1<<c {
		return
	}
	sp.puts.Add(1)
	sp.classes[c].Put(s)
}
