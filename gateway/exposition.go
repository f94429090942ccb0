package gateway

import (
	"bytes"
	"io"
	"strings"
	"sync"

	"github.com/VictoriaMetrics/metrics"
)

// WriteMetrics writes every registered metrics set, the process's Go and
// process metrics and every registered metrics writer (custom metrics) as
// the Prometheus text format a Prometheus parser accepts whole: each family
// once, contiguous, with its # HELP and # TYPE. VictoriaMetrics/metrics
// writes each set on its own, so a family whose series live in several
// sets (one set per function) would come out in pieces, each with its own
// TYPE, which Prometheus' parser rejects; WriteMetrics regroups them.
// It is safe for concurrent use.
func WriteMetrics(w io.Writer) {
	metrics.ExposeMetadata(true)
	bb := expoPool.Get().(*bytes.Buffer)
	bb.Reset()
	metrics.WritePrometheus(bb, true)
	out := regroup(bb.Bytes())
	expoPool.Put(bb)
	_, _ = w.Write(out)
}

var expoPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

type expoFamily struct {
	name, typ, help string
	samples         []byte
}

// regroup parses text exposition and writes it back one family at a time,
// in the order families first appear, with help from familyHelp when the
// writer gave none. A sample whose family was never typed gets a type by
// its name: counter for _total, gauge otherwise.
func regroup(in []byte) []byte {
	var order []*expoFamily
	byName := map[string]*expoFamily{}
	get := func(name string) *expoFamily {
		f := byName[name]
		if f == nil {
			f = &expoFamily{name: name}
			byName[name] = f
			order = append(order, f)
		}
		return f
	}
	for len(in) > 0 {
		var line []byte
		if i := bytes.IndexByte(in, '\n'); i >= 0 {
			line, in = in[:i], in[i+1:]
		} else {
			line, in = in, nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if line[0] == '#' {
			fields := strings.SplitN(string(line), " ", 4)
			if len(fields) < 3 {
				continue
			}
			f := get(fields[2])
			switch fields[1] {
			case "TYPE":
				if len(fields) == 4 && f.typ == "" {
					f.typ = strings.TrimSpace(fields[3])
				}
			case "HELP":
				if len(fields) == 4 && f.help == "" {
					f.help = strings.TrimSpace(fields[3])
				}
			}
			continue
		}
		name := string(line)
		if i := strings.IndexAny(name, "{ "); i >= 0 {
			name = name[:i]
		}
		f := byName[name]
		if f == nil {
			for _, suf := range [...]string{"_bucket", "_sum", "_count"} {
				base, ok := strings.CutSuffix(name, suf)
				if !ok {
					continue
				}
				if bf := byName[base]; bf != nil && (bf.typ == "histogram" || bf.typ == "summary") {
					f = bf
				}
				break
			}
		}
		if f == nil {
			f = get(name)
		}
		f.samples = append(f.samples, line...)
		f.samples = append(f.samples, '\n')
	}
	var out []byte
	for _, f := range order {
		if len(f.samples) == 0 {
			continue
		}
		typ := f.typ
		if typ == "" {
			typ = "gauge"
			if strings.HasSuffix(f.name, "_total") {
				typ = "counter"
			}
		}
		help := f.help
		if help == "" {
			help = familyHelp[f.name]
		}
		if help == "" {
			help = strings.ReplaceAll(f.name, "_", " ") + "."
		}
		out = append(out, "# HELP "+f.name+" "+escapeHelp(help)+"\n# TYPE "+f.name+" "+typ+"\n"...)
		out = append(out, f.samples...)
	}
	return out
}

var helpEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`)

func escapeHelp(s string) string { return helpEscaper.Replace(s) }

// familyHelp is the HELP text of Sluice's own families.
var familyHelp = map[string]string{
	"sluice_invocations_total":              "Events invoked, by function, trigger and outcome (success, error, timeout, crash, abandoned).",
	"sluice_invocation_duration_seconds":    "Duration of one batch invocation of a function's worker.",
	"sluice_batch_size":                     "Events per batch dispatched to a function's worker.",
	"sluice_billed_seconds_total":           "Billed duration of invocations, each event's rounded up to the millisecond as Lambda bills.",
	"sluice_gb_seconds_total":               "Memory times billed duration of invocations, in GB-seconds as Lambda bills (memory in GiB).",
	"sluice_throttles_total":                "Events refused because the function's queue was full.",
	"sluice_dead_letters_total":             "Events written to the function's dead letter.",
	"sluice_retries_total":                  "Retries of failed events.",
	"sluice_bisects_total":                  "Batches split in two after failing as a whole.",
	"sluice_queue_depth":                    "Events waiting in the function's queue.",
	"sluice_concurrent_executions":          "Batches of the function in flight.",
	"sluice_worker_restarts_total":          "Worker processes or runtimes replaced after a crash, hang or exit.",
	"sluice_reloads_total":                  "Reloads of the gateway, by result.",
	"sluice_http_requests_total":            "HTTP requests served, by route and status code.",
	"sluice_http_request_duration_seconds":  "HTTP request duration, by route.",
	"sluice_filtered_total":                 "Events a trigger's filter dropped.",
	"sluice_kafka_records_total":            "Kafka records a trigger consumed.",
	"sluice_kafka_lag_records":              "Records a trigger's consumer group is behind the end of its partitions.",
	"sluice_kafka_published_total":          "Records published to Kafka (async invocations, dead letters).",
	"sluice_kafka_paused":                   "1 while a trigger has stopped fetching for backpressure.",
	"sluice_kafka_pauses_total":             "Times a trigger stopped fetching for backpressure.",
	"sluice_kafka_buffered_records":         "Records a trigger holds, fetched and not yet committed.",
	"sluice_kafka_retries_total":            "Retries of records a function failed.",
	"sluice_kafka_bisects_total":            "Failing record groups split in two.",
	"sluice_kafka_dead_letters_total":       "Records written to a dead-letter topic.",
	"sluice_kafka_dead_letter_errors_total": "Records that could not be written to a dead-letter topic.",
	"sluice_kafka_commit_errors_total":      "Offset commits that failed.",
	"sluice_kafka_fetch_errors_total":       "Fetches that failed.",
	"sluice_kafka_poison_records_total":     "Records a trigger could not decode.",
	"sluice_kafka_dropped_records_total":    "Records dropped without an invocation.",
	"sluice_kafka_connects_total":           "Connections the Kafka clients opened, by broker.",
	"sluice_kafka_connect_errors_total":     "Connections to a broker the Kafka clients failed to open.",
	"sluice_kafka_disconnects_total":        "Connections to a broker the Kafka clients closed or lost.",
	"sluice_kafka_write_bytes_total":        "Bytes the Kafka clients wrote to a broker.",
	"sluice_kafka_write_errors_total":       "Requests the Kafka clients failed to write to a broker.",
	"sluice_kafka_read_bytes_total":         "Bytes the Kafka clients read from a broker.",
	"sluice_kafka_read_errors_total":        "Responses the Kafka clients failed to read from a broker.",
	"sluice_kafka_request_duration_seconds": "Time from writing a Kafka request to having read its response, by broker.",
	"sluice_kafka_throttle_seconds":         "Time a broker throttled the Kafka clients.",
	"sluice_kafka_fetch_records_total":      "Records the Kafka clients fetched, by topic.",
	"sluice_kafka_fetch_bytes_total":        "Uncompressed bytes of the records the Kafka clients fetched, by topic.",
	"sluice_kafka_produce_records_total":    "Records the Kafka clients produced, by topic.",
	"sluice_kafka_produce_bytes_total":      "Uncompressed bytes of the records the Kafka clients produced, by topic.",
	"sluice_cdc_tombstones_total":           "Debezium tombstone records skipped.",
	"sluice_schedule_ticks_total":           "Schedule ticks fired.",
	"sluice_schedule_errors_total":          "Schedule ticks that failed.",
	"sluice_schedule_owner":                 "1 on the instance that fires the schedule.",
	"sluice_schedule_takeovers_total":       "Times this instance took over firing a schedule.",
	"sluice_schedule_last_fired_seconds":    "Unix time the schedule last fired.",
	"sluice_cold_starts_total":              "Instances started to serve an invocation (cold starts).",
	"sluice_init_duration_seconds":          "Time an instance took to initialise before its first invocation.",
	"sluice_instances":                      "Instances of the function, by state.",
	"sluice_oom_kills_total":                "Instances killed for going over the function's memory limit.",
	"sluice_custom_metrics_dropped_total":   "Custom metric data dropped: a new series over the function's cap, or an unknown unit.",
	"sluice_trace_spans_exported_total":     "Spans the OTLP collector accepted.",
	"sluice_trace_spans_dropped_total":      "Spans dropped: the export queue was full or the export failed.",
	"sluice_event_age_seconds":              "Age of events when invoked, observed by the bench latency function.",
}
