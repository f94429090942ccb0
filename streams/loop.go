package streams

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/tracing"
)

// The loop goroutine owns every partition, lane and record: fetched
// records, settled dispatches, retry timers, dead-letter acknowledgements
// and rebalance requests all arrive as messages, so the bookkeeping needs no
// locks and each decision sees one consistent state.

// rec is one fetched record on its way to being done. Records are
// allocated a fetch at a time (decodeAll), so every byte here is allocated
// and collected once per record: keep it small.
type rec struct {
	slab    *slab // the records it was fetched with
	kr      *kgo.Record
	p       *partition
	d       *dispatch // the dispatch in flight; written by the loop before SubmitGroup
	offset  int64
	fetched int64 // when this trigger fetched it, in Unix nanoseconds
	epoch   int32
	size    int32 // key, value and headers
	evSize  int32 // estimated size of its events
	// attempts counts the failed invocations.
	attempts int32
	events   []*plugins.Event
	err      error // the first error of the dispatch in flight; written by onDone
	lastErr  error // the last failure; for a poison record, the decoder's error
	poison   bool  // the decoder failed: dead-letter it as it is
	done     bool
	dead     bool              // handed to the dead-letter producer
	one      [1]*plugins.Event // events of a single-event decoder: &ev
	ev       plugins.Event     // the event of a single-event decoder
	span     tracing.Span      // from ingest to markDone, when tracing
}

// fetchedAt is when this trigger fetched r.
func (r *rec) fetchedAt() time.Time { return time.Unix(0, r.fetched) }

// dispatch is one group of records submitted together. Dispatches are
// recycled once settled (every item's Done has run, so the invoker holds
// none of its items any more): their items are the bulk of what a record
// costs in flight, and most records are in flight only briefly.
type dispatch struct {
	lane  *lane
	recs  []*rec
	left  atomic.Int32
	items []invoker.Item  // one per event of recs
	ptrs  []*invoker.Item // &items[i], as SubmitGroup takes them
}

// maxFreeDispatches bounds the dispatches kept for reuse: more than are
// ever in flight at once with the default ordering, few enough not to pin
// memory after a burst of parallel lanes.
const maxFreeDispatches = 64

// newDispatch returns a recycled dispatch or a new one, with room for n
// items.
func (t *Trigger) newDispatch(n int) *dispatch {
	var d *dispatch
	if k := len(t.freeDispatches); k > 0 {
		d = t.freeDispatches[k-1]
		t.freeDispatches[k-1] = nil
		t.freeDispatches = t.freeDispatches[:k-1]
	} else {
		d = &dispatch{}
	}
	if cap(d.items) < n {
		d.items = make([]invoker.Item, n, max(n, t.maxItems))
		d.ptrs = make([]*invoker.Item, n, cap(d.items))
	}
	d.items, d.ptrs = d.items[:n], d.ptrs[:n]
	return d
}

// freeDispatch keeps d for reuse. Its items let go of their events and
// records, so that a dispatch waiting for reuse does not keep their slabs
// alive; the rest of each item is overwritten by the next dispatch.
func (t *Trigger) freeDispatch(d *dispatch) {
	for i := range d.items {
		d.items[i].Event, d.items[i].Ref = nil, nil
	}
	d.lane, d.recs = nil, nil
	if len(t.freeDispatches) < maxFreeDispatches {
		t.freeDispatches = append(t.freeDispatches, d)
	}
}

// lane is an ordered run of records with at most one dispatch in flight:
// the whole partition with OrderingPartition, one key hash with
// OrderingKey, one run of offsets with OrderingNone.
type lane struct {
	p       *partition
	recs    []*rec // not yet done, in offset order; the head may be in flight
	ranges  []int  // bisection: the top is the size of the next dispatch
	busy    bool
	backoff bool
	timer   *time.Timer
	inReady bool
	stopped bool // the function closed: dispatch nothing more
	flush   bool // replaying after a failure: do not wait for batch.max_wait
}

