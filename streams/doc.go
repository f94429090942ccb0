// Package streams runs Kafka triggers: franz-go consumer groups whose
// records become invocations of one function, with at-least-once delivery,
// order per partition or per key, backpressure and dead letters. It also
// holds the embedded development broker (kfake) and the Publisher behind
// durable asynchronous HTTP invocations.
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
// contiguous watermark per partition, committed asynchronously every
// CommitInterval, and synchronously when partitions are revoked and at
// Close. A record that finally fails is produced to the dead-letter topic
// with its key, value and headers plus sluice-error, sluice-function,
// sluice-attempts, sluice-origin and sluice-trigger headers, and only then
// counts as done; if that produce fails it is retried, and the watermark
// never passes the record meanwhile.
//
// # Backpressure
//
// Fetching pauses (PauseFetchTopics) while the function's queue is above
// three quarters of its capacity or the trigger buffers more than
// MaxBufferedRecords records or MaxBufferedBytes bytes, and resumes once the
// queue is under a quarter and the buffers under half. A single partition
// whose lane is stuck on a failing record is paused on its own
// (PauseFetchPartitions) once it holds its share of the buffer, so the
// other partitions keep flowing.
package streams
