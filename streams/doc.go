// Package streams runs Kafka triggers: franz-go consumer groups whose
// records become invocations of one function, with at-least-once delivery,
// order per partition or per key, backpressure and dead letters. It also
// holds the embedded development broker (kfake) and the Publisher behind
// durable asynchronous HTTP invocations. Schedule triggers are package
// streams/scheduler.
//
// # Delivery
//
// A Trigger consumes its topics in one consumer group (cooperative-sticky
// balancing), decodes each record with a formats.Decoder, and submits the
// events to the function's invoker in groups that are dispatched whole and
// in order (invoker.Function.SubmitGroup). The trigger, not the invoker,
// owns retries, bisection, max_age and dead letters, so that order holds:
// records are split into lanes (one per partition with ordering
// "partition", one per key hash with "key", one per run of offsets with
// "none"), each lane has at most one batch in flight, and a lane replays
// from its first failed record.
//
// Replaying from the first failure is Lambda's stream semantics: when
// record i of a batch fails, records before i are done and record i and
// everything after it are delivered again, even those that succeeded in
// the failed batch. The function may thus see a record twice, but never a
// record of a lane after a later one as the last thing it saw: for a
// change-data-capture consumer, the rows of one key are applied in order
// and the last applied row is always the newest.
//
// An offset is committed only when every record below it is done
// (succeeded, filtered out, or written to the dead-letter topic): a
// contiguous watermark per partition, marked in the client
// (kgo.AutoCommitMarks) and committed by it every CommitInterval, and
// synchronously (CommitMarkedOffsets) when partitions are revoked and at
// Close. A record that finally fails is produced to the dead-letter topic
// with its key, value and headers plus sluice-error, sluice-function,
// sluice-attempts, sluice-origin and sluice-trigger headers, and only then
// counts as done; if that produce fails it is retried, and the watermark
// never passes the record meanwhile.
//
// # Backpressure
//
// Fetching pauses (PauseFetchTopics) while the function's queue is above
// three quarters of its capacity or the trigger buffers MaxBufferedRecords
// records or MaxBufferedBytes bytes, and resumes once the queue is under a
// quarter and the buffers under half. While paused the trigger does not
// poll at all, so the client keeps (and does not refetch) what it already
// fetched, and memory stays bounded by the buffers plus one fetch
// (FetchMaxBytes, derived from MaxBufferedBytes) per broker. A partition
// that is stuck (a lane retrying or bisecting, or a dead letter not yet
// written) and holds more than two batches is paused on its own
// (PauseFetchPartitions) so that the others keep flowing. A poll takes no
// more records than the buffer has room for (at least one batch), so the
// buffered records exceed MaxBufferedRecords by less than batch.max_items.
//
// The buffer is filled in the order fetches bring records, and a broker
// returns one partition's data in runs as large as the producer's batches:
// with a slow function behind a large backlog, the buffer can hold the
// records of a few partitions only, and fewer lanes run than there are
// partitions until those drain.
//
// # Cost
//
// The records of one partition's fetch are decoded together into one slab
// (records with their events, and their ids; see decodeAll), and the slab
// is recycled, events included, once the watermark has passed all its
// records: a function does not keep its *plugins.Event after it returns
// (plugins.Handler). The client's record slices are pooled too
// (kgo.PoolRecords), and dispatches and the invoker.Items in them are
// recycled once settled. Garbage collection is still a large part of what
// a record costs, which is why `sluice serve` runs with GOGC=400 and a
// 256 MiB soft memory limit unless GOGC or GOMEMLIMIT are set.
//
// # Retries and max_age
//
// The function's retry policy applies per record: attempts counts the
// invocations of a record that failed (its own error, or a failure of its
// whole batch); backoff doubles with jitter up to max_backoff; bisect
// splits a batch that failed as a whole (a crash or a timeout) until the
// bad record stands alone, and halves do not count as attempts; without
// bisect, a batch that failed as a whole and is out of attempts is
// dead-lettered whole, as on Lambda. max_age is counted from when this
// trigger first fetched the record, as the invoker counts it from Submit:
// a record still failing after max_age goes to the dead-letter topic
// instead of being retried. It is not the record's age in the topic, so a
// new consumer group reading an old backlog from the start does not
// dead-letter it.
//
// # Metrics
//
// Each trigger exports, in the set given in Deps:
// sluice_kafka_lag_records{group,topic,partition} (high watermark minus
// commit watermark), sluice_filtered_total{trigger},
// sluice_kafka_records_total, sluice_kafka_poison_records_total,
// sluice_kafka_retries_total, sluice_kafka_bisects_total,
// sluice_kafka_dead_letters_total, sluice_kafka_dead_letter_errors_total,
// sluice_kafka_fetch_errors_total, sluice_kafka_commit_errors_total,
// sluice_kafka_pauses_total, sluice_kafka_dropped_records_total (records
// of partitions no longer owned) {trigger}, and the gauges
// sluice_kafka_buffered_records and sluice_kafka_paused {trigger}. Dead
// letters are also added to the function's own sluice_dead_letters_total
// (invoker.Function.AddDeadLetters), so that one series counts all of them.
package streams