type partition struct {
	key        tpKey
	log        []*rec // every record not yet committed, in offset order
	head       int
	lanes      []*lane // by index with OrderingPartition and OrderingKey; the active runs with OrderingNone
	pending    []*rec  // OrderingNone: records waiting for a free run
	next       int64   // the watermark: the offset to commit; -1 before the first record is done
	epoch      int32
	lastOffset int64
	bytes      int // of records not yet done
	inflight   int // dispatches and dead letters outstanding
	dead       int // dead letters outstanding
	paused     bool
	revoking   *revokeReq
	gone       bool
	abandon    chan struct{} // closed when the partition's work is abandoned
	hw, wm     atomic.Int64  // for the lag gauge
	gauge      string
}

type revokeReq struct {
	parts   map[string][]int32
	pending []*partition
	done    chan struct{}
}

// loopMsg is one message of the loop's inbox, from a goroutine that must
// not wait for the loop: exactly one of settled, retry and dead is set.
type loopMsg struct {
	settled *dispatch // every item of the dispatch has had its Done
	retry   *lane     // the lane's backoff is over
	dead    *rec      // the dead-letter producer finished with the record
	deadErr error     // with dead: nil when the broker acknowledged it
}

func (t *Trigger) loop() {
	defer close(t.loopDone)
	for {
		select {
		case msg := <-t.fetchCh:
			t.ingest(msg)
			// Before the ack: the poller sizes its next poll by it.
			t.stats.buffered.Store(int64(t.bufRecs))
			msg.ack <- struct{}{}
		case <-t.wake:
			t.drainInbox()
		case fn := <-t.ctlCh:
			fn()
		case <-t.drainCh:
			t.drainCh = nil
			t.queueFull = false
		case <-t.lowCh:
			t.lowCh = nil
		case <-t.loopStop:
			return
		}
		t.settle()
	}
}

// settle runs after every message: dispatch what can go, finish revokes
// and Close, and pause or resume fetching.
func (t *Trigger) settle() {
	t.dispatchReady()
	if len(t.revokes) > 0 {
		t.checkRevokes()
	}
	if t.closeDone != nil && t.idle() {
		close(t.closeDone)
		t.closeDone = nil
	}
	t.updatePause()
	t.stats.buffered.Store(int64(t.bufRecs))
	t.stats.bufferedBytes.Store(int64(t.bufBytes))
	t.stats.partitions.Store(int64(len(t.parts)))
}

func (t *Trigger) drainInbox() {
	t.inboxMu.Lock()
	msgs := t.inbox
	t.inbox = t.spare[:0]
	t.inboxMu.Unlock()
	for i, m := range msgs {
		switch {
		case m.settled != nil:
			t.settleDispatch(m.settled)
		case m.retry != nil:
			m.retry.backoff = false
			m.retry.timer = nil
			t.makeReady(m.retry)
		case m.dead != nil:
			t.deadLettered(m.dead, m.deadErr)
		}
		msgs[i] = loopMsg{}
	}
	t.spare = msgs[:0]
}

// ingest adds fetched records to their partitions and lanes.
func (t *Trigger) ingest(msg *fetchMsg) {
	for _, fp := range msg.parts {
		p := t.parts[fp.key]
		if p == nil || p.gone || p.revoking != nil {
			// Not ours (any more): the owner fetches them from the
			// committed offset.
			t.m.dropped.Add(len(fp.recs))
			for i := range fp.recs {
				t.release(&fp.recs[i])
			}
			continue
		}
		p.hw.Store(fp.hw)
		for i := range fp.recs {
			r := &fp.recs[i]
			if r.offset <= p.lastOffset {
				t.m.dropped.Inc()
				t.release(r)
				continue
			}
			if p.lastOffset < 0 && p.next < 0 {
				p.wm.Store(r.offset)
			}
			p.lastOffset = r.offset
			r.p = p
			p.log = append(p.log, r)
			p.bytes += int(r.size)
			t.bufRecs++
			t.bufBytes += int(r.size)
			if t.tr != nil && !r.poison && len(r.events) > 0 {
				t.traceRecord(r)
			}
			switch {
			case r.poison:
				t.deadLetter(r, r.lastErr)
			case len(r.events) == 0:
				t.markDone(r)
			case t.cfg.Ordering == OrderingNone:
				p.pending = append(p.pending, r)
			default:
				l := t.laneFor(p, r)
				l.recs = append(l.recs, r)
				t.makeReady(l)
			}
		}
		t.fillRuns(p)
		t.advance(p)
	}
}

