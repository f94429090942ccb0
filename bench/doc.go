// Package bench is the load generator behind `sluice bench http` and
// `sluice bench kafka`, the ceiling servers, and the suite `make bench`
// runs: every figure is printed beside a ceiling measured in the same run
// (a bare fasthttp handler, raw franz-go consumption), as a ratio, because
// absolute numbers from a shared machine mean little.
//
// The Kafka scenarios of the suite read one embedded broker, served by a
// `sluice serve` that runs nothing else: a bare franz-go consumer in the
// suite's process (the ceiling) and a gateway with a Kafka trigger into the
// builtin noop each consume the same million records from it; then a
// gateway whose trigger invokes the builtin latency function is fed as
// fast as the broker acknowledges, which gives the rate the whole pipeline
// (producer, broker, trigger, function, sharing the machine) sustains, and
// then open-loop at half that rate, each record stamped with its due time,
// for the latency from produce to invocation; last a gateway drains a
// large backlog into a slow function while its resident memory is sampled. Gateways report through their admin
// /metrics, which the suite reads.
//
// Package bench registers one builtin function, "latency" (LatencyHandler):
// the sluice binary links this package, so any config may use it to watch
// how old events are when invoked, in sluice_event_age_seconds.
//
// Nothing imports bench but cmd/sluice.
package bench
