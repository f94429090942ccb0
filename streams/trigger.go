package streams

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/VictoriaMetrics/metrics"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/streams/formats"
	"github.com/sluicehq/sluice/tracing"
)

// Errors of the streams package.
var (
	// ErrStarted is returned by a second Start.
	ErrStarted = errors.New("streams: trigger started twice")
	// ErrClosed is returned by Start after Close.
	ErrClosed = errors.New("streams: trigger closed")
)

// Deps are what a Trigger needs that is not configuration.
type Deps struct {
	// Logger receives the trigger's and its Kafka client's logs. Defaults
	// to a disabled logger.
	Logger *zerolog.Logger
	// Metrics receives the trigger's series; the caller registers it and
	// unregisters it after Close. Defaults to a new, unregistered set.
	Metrics *metrics.Set
	// Tracer traces each record a Trigger consumes. Publishers and
	// schedulers ignore it. Defaults to nil: tracing off.
	Tracer *tracing.Tracer
	// ClientMetrics receives the Kafka clients' own series (connections,
	// bytes, latency, records by topic); one is shared by every client of
	// a configuration. Defaults to nil: none.
	ClientMetrics *ClientMetrics
}

// Trigger consumes Kafka topics in a consumer group and invokes one
// function with their records. Create it with NewTrigger, run it with
// Start, stop it with Close. Its methods are safe for concurrent use.
type Trigger struct {
	cfg   Config
	fn    *invoker.Function
	log   zerolog.Logger
	slog  zerolog.Logger // sampled, for per-record problems
	m     *trigMetrics
	tr    *tracing.Tracer // nil: tracing off
	km    *ClientMetrics  // nil: no client metrics
	retry invoker.RetryConfig

	maxItems   int // records per dispatch: batch.max_items, at most the queue
	maxBytes   int
	queueCap   int
	highWater  int
	lowWater   int
	pollMax    int
	partLanes  int // lanes per partition
	maxRecords int
	maxBuf     int

	cl      *kgo.Client
	recPool recordPool
	slabs   slabPool
	doneFn  func(*invoker.Item, invoker.Outcome) // t.onDone, bound once: a method value allocates

	startMu sync.Mutex
	started bool
	closed  bool

	// poller -> loop
	fetchCh chan *fetchMsg
	// rebalance callbacks and Close -> loop
	ctlCh chan func()
	// invoker Done callbacks, retry timers, dead-letter producers -> loop
	inboxMu sync.Mutex
	inbox   []loopMsg
	spare   []loopMsg
	wake    chan struct{}

	canPoll    atomic.Bool   // fetching is not paused: the poller may poll
	pollWake   chan struct{} // capacity 1: canPoll turned true
	pollCancel context.CancelFunc
	pollDone   chan struct{}
	loopStop   chan struct{}
	loopDone   chan struct{}
	dlqCtx     context.Context
	dlqCancel  context.CancelFunc
	dlqWG      sync.WaitGroup

	// Owned by the loop goroutine.
	parts          map[tpKey]*partition
	ready          []*lane
	freeDispatches []*dispatch
	queueFull      bool
	drainCh        <-chan struct{} // the queue has room again
	lowCh          <-chan struct{} // the queue fell under its low-water mark
	paused         bool
	bufRecs        int
	bufBytes       int
	revokes        []*revokeReq
	closing        bool
	closeDone      chan struct{}

	// marks is the loop's reusable argument of MarkCommitOffsets: the
	// client commits the marked watermarks every CommitInterval
	// (AutoCommitMarks) and on revoke and Close (commitMarked).
	marks map[string]map[int32]kgo.EpochOffset

	stats struct {
		buffered, bufferedBytes, partitions atomic.Int64
		passed                              atomic.Int64 // records the watermarks moved over, for benchmarks
		paused                              atomic.Bool
	}
}

// minCommitInterval is the shortest interval the client autocommits at.
const minCommitInterval = 100 * time.Millisecond

type tpKey struct {
	topic string
	part  int32
}

