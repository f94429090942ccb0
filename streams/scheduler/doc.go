// Package scheduler fires schedule triggers into their functions, once per
// tick across a cluster when the instances share a Kafka cluster. The
// schedule maths (cron, rates, timezones) is package streams/schedule.
//
// A Scheduler fires schedule triggers (cron or rate, computed by package
// schedule) into their functions as sluice.schedule.tick events whose id,
// NAME@SCHEDULED_TIME, is the same wherever and however often a tick
// fires, so a duplicate is detectable. Rates are aligned to the Unix epoch
// and cron expressions default to UTC, so every instance agrees on the
// ticks. The owner wakes at each tick with a timer, not by polling.
//
// Without Kafka (Config.Brokers empty) every instance fires every
// tick on its own: N replicas fire each tick N times, and nothing is
// remembered across restarts, so nothing is caught up.
//
// With Kafka, the instances that share the coordination topic
// (sluice.schedules: one partition, compacted, created when missing) and
// group (sluice-schedules) fire each tick once between them. The member of
// the group that owns partition 0 is the owner; the others wait. A new
// owner (at startup, or when the previous one closed, crashed or lost the
// group) first initializes the transactional id named after the group,
// which aborts the previous owner's unfinished write and refuses all its
// later ones, so that an owner that has not yet noticed it was replaced
// cannot fire; then it reads the topic to learn each schedule's last tick.
// For every tick it then records "firing" (a transaction, acks=all),
// submits the tick to the function, and records "fired". The records are
// JSON, keyed by schedule name:
//
//	{"tick":"2024-05-01T10:05:00Z","state":"fired","fired_at":"2024-05-01T10:05:00.004Z","instance":"host-1234"}
//
// A record without a state counts as fired, so an operator can set a
// schedule's last tick with any producer. The empty key holds the last
// takeover: {"owner":INSTANCE,"since":TIME}.
//
// Delivery is at least once up to the function's queue: a tick left
// "firing" by an owner that died is fired again by the next, so no tick is
// lost between the record and the submit; it reaches the function twice
// only when the owner died after the submit and before recording "fired"
// (both events carry the same id). A tick accepted by the invoker but not
// yet run when the process dies is lost like any event of an in-memory
// queue; function errors are retried and dead-lettered as for asynchronous
// invocations. When an owner closes, it finishes its tick in flight and
// leaves the group, and another instance takes over within about a
// heartbeat (1s).
//
// Ticks that no instance fired on time (none was up, the owner changed
// between two ticks, or the owner fell two ticks behind) are coalesced:
// with catch_up (the default) the latest of them is fired once, late,
// counted as caught_up, and the older ones as skipped; with catch_up:
// false they are all skipped and the schedule resumes at its next tick.
// A catch-up looks back at most CatchUpWindow (24h). A schedule that was
// never fired has nothing to catch up; a renamed schedule is a new one;
// the records of removed schedules are ignored. The owner fires the
// schedules of its own configuration, with its own clock.
//
// Kafka needs transactions (Kafka 2.4 or later, Redpanda): on a secured cluster
// the instances need WRITE and DESCRIBE on the transactional id Group, on
// top of READ on the group and READ, WRITE and DESCRIBE on the topic (and
// CREATE, or a pre-created topic).
//
// A Scheduler exports sluice_schedule_ticks_total{schedule,outcome} with
// outcome fired, caught_up or skipped; sluice_schedule_last_fired_seconds
// {schedule} (the scheduled time of the last tick this instance knows
// fired, Unix seconds); sluice_filtered_total{trigger=SCHEDULE};
// sluice_schedule_owner (1 while this instance fires);
// sluice_schedule_takeovers_total and sluice_schedule_errors_total
// (coordination failures, each followed by a new takeover after a
// backoff). It logs one line per fired tick with schedule, function,
// scheduled_time, lag_ms and outcome.
package scheduler