// laneFor picks the lane of a record with OrderingPartition (the one lane)
// and OrderingKey (by key hash; records without a key share one lane).
func (t *Trigger) laneFor(p *partition, r *rec) *lane {
	i := 0
	if n := len(p.lanes); n > 1 {
		// FNV-1a, inline: no allocation per record.
		h := uint32(2166136261)
		for _, c := range r.kr.Key {
			h ^= uint32(c)
			h *= 16777619
		}
		i = int(h % uint32(n))
	}
	l := p.lanes[i]
	if l == nil {
		l = &lane{p: p}
		p.lanes[i] = l
	}
	return l
}

// fillRuns starts runs of pending records with OrderingNone while fewer
// than Parallelism are active: a run is a lane of its own, so a record
// being retried holds back only the records of its run.
func (t *Trigger) fillRuns(p *partition) {
	for len(p.pending) > 0 && len(p.lanes) < t.cfg.Parallelism && p.revoking == nil && !p.gone && !t.closing {
		k, bytes := 0, 0
		for k < len(p.pending) && k < t.maxItems {
			r := p.pending[k]
			if k > 0 && bytes+int(r.evSize) > t.maxBytes {
				break
			}
			bytes += int(r.evSize)
			k++
		}
		l := &lane{p: p, recs: append([]*rec(nil), p.pending[:k]...)}
		clear(p.pending[:k])
		p.pending = p.pending[k:]
		if len(p.pending) == 0 {
			p.pending = nil
		}
		p.lanes = append(p.lanes, l)
		t.makeReady(l)
	}
}

// next queues l for its next dispatch, or retires it when it is an
// OrderingNone run with nothing left.
func (t *Trigger) next(l *lane) {
	t.makeReady(l)
	t.endRun(l)
}

// endRun retires an OrderingNone run that has no records left.
func (t *Trigger) endRun(l *lane) {
	p := l.p
	if t.cfg.Ordering != OrderingNone || len(l.recs) > 0 || l.busy {
		return
	}
	for i, x := range p.lanes {
		if x == l {
			p.lanes = slices.Delete(p.lanes, i, i+1)
			break
		}
	}
	t.fillRuns(p)
}

func (t *Trigger) makeReady(l *lane) {
	if l.inReady || l.busy || l.backoff || l.stopped || len(l.recs) == 0 ||
		l.p.gone || l.p.revoking != nil || t.closing {
		return
	}
	l.inReady = true
	t.ready = append(t.ready, l)
}

// dispatchReady submits the ready lanes in turn until the function's queue
// is full; then it waits for the queue to drain (Function.Drained).
func (t *Trigger) dispatchReady() {
	if t.queueFull || len(t.ready) == 0 {
		return
	}
	i := 0
	for ; i < len(t.ready); i++ {
		l := t.ready[i]
		l.inReady = false
		if l.busy || l.backoff || l.stopped || len(l.recs) == 0 || l.p.gone || l.p.revoking != nil || t.closing {
			continue
		}
		err := t.dispatch(l)
		if err == nil {
			continue
		}
		if errors.Is(err, invoker.ErrQueueFull) {
			l.inReady = true
			t.queueFull = true
			t.drainCh = t.fn.Drained(max(0, t.queueCap-t.maxItems))
			break
		}
		// ErrClosed: the function is going away; its records stay
		// uncommitted for the next owner.
		l.stopped = true
		t.slog.Warn().Err(err).Msg("function refused records; the lane stops")
	}
	n := copy(t.ready, t.ready[i:])
	clear(t.ready[n:])
	t.ready = t.ready[:n]
}