// NewTrigger validates cfg against fn's policy and returns a Trigger that
// invokes fn. It connects to nothing until Start. Validation errors name
// the config key.
func NewTrigger(cfg Config, fn *invoker.Function, deps Deps) (*Trigger, error) {
	if fn == nil {
		panic("BUG: streams.NewTrigger without a function")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("kafka trigger of function %q: %w", fn.Name(), err)
	}
	fc := fn.Config()
	cfg = cfg.withDefaults(fnLimits{concurrency: fc.Concurrency, queue: fc.Queue, maxItems: fc.Batch.MaxItems, maxBytes: fc.Batch.MaxBytes})
	log := zerolog.Nop()
	if deps.Logger != nil {
		log = *deps.Logger
	}
	log = log.With().Str("component", "streams").Str("trigger", cfg.Name).Str("group", cfg.Group).Str("function", fn.Name()).Logger()
	set := deps.Metrics
	if set == nil {
		set = metrics.NewSet()
	}
	t := &Trigger{
		cfg:        cfg,
		fn:         fn,
		log:        log,
		tr:         deps.Tracer,
		km:         deps.ClientMetrics,
		slog:       log.Sample(&zerolog.BurstSampler{Burst: 5, Period: 10 * time.Second}),
		retry:      fc.Retry,
		maxItems:   max(1, min(fc.Batch.MaxItems, fc.Queue)),
		maxBytes:   fc.Batch.MaxBytes,
		queueCap:   fc.Queue,
		highWater:  fc.Queue * 3 / 4,
		lowWater:   fc.Queue / 4,
		maxRecords: cfg.MaxBufferedRecords,
		maxBuf:     cfg.MaxBufferedBytes,
		fetchCh:    make(chan *fetchMsg),
		ctlCh:      make(chan func()),
		wake:       make(chan struct{}, 1),
		pollWake:   make(chan struct{}, 1),
		pollDone:   make(chan struct{}),
		loopStop:   make(chan struct{}),
		loopDone:   make(chan struct{}),
		parts:      make(map[tpKey]*partition),
		marks:      make(map[string]map[int32]kgo.EpochOffset),
	}
	t.doneFn = t.onDone
	t.canPoll.Store(true)
	t.pollMax = max(t.maxItems, t.maxRecords/4)
	t.partLanes = 1
	if cfg.Ordering != OrderingPartition {
		t.partLanes = cfg.Parallelism
	}
	t.m = newTrigMetrics(set, t)
	return t, nil
}

// Name returns the trigger's name.
func (t *Trigger) Name() string { return t.cfg.Name }

// Config returns the trigger's configuration with defaults applied.
func (t *Trigger) Config() Config { return t.cfg }

// Stats is a snapshot of a trigger's buffers, for readiness and tests.
type Stats struct {
	// Buffered is the number of records fetched and not yet committed.
	Buffered int
	// BufferedBytes is the size of the records fetched and not yet done.
	BufferedBytes int
	// Partitions is the number of partitions the trigger owns.
	Partitions int
	// Paused reports whether fetching is paused for backpressure.
	Paused bool
}

// Stats returns a snapshot of the trigger's buffers.
func (t *Trigger) Stats() Stats {
	return Stats{
		Buffered:      int(t.stats.buffered.Load()),
		BufferedBytes: int(t.stats.bufferedBytes.Load()),
		Partitions:    int(t.stats.partitions.Load()),
		Paused:        t.stats.paused.Load(),
	}
}

