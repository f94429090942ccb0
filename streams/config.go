package streams

import (
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/streams/formats"
)

// Ordering says which records of a partition may be invoked in parallel.
type Ordering string

// Orderings.
const (
	// OrderingPartition keeps every record of a partition in order: one
	// batch in flight per partition. The default.
	OrderingPartition Ordering = "partition"
	// OrderingKey keeps the records of each key in order and runs different
	// keys of one partition in parallel (keys are hashed into
	// Config.Parallelism lanes). Records without a key share one lane.
	OrderingKey Ordering = "key"
	// OrderingNone runs runs of up to batch.max_items consecutive records
	// in parallel, up to Config.Parallelism per partition; a record being
	// retried holds back only its own run.
	OrderingNone Ordering = "none"
)

// Start says where a consumer group without committed offsets begins.
type Start string

// Starts.
const (
	// StartEarliest begins at the oldest record: nothing produced before
	// the group first ran is missed. The default.
	StartEarliest Start = "earliest"
	// StartLatest begins at the end of each partition.
	StartLatest Start = "latest"
)

// Defaults of Config.
const (
	DefaultName           = "kafka"
	DefaultCommitInterval = time.Second
	DefaultRevokeTimeout  = 20 * time.Second
	// DeadLetterSuffix follows the group name in the default dead-letter
	// topic.
	DeadLetterSuffix = ".dlq"
)

// Config is one Kafka trigger. Its zero value is not usable: Brokers,
// Topics and Group are required; every other zero field takes the default
// its comment names.
type Config struct {
	// Name names the trigger in logs and metrics (the trigger label of
	// sluice_invocations_total, sluice_filtered_total...). Defaults to
	// "kafka". Give every trigger of one process its own name.
	Name string
	// Brokers are the seed brokers ("host:port"). Required.
	Brokers []string
	// ClientOpts are passed to kgo.NewClient after Sluice's own options, so
	// they win: SASL, TLS, client id, fetch sizes...
	ClientOpts []kgo.Opt
	// Topics are consumed. Required.
	Topics []string
	// Group is the consumer group. Required.
	Group string
	// Start is where a group without committed offsets begins. Defaults to
	// StartEarliest.
	Start Start
	// Ordering defaults to OrderingPartition.
	Ordering Ordering
	// Decoder turns records into events. Defaults to formats.Raw{}.
	Decoder formats.Decoder
	// Filter, when set, is called with every decoded event; events for
	// which it returns false are skipped (their records still count as
	// done and are committed) and counted in sluice_filtered_total. It is
	// called from one goroutine at a time and must not retain the event.
	Filter func(*plugins.Event) bool
	// DeadLetterTopic receives records that finally failed and poison
	// records. Defaults to Group + ".dlq".
	DeadLetterTopic string
	// Parallelism is the most batches in flight per partition with
	// OrderingKey and OrderingNone. Defaults to the function's concurrency.
	Parallelism int
	// CommitInterval is how often finished offsets are committed.
	// Defaults to 1s; at least 100ms, the client's floor.
	CommitInterval time.Duration
	// RevokeTimeout bounds how long revoked partitions wait for their
	// in-flight batches and dead letters before they are abandoned (their
	// unfinished records are then delivered again by the next owner). Keep
	// it under the group's rebalance timeout (kgo's default is 60s).
	// Defaults to 20s.
	RevokeTimeout time.Duration
	// MaxBufferedRecords bounds the records fetched but not yet committed
	// (a poll may pass it by less than batch.max_items).
	// Defaults to the larger of sixteen times the function's queue and
	// 32 times its batch.max_items (16384 with the function defaults):
	// enough to keep every partition's next batch ready while the client
	// fetches more. MaxBufferedBytes usually binds first for large records.
	MaxBufferedRecords int
	// MaxBufferedBytes bounds the bytes of records fetched but not yet
	// done. Defaults to eight times the function's batch.max_bytes.
	MaxBufferedBytes int
	// PoisonEvents is a debug option: once a record is done (every Done of
	// its events ran), its events are overwritten by plugins.Poison before
	// they are reused, so that a function that kept its *plugins.Event
	// reads an obviously wrong event instead of another record's. It costs
	// an allocation per event.
	PoisonEvents bool
}

// Validate reports every field out of range, naming its config key.
func (c *Config) Validate() error {
	var errs []error
	check := func(bad bool, key, format string, args ...any) {
		if bad {
			errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
		}
	}
	check(len(c.Brokers) == 0, "kafka.brokers", "at least one broker is required")
	for _, b := range c.Brokers {
		check(b == "", "kafka.brokers", "must not hold an empty address")
	}
	check(len(c.Topics) == 0, "topics", "at least one topic is required")
	for _, tp := range c.Topics {
		check(tp == "", "topics", "must not hold an empty topic")
	}
	check(c.Group == "", "group", "is required")
	check(c.Start != "" && c.Start != StartEarliest && c.Start != StartLatest, "start", "must be earliest or latest, got %q", c.Start)
	check(c.Ordering != "" && c.Ordering != OrderingPartition && c.Ordering != OrderingKey && c.Ordering != OrderingNone,
		"ordering", "must be partition, key or none, got %q", c.Ordering)
	check(c.Parallelism < 0, "parallelism", "must not be negative, got %d", c.Parallelism)
	check(c.CommitInterval < 0, "commit_interval", "must not be negative, got %s", c.CommitInterval)
	check(c.RevokeTimeout < 0, "revoke_timeout", "must not be negative, got %s", c.RevokeTimeout)
	check(c.MaxBufferedRecords < 0, "max_buffered_records", "must not be negative, got %d", c.MaxBufferedRecords)
	check(c.MaxBufferedBytes < 0, "max_buffered_bytes", "must not be negative, got %d", c.MaxBufferedBytes)
	for _, tp := range c.Topics {
		dlq := c.DeadLetterTopic
		if dlq == "" {
			dlq = c.Group + DeadLetterSuffix
		}
		check(tp == dlq, "dead_letter.topic", "%q is also consumed by the trigger: failed records would loop", dlq)
	}
	return errors.Join(errs...)
}

// withDefaults returns c with its zero fields set, given the function's
// policy (defaults applied).
func (c Config) withDefaults(fn fnLimits) Config {
	if c.Name == "" {
		c.Name = DefaultName
	}
	if c.Start == "" {
		c.Start = StartEarliest
	}
	if c.Ordering == "" {
		c.Ordering = OrderingPartition
	}
	if c.Decoder == nil {
		c.Decoder = formats.Raw{}
	}
	if c.DeadLetterTopic == "" {
		c.DeadLetterTopic = c.Group + DeadLetterSuffix
	}
	if c.Parallelism == 0 {
		c.Parallelism = max(1, fn.concurrency)
	}
	if c.CommitInterval == 0 {
		c.CommitInterval = DefaultCommitInterval
	}
	if c.RevokeTimeout == 0 {
		c.RevokeTimeout = DefaultRevokeTimeout
	}
	if c.MaxBufferedRecords == 0 {
		c.MaxBufferedRecords = max(16*fn.queue, 32*fn.maxItems)
	}
	if c.MaxBufferedBytes == 0 {
		c.MaxBufferedBytes = 8 * fn.maxBytes
	}
	return c
}

// fnLimits are the parts of the function's policy the trigger sizes itself
// by.
type fnLimits struct {
	concurrency, queue, maxItems, maxBytes int
}