// dispatch submits the next records of l as one group.
func (t *Trigger) dispatch(l *lane) error {
	limit := t.maxItems
	if n := len(l.ranges); n > 0 {
		limit = min(limit, l.ranges[n-1])
	}
	k, bytes, events := 0, 0, 0
	for k < len(l.recs) && k < limit {
		r := l.recs[k]
		if k > 0 && len(l.ranges) == 0 && (bytes+int(r.evSize) > t.maxBytes || events+len(r.events) > t.queueCap) {
			break
		}
		bytes += int(r.evSize)
		events += len(r.events)
		k++
	}
	if events > t.queueCap {
		// One record decoded into more events than the queue holds: it can
		// never be submitted.
		r := l.recs[0]
		t.dropHead(l, 1)
		t.deadLetter(r, fmt.Errorf("record decoded into %d events, more than the function's queue (%d)", events, t.queueCap))
		t.next(l)
		return nil
	}
	// The lane only ever drops records from its front, so d.recs keeps
	// pointing at the same records while the lane appends behind them.
	d := t.newDispatch(events)
	d.lane, d.recs = l, l.recs[:k:k]
	n := 0
	for _, r := range d.recs {
		r.d, r.err = d, nil
		since := r.fetchedAt()
		for _, ev := range r.events {
			it := &d.items[n]
			*it = invoker.Item{Event: ev, Trigger: t.cfg.Name, Attempts: 1, Since: since, Done: t.doneFn, Ref: r, Flush: l.flush}
			if len(r.events) == 1 {
				it.Size = int(r.evSize)
			}
			d.ptrs[n] = it
			n++
		}
	}
	d.left.Store(int32(n))
	if err := t.fn.SubmitGroup(d.ptrs); err != nil {
		t.freeDispatch(d)
		return err
	}
	l.busy = true
	l.p.inflight++
	return nil
}

// settleDispatch applies the outcome of one dispatch: records up to the
// first failure are done; the failed one is retried (with the rest of the
// dispatch after it, in order), bisected or dead-lettered.
func (t *Trigger) settleDispatch(d *dispatch) {
	defer t.freeDispatch(d)
	l, p := d.lane, d.lane.p
	l.busy = false
	p.inflight--
	if p.gone {
		return // abandoned: the records belong to the partition's next owner
	}
	first, crash, closed := -1, true, false
	for i, r := range d.recs {
		if r.err == nil {
			crash = false
			continue
		}
		if first < 0 {
			first = i
		}
		if errors.Is(r.err, invoker.ErrClosed) {
			closed = true
		}
		if !isBatchErr(r.err) {
			crash = false
		}
	}
	switch {
	case closed:
		// The function is closing: leave the records uncommitted.
		for _, r := range d.recs {
			r.err = nil
		}
		l.stopped = true
		return
	case first < 0:
		t.succeed(l, len(d.recs))
		l.flush = len(l.ranges) > 0
		t.next(l)
		return
	}
	t.succeed(l, first)
	l.flush = true
	if crash && t.retry.Splits(len(d.recs)) {
		for _, r := range d.recs {
			r.err = nil
		}
		t.m.bisects.Inc()
		t.split(l, len(d.recs))
		t.next(l)
		return
	}
	failed := d.recs[first:]
	for _, r := range failed {
		if r.err != nil {
			r.attempts++
			r.lastErr = r.err
			r.err = nil
		}
	}
	head := failed[0]
	// The invoker's retry policy, applied here so that the record keeps
	// its place in its lane: its submission asked the invoker for one
	// attempt. Its age counts from when this trigger first fetched it.
	v := t.retry.Next(int(head.attempts), t.retry.Attempts, head.fetchedAt(), time.Now(), head.lastErr)
	if v.Step == invoker.Final {
		err := v.Err
		if crash && !t.retry.Bisect {
			// The batch failed as a whole and cannot be split: like Lambda,
			// the whole batch goes to the dead-letter topic.
			t.dropHead(l, len(failed))
			for _, r := range failed {
				t.deadLetter(r, err)
			}
		} else {
			t.dropHead(l, 1)
			t.deadLetter(head, err)
		}
		t.next(l)
		return
	}
	t.backoff(l, v.Delay)
}