// clientOpts are the Kafka client options of a trigger, before the user's.
func (t *Trigger) clientOpts() []kgo.Opt {
	start := kgo.NewOffset().AtStart()
	if t.cfg.Start == StartLatest {
		start = kgo.NewOffset().AtEnd()
	}
	// One broker's fetch response is buffered whole until polled, so the
	// fetch size bounds the client's memory next to the trigger's buffers.
	fetchMax := int32(min(max(t.maxBuf/2, 1<<20), 50<<20))
	partMax := int32(min(max(t.maxBytes, 64<<10), int(fetchMax)))
	opts := []kgo.Opt{
		kgo.SeedBrokers(t.cfg.Brokers...),
		kgo.ConsumerGroup(t.cfg.Group),
		kgo.ConsumeTopics(t.cfg.Topics...),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		// The loop marks each partition's contiguous watermark; the client
		// commits what is marked every CommitInterval, and commitMarked on
		// revoke and Close. Nothing past the watermark is ever marked, so
		// a crash redelivers at most what was not finished.
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(max(t.cfg.CommitInterval, minCommitInterval)),
		kgo.AutoCommitCallback(t.onCommit),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(t.onAssigned),
		kgo.OnPartitionsRevoked(t.onRevoked),
		kgo.OnPartitionsLost(t.onLost),
		kgo.ConsumeResetOffset(start),
		kgo.FetchMaxBytes(fetchMax),
		// A resumed partition waits for the fetch in flight, which waits up
		// to this long for data: Java's 500ms, not kgo's 5s.
		kgo.FetchMaxWait(500 * time.Millisecond),
		kgo.FetchMaxPartitionBytes(partMax),
		// Like the Java consumer's default: a trigger may start before the
		// first record is produced, and on the embedded broker this is what
		// creates the topic. The dead-letter topic is created the same way.
		kgo.AllowAutoTopicCreation(),
		kgo.RecordDeliveryTimeout(time.Minute),
		kgo.WithLogger(kgoLogger{log: t.log}),
		kgo.WithPools(&t.recPool),
		t.km.Opt(),
	}
	return append(opts, t.cfg.ClientOpts...)
}

// Start connects to the brokers, joins the group and begins consuming. It
// returns an error when no broker answers before ctx ends (the client is
// then closed), ErrStarted on a second call and ErrClosed after Close.
func (t *Trigger) Start(ctx context.Context) error {
	t.startMu.Lock()
	defer t.startMu.Unlock()
	if t.closed {
		return ErrClosed
	}
	if t.started {
		return ErrStarted
	}
	t.dlqCtx, t.dlqCancel = context.WithCancel(context.Background())
	cl, err := kgo.NewClient(t.clientOpts()...)
	if err != nil {
		return fmt.Errorf("kafka trigger %q: cannot create client: %w", t.cfg.Name, err)
	}
	// The client's group callbacks hand their work to the loop: they wait
	// until it runs, right below.
	t.cl = cl
	go t.loop()
	if err := cl.Ping(ctx); err != nil {
		cl.Close()
		close(t.loopStop)
		<-t.loopDone
		return fmt.Errorf("kafka trigger %q: no broker of %v answers: %w", t.cfg.Name, t.cfg.Brokers, err)
	}
	t.started = true
	pollCtx, cancel := context.WithCancel(context.Background())
	t.pollCancel = cancel
	go t.poll(pollCtx)
	t.log.Info().Strs("topics", t.cfg.Topics).Str("ordering", string(t.cfg.Ordering)).
		Str("dead_letter_topic", t.cfg.DeadLetterTopic).Msg("kafka trigger started")
	return nil
}

// Close stops fetching, lets in-flight batches and dead letters finish
// until ctx ends (then abandons them: their records stay uncommitted and
// are delivered again to the group's next owner), commits the finished
// offsets synchronously and leaves the group, so that its partitions move
// to the group's other members at once. It returns ctx's error when it had
// to abandon work, and commit errors. Close is idempotent.
func (t *Trigger) Close(ctx context.Context) error {
	t.startMu.Lock()
	if t.closed {
		t.startMu.Unlock()
		return nil
	}
	t.closed = true
	started := t.started
	t.startMu.Unlock()
	if !started {
		return nil
	}
	t.pollCancel()
	<-t.pollDone

	var errs []error
	done := make(chan struct{})
	t.ctlCh <- func() { t.beginClose(done) }
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, fmt.Errorf("kafka trigger %q: drain: %w", t.cfg.Name, ctx.Err()))
		abandoned := make(chan struct{})
		t.ctlCh <- func() { t.abandonAll(); close(abandoned) }
		<-abandoned
	}
	if err := t.commitMarked(ctx); err != nil {
		errs = append(errs, err)
	}
	close(t.loopStop)
	<-t.loopDone
	for _, p := range t.parts {
		t.m.set.UnregisterMetric(p.gauge)
	}
	t.dlqCancel()
	t.dlqWG.Wait()
	// Leaving the group hands the partitions over now rather than after
	// the session timeout; the revoke callback finds nothing left to do.
	t.cl.Close()
	t.m.unregister()
	t.log.Info().Msg("kafka trigger closed")
	return errors.Join(errs...)
}

