// Package schedule computes the ticks of a schedule trigger: a cron
// expression (robfig/cron/v3's standard five fields, or a descriptor such
// as @hourly or @every 30s) in an optional IANA timezone, or a fixed rate.
//
// It is pure arithmetic on time.Time: no timers, no goroutines, no Kafka.
// Every instance of a cluster computes the same tick times from the same
// configuration, which is what lets the Kafka-coordinated scheduler agree
// on "the tick of 12:05" and fire it once: rates and @every are aligned to
// the Unix epoch rather than to when an instance started, and cron
// expressions default to UTC rather than the host's local zone.
//
// Across daylight-saving changes a cron schedule behaves like Vixie cron:
// when clocks spring forward, a tick whose local time does not exist that
// day fires once at the first instant after the gap (a 02:30 job runs at
// 03:00); when clocks fall back, a tick whose local time occurs twice
// fires only the first time, unless the expression names every hour
// ("0 * * * *", "*/15 * * * *"), whose ticks stay evenly spaced in real
// time and so fire in both passes of the repeated hour.
package schedule