// isBatchErr reports whether err failed a whole batch rather than one
// event: a worker crash or a timeout.
func isBatchErr(err error) bool {
	var we *invoker.WorkerError
	return errors.As(err, &we) || errors.Is(err, invoker.ErrTimeout)
}

// succeed marks the first k records of l done.
func (t *Trigger) succeed(l *lane, k int) {
	if k == 0 {
		return
	}
	for _, r := range l.recs[:k] {
		t.markDone(r)
	}
	t.dropHead(l, k)
	t.advance(l.p)
}

// dropHead removes the first k records from l and from its bisection
// ranges.
func (t *Trigger) dropHead(l *lane, k int) {
	l.recs = l.recs[k:]
	if len(l.recs) == 0 {
		l.recs = nil
	}
	if n := len(l.ranges); n > 0 {
		l.ranges[n-1] -= k
		if l.ranges[n-1] <= 0 {
			l.ranges = l.ranges[:n-1]
		}
	}
}

// split replaces the range of the n records just dispatched by its two
// halves, the first half on top.
func (t *Trigger) split(l *lane, n int) {
	if k := len(l.ranges); k > 0 {
		top := l.ranges[k-1]
		l.ranges = l.ranges[:k-1]
		if top > n {
			l.ranges = append(l.ranges, top-n)
		}
	}
	a := n / 2
	l.ranges = append(l.ranges, n-a, a)
}

// backoff retries l after d, the retry policy's delay.
func (t *Trigger) backoff(l *lane, d time.Duration) {
	t.m.retries.Inc()
	l.backoff = true
	l.timer = time.AfterFunc(d, func() { t.post(loopMsg{retry: l}) })
	t.partPause(l.p)
}

func (t *Trigger) markDone(r *rec) {
	r.done = true
	if t.tr != nil {
		r.span.End(time.Time{})
		r.span = tracing.Span{}
	}
	r.p.bytes -= int(r.size)
	t.bufBytes -= int(r.size)
	// Only the offset is needed from now on: let the payload go, as large
	// records behind an unfinished one would otherwise stay in memory past
	// MaxBufferedBytes. What else r points to is its own (one, the
	// dispatch) or small.
	recycle(r)
	if t.cfg.PoisonEvents {
		for _, ev := range r.events {
			plugins.Poison(ev)
		}
	}
	r.ev.Data, r.ev.KafkaHeaders = nil, nil
	if len(r.events) > 0 && r.events[0] != &r.ev {
		r.events = nil // a decoder's own events
	}
	r.lastErr = nil
}

// release is the trigger's last look at r: its record goes back to the
// client's pool, and r to its slab, which is recycled with its last record.
// r must not be used after.
func (t *Trigger) release(r *rec) {
	recycle(r)
	t.slabs.release(r.slab)
}

// advance moves the partition's watermark over its done records.
func (t *Trigger) advance(p *partition) {
	passed := 0
	for p.head < len(p.log) && p.log[p.head].done {
		r := p.log[p.head]
		p.log[p.head] = nil
		p.head++
		p.next, p.epoch = r.offset+1, r.epoch
		t.release(r)
		passed++
	}
	t.bufRecs -= passed
	moved := passed > 0
	if moved {
		t.stats.passed.Add(int64(passed))
	}
	if p.head == len(p.log) {
		p.log, p.head = p.log[:0], 0
	} else if p.head > 1024 && p.head > len(p.log)/2 {
		n := copy(p.log, p.log[p.head:])
		clear(p.log[n:])
		p.log, p.head = p.log[:n], 0
	}
	t.partPause(p)
	if !moved {
		return
	}
	p.wm.Store(p.next)
	ps := t.marks[p.key.topic]
	if ps == nil {
		ps = make(map[int32]kgo.EpochOffset, 1)
		t.marks[p.key.topic] = ps
	}
	ps[p.key.part] = kgo.EpochOffset{Epoch: p.epoch, Offset: p.next}
	t.cl.MarkCommitOffsets(t.marks) // copies what it needs
	clear(ps)
}