// post hands a message to the loop without blocking: invoker callbacks and
// timers must never wait for it.
func (t *Trigger) post(msg loopMsg) {
	t.inboxMu.Lock()
	t.inbox = append(t.inbox, msg)
	t.inboxMu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

// onDone is every item's Done: it records the item's error on its record
// and hands the dispatch to the loop when its last item is settled.
func (t *Trigger) onDone(it *invoker.Item, o invoker.Outcome) {
	r := it.Ref.(*rec)
	if o.Err != nil && r.err == nil {
		r.err = o.Err
	}
	d := r.d
	if d.left.Add(-1) == 0 {
		t.post(loopMsg{settled: d})
	}
}

// fetchMsg carries decoded records from the poller to the loop.
type fetchMsg struct {
	parts []fetchedPart
	ack   chan struct{}
}

type fetchedPart struct {
	key  tpKey
	hw   int64
	recs []rec // one allocation for the records of one partition's fetch
}

// poll fetches records, decodes them and hands them to the loop. With
// BlockRebalanceOnPoll, no rebalance callback runs between a poll and
// AllowRebalance, so records never reach the loop for a partition that was
// revoked after they were fetched.
func (t *Trigger) poll(ctx context.Context) {
	defer close(t.pollDone)
	ack := make(chan struct{}, 1)
	for {
		// While fetching is paused the poller does not poll at all: a poll
		// would drop the client's buffered data of paused partitions, to be
		// fetched again on resume.
		for !t.canPoll.Load() {
			select {
			case <-t.pollWake:
			case <-ctx.Done():
				t.cl.AllowRebalance()
				return
			}
		}
		// Poll no more than the buffer has room for, so that
		// MaxBufferedRecords holds within a batch.
		n := t.pollMax
		if room := t.maxRecords - int(t.stats.buffered.Load()); room < n {
			n = max(room, t.maxItems)
		}
		fs := t.cl.PollRecords(ctx, n)
		if ctx.Err() != nil || fs.IsClientClosed() {
			t.cl.AllowRebalance()
			return
		}
		fs.EachError(func(topic string, part int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			t.m.fetchErrors.Inc()
			t.slog.Warn().Str("topic", topic).Int32("partition", part).Err(err).Msg("fetch error")
		})
		msg := &fetchMsg{ack: ack}
		now := time.Now()
		var fr formats.Record // reused: decoders do not retain it
		fs.EachPartition(func(fp kgo.FetchTopicPartition) {
			if len(fp.Records) == 0 {
				return
			}
			msg.parts = append(msg.parts, fetchedPart{key: tpKey{fp.Topic, fp.Partition}, hw: fp.HighWatermark, recs: t.decodeAll(fp.Records, &fr, now)})
		})
		if len(msg.parts) > 0 {
			t.fetchCh <- msg
			<-ack
		}
		t.cl.AllowRebalance()
	}
}

// decodeAll decodes the records of one partition's fetch. The records,
// and with a single-event decoder their events and ids, are allocated
// together, a few allocations per fetch rather than three per record, and
// the records and events are recycled (see slab): at a million records a
// second the allocations, and the collections they cause, were most of a
// trigger's cost. It makes one pass over the records: each record is
// zeroed, given its id and decoded in turn, while its memory is in the
// cache, as a slab of a few thousand records is larger than the cache and
// a pass to zero it first, then one to decode, read it from memory twice.
func (t *Trigger) decodeAll(krs []*kgo.Record, fr *formats.Record, now time.Time) []rec {
	sl := t.slabs.get(len(krs))
	recs := sl.recs
	fetched := now.UnixNano()
	into, _ := t.cfg.Decoder.(formats.IntoDecoder)
	first := krs[0] // the records of one partition's fetch share topic and partition
	// The ids of the records, "<topic>-<partition>-<offset>", in one
	// buffer that is only ever appended to, so that an id can be a string
	// of its bytes. Offsets rise within a partition's fetch, so none has
	// more digits than the last and the buffer is sized once; were it
	// grown, the ids already made would keep the old one, never written
	// again.
	var ids []byte
	var prefix string
	if into != nil {
		prefix = formats.RecordIDPrefix(first.Topic, first.Partition)
		ids = make([]byte, 0, len(krs)*(len(prefix)+digits(max(krs[len(krs)-1].Offset, 0))))
	}
	*fr = formats.Record{Topic: first.Topic, Partition: first.Partition}
	var prev int         // where the previous id starts in ids
	var prevOffset int64 // its offset
	for i, kr := range krs {
		r := &recs[i]
		*r = rec{slab: sl, kr: kr, offset: kr.Offset, epoch: kr.LeaderEpoch, fetched: fetched, size: int32(len(kr.Key) + len(kr.Value))}
		fr.Offset, fr.Key, fr.Value, fr.Timestamp, fr.Headers = kr.Offset, kr.Key, kr.Value, kr.Timestamp, nil
		if len(kr.Headers) > 0 {
			fr.Headers = make([]plugins.KafkaHeader, len(kr.Headers))
			for i, h := range kr.Headers {
				fr.Headers[i] = plugins.KafkaHeader{Key: h.Key, Value: h.Value}
				r.size += int32(len(h.Key) + len(h.Value))
			}
		}
		if into == nil {
			t.decode(r, fr)
			continue
		}
		start := len(ids)
		ids = appendNextID(ids, prev, prefix, kr.Offset, i > 0 && kr.Offset == prevOffset+1)
		fr.ID = unsafe.String(&ids[start], len(ids)-start) // bytes of ids are never written twice
		prev, prevOffset = start, kr.Offset
		t.decodeInto(r, into, fr)
	}
	t.m.records.Add(len(krs))
	return recs
}

// appendNextID appends the id of the record at offset to ids, whose
// previous id starts at prev. When the offset follows the previous one
// (next), as it does but after compaction or a transaction marker, the
// previous id is copied and its number incremented in place, which costs a
// fraction of formatting it.
func appendNextID(ids []byte, prev int, prefix string, offset int64, next bool) []byte {
	if !next {
		ids = append(ids, prefix...)
		return strconv.AppendInt(ids, offset, 10)
	}
	start := len(ids)
	ids = append(ids, ids[prev:start]...)
	first := start + len(prefix) // the id's first digit
	j := len(ids) - 1
	for ; j >= first && ids[j] == '9'; j-- {
		ids[j] = '0'
	}
	if j >= first {
		ids[j]++
		return ids
	}
	// 9...9 + 1 = 10...0: one digit more.
	ids[first] = '1'
	return append(ids, '0')
}

// digits returns the number of decimal digits of n >= 0.
func digits(n int64) int {
	d := 1
	for n >= 10 {
		n /= 10
		d++
	}
	return d
}

// decodeInto decodes one record into its own event with a single-event
// decoder, or notes the decoder's error for a poison record.
func (t *Trigger) decodeInto(r *rec, into formats.IntoDecoder, fr *formats.Record) {
	ok, err := t.safeDecodeInto(into, fr, &r.ev)
	switch {
	case err != nil:
		r.ev = plugins.Event{}
		r.poison, r.lastErr = true, fmt.Errorf("cannot decode record: %w", err)
		t.m.poison.Inc()
		return
	case !ok:
		r.ev = plugins.Event{}
		if formats.IsTombstone(fr) {
			t.m.tombstones.Inc()
		}
		return
	case t.cfg.Filter != nil && !t.cfg.Filter(&r.ev):
		r.ev = plugins.Event{}
		t.m.filtered.Inc()
		if formats.IsTombstone(fr) {
			t.m.tombstones.Inc()
		}
		return
	}
	r.one[0] = &r.ev
	r.events = r.one[:]
	r.evSize = int32(r.ev.Size())
}

// decode turns one Kafka record into its events (filtered), or notes the
// decoder's error for a poison record.
func (t *Trigger) decode(r *rec, fr *formats.Record) {
	evs, err := t.safeDecode(fr)
	if err != nil {
		r.poison, r.lastErr = true, fmt.Errorf("cannot decode record: %w", err)
		t.m.poison.Inc()
		return
	}
	if t.cfg.Filter != nil {
		keep := evs[:0]
		for _, ev := range evs {
			if t.cfg.Filter(ev) {
				keep = append(keep, ev)
			} else {
				t.m.filtered.Inc()
			}
		}
		evs = keep
	}
	if len(evs) == 0 {
		if formats.IsTombstone(fr) {
			t.m.tombstones.Inc()
		}
		return
	}
	r.events = evs
	for _, ev := range evs {
		r.evSize += int32(ev.Size())
	}
}

// safeDecodeInto is safeDecode for single-event decoders.
func (t *Trigger) safeDecodeInto(into formats.IntoDecoder, fr *formats.Record, ev *plugins.Event) (ok bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			ok, err = false, fmt.Errorf("decoder panicked: %v", p)
		}
	}()
	return into.DecodeInto(fr, ev)
}

// safeDecode runs the decoder, turning a panic into an error: a decoder bug
// must make a poison record, not kill the gateway.
func (t *Trigger) safeDecode(fr *formats.Record) (evs []*plugins.Event, err error) {
	defer func() {
		if p := recover(); p != nil {
			evs, err = nil, fmt.Errorf("decoder panicked: %v", p)
		}
	}()
	return t.cfg.Decoder.Decode(fr)
}

// Group callbacks. Each hands its work to the loop and waits for it; the
// loop never waits on the group, so this cannot deadlock.

func (t *Trigger) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	done := make(chan struct{})
	if !t.toLoop(func() { t.assign(assigned); close(done) }) {
		return
	}
	<-done
}

func (t *Trigger) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	if len(lost) == 0 {
		return
	}
	done := make(chan struct{})
	if !t.toLoop(func() { t.lose(lost); close(done) }) {
		return
	}
	<-done
	t.log.Warn().Interface("partitions", lost).Msg("partitions lost: their unfinished records go to the next owner uncommitted")
}

// onRevoked lets revoked partitions finish their in-flight batches and
// dead letters (up to RevokeTimeout), then commits their watermarks
// synchronously before the partitions are given up.
func (t *Trigger) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	if len(revoked) == 0 {
		return
	}
	req := &revokeReq{parts: revoked, done: make(chan struct{})}
	if !t.toLoop(func() { t.revoke(req) }) {
		return
	}
	timer := time.NewTimer(t.cfg.RevokeTimeout)
	defer timer.Stop()
	select {
	case <-req.done:
	case <-timer.C:
		t.log.Warn().Dur("revoke_timeout", t.cfg.RevokeTimeout).Interface("partitions", revoked).
			Msg("revoked partitions did not finish in time; abandoning their in-flight records")
		t.toLoop(func() { t.abandonRevoke(req) })
		<-req.done
	}
	if err := t.commitMarked(ctx); err != nil {
		t.log.Error().Err(err).Interface("partitions", revoked).Msg("cannot commit revoked partitions")
	}
}