// partPause pauses a partition that is stuck (a lane retrying or
// bisecting, or a dead letter not yet written) and holds more than a few
// batches, so that it does not fill the trigger's buffer while the other
// partitions flow; it resumes once unstuck or drained. A partition that
// merely has a lot buffered is left alone: pausing it would make the
// client drop and refetch its buffered data.
func (t *Trigger) partPause(p *partition) {
	if p.gone {
		return
	}
	n := len(p.log) - p.head
	switch stuck := t.stuck(p); {
	case !p.paused && stuck && n >= 2*t.maxItems:
		p.paused = true
		t.cl.PauseFetchPartitions(map[string][]int32{p.key.topic: {p.key.part}})
		t.m.pauses.Inc()
	case p.paused && (!stuck || n <= t.maxItems):
		p.paused = false
		t.cl.ResumeFetchPartitions(map[string][]int32{p.key.topic: {p.key.part}})
	}
}

func (t *Trigger) stuck(p *partition) bool {
	if p.dead > 0 {
		return true
	}
	for _, l := range p.lanes {
		if l != nil && (l.backoff || l.flush || len(l.ranges) > 0) {
			return true
		}
	}
	return false
}

// updatePause pauses all fetching above the high-water marks and resumes
// it under the low ones.
func (t *Trigger) updatePause() {
	depth, _ := t.fn.Load()
	if !t.paused {
		if t.bufRecs >= t.maxRecords || t.bufBytes >= t.maxBuf || depth >= t.highWater {
			t.paused = true
			t.canPoll.Store(false)
			t.stats.paused.Store(true)
			t.cl.PauseFetchTopics(t.cfg.Topics...)
			t.m.pauses.Inc()
		}
	} else if t.bufRecs <= t.maxRecords/2 && t.bufBytes <= t.maxBuf/2 && depth <= t.lowWater {
		t.paused = false
		t.stats.paused.Store(false)
		t.cl.ResumeFetchTopics(t.cfg.Topics...)
		t.canPoll.Store(true)
		select {
		case t.pollWake <- struct{}{}:
		default:
		}
	}
	if t.paused && depth > t.lowWater && t.lowCh == nil {
		// Other sources (HTTP) may drain the queue without a word to us.
		t.lowCh = t.fn.Drained(t.lowWater)
	}
}

// deadLetter hands r to a producer goroutine; the record is done once the
// dead-letter topic acknowledged it.
func (t *Trigger) deadLetter(r *rec, cause error) {
	r.dead = true
	r.p.inflight++
	r.p.dead++
	dl, origin := t.deadLetterRecord(r, cause)
	t.dlqWG.Add(1)
	go t.produceDeadLetter(r, dl, origin, cause, int(r.attempts), r.p.abandon)
}

// deadLettered settles a record the dead-letter producer is done with:
// err is nil when the broker acknowledged its dead letter.
func (t *Trigger) deadLettered(r *rec, err error) {
	p := r.p
	p.inflight--
	p.dead--
	if p.gone || err != nil {
		return // abandoned: the record stays uncommitted
	}
	t.fn.AddDeadLetters(1)
	t.m.deadLetters.Inc()
	t.markDone(r)
	t.advance(p)
}

// assign creates the state of newly assigned partitions.
func (t *Trigger) assign(assigned map[string][]int32) {
	for topic, ps := range assigned {
		for _, part := range ps {
			key := tpKey{topic, part}
			if t.parts[key] != nil {
				continue
			}
			p := &partition{key: key, next: -1, lastOffset: -1, abandon: make(chan struct{})}
			if t.cfg.Ordering != OrderingNone {
				p.lanes = make([]*lane, t.partLanes)
			}
			p.hw.Store(-1)
			p.wm.Store(-1)
			p.gauge = t.m.lagGauge(t.cfg.Group, topic, part, p)
			t.parts[key] = p
		}
	}
	t.log.Info().Interface("partitions", assigned).Msg("partitions assigned")
}

// revoke stops dispatching for revoked partitions; checkRevokes finishes
// the request once their in-flight work is settled.
func (t *Trigger) revoke(req *revokeReq) {
	for topic, ps := range req.parts {
		for _, part := range ps {
			p := t.parts[tpKey{topic, part}]
			if p == nil || p.gone {
				continue
			}
			p.revoking = req
			t.stopLanes(p)
			req.pending = append(req.pending, p)
		}
	}
	t.revokes = append(t.revokes, req)
	t.log.Info().Interface("partitions", req.parts).Msg("partitions revoked; finishing their in-flight records")
}

func (t *Trigger) checkRevokes() {
	keep := t.revokes[:0]
	for _, req := range t.revokes {
		left := req.pending[:0]
		for _, p := range req.pending {
			if p.gone {
				continue
			}
			if p.inflight == 0 {
				t.remove(p)
				continue
			}
			left = append(left, p)
		}
		req.pending = left
		if len(left) == 0 {
			close(req.done)
			continue
		}
		keep = append(keep, req)
	}
	clear(t.revokes[len(keep):])
	t.revokes = keep
}

// abandonRevoke gives up waiting for the in-flight work of revoked
// partitions: what is done is committed, the rest is the next owner's.
func (t *Trigger) abandonRevoke(req *revokeReq) {
	for _, p := range req.pending {
		if !p.gone {
			t.remove(p)
		}
	}
}

// lose drops partitions the group took away without a revoke: nothing of
// theirs can be committed any more.
func (t *Trigger) lose(lost map[string][]int32) {
	for topic, ps := range lost {
		for _, part := range ps {
			if p := t.parts[tpKey{topic, part}]; p != nil && !p.gone {
				t.remove(p)
			}
		}
	}
}

// stopLanes stops dispatching for p and cancels its pending retries.
func (t *Trigger) stopLanes(p *partition) {
	for _, l := range p.lanes {
		if l == nil {
			continue
		}
		if l.timer != nil {
			l.timer.Stop()
			l.timer = nil
		}
		l.stopped = true
	}
}

// remove forgets p. Its marked watermark stays in the client for the
// final commit; late results of its dispatches are ignored.
func (t *Trigger) remove(p *partition) {
	t.stopLanes(p)
	p.gone = true
	close(p.abandon)
	delete(t.parts, p.key)
	t.bufRecs -= len(p.log) - p.head
	t.bufBytes -= p.bytes
	p.log, p.head, p.bytes, p.pending = nil, 0, 0, nil
	if p.paused {
		// Paused partitions stay paused across assignments.
		t.cl.ResumeFetchPartitions(map[string][]int32{p.key.topic: {p.key.part}})
		p.paused = false
	}
	t.m.set.UnregisterMetric(p.gauge)
}

// beginClose stops all dispatching; settle closes done once nothing is in
// flight.
func (t *Trigger) beginClose(done chan struct{}) {
	t.closing = true
	for _, p := range t.parts {
		t.stopLanes(p)
	}
	t.closeDone = done
}

func (t *Trigger) idle() bool {
	for _, p := range t.parts {
		if p.inflight > 0 {
			return false
		}
	}
	return true
}

// abandonAll gives up on all in-flight work at Close.
func (t *Trigger) abandonAll() {
	for _, p := range t.parts {
		t.remove(p)
	}
	if t.closeDone != nil {
		close(t.closeDone)
		t.closeDone = nil
	}
}