// toLoop runs fn on the loop goroutine, or reports false when the loop has
// stopped (after Close).
func (t *Trigger) toLoop(fn func()) bool {
	select {
	case t.ctlCh <- fn:
		return true
	case <-t.loopDone:
		return false
	}
}

// onCommit reports the client's periodic commits of the marked
// watermarks; a failed one is retried by the next, as the marks stay.
func (t *Trigger) onCommit(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
	if err = commitErr(resp, err); err != nil && !errors.Is(err, context.Canceled) {
		t.m.commitErrors.Inc()
		t.slog.Warn().Err(err).Msg("cannot commit offsets; retrying with the next commit")
	}
}

// commitMarked synchronously commits the marked watermarks. Called once
// the loop is finished with the partitions being given up (a revoke, or
// Close); the client forgets a revoked partition's marks once the revoke
// callback returns, so no later commit of this trigger touches it.
func (t *Trigger) commitMarked(ctx context.Context) error {
	if ctx == nil || ctx.Err() != nil {
		// A commit of finished work is worth a few seconds past a
		// deadline: without it, all of it is delivered again.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
	}
	if err := t.cl.CommitMarkedOffsets(ctx); err != nil {
		t.m.commitErrors.Inc()
		return fmt.Errorf("kafka trigger %q: commit: %w", t.cfg.Name, err)
	}
	return nil
}

// commitErr returns the request's error or the first partition's error.
func commitErr(resp *kmsg.OffsetCommitResponse, err error) error {
	if err != nil || resp == nil {
		return err
	}
	for _, tp := range resp.Topics {
		for _, p := range tp.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("%s/%d: %w", tp.Topic, p.Partition, err)
			}
		}
	}
	return nil
}
