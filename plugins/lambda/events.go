package lambda

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

// ClientContextExtension is the envelope extension the gateway sets from a
// Lambda invoke request's X-Amz-Client-Context header (base64 of a JSON
// object). The Pool passes the decoded JSON to the runtime as
// Lambda-Runtime-Client-Context, where aws-lambda-go exposes it as
// lambdacontext.ClientContext.
const ClientContextExtension = "clientcontext"

var errNotS3Record = errors.New("lambda: storage event data is not a JSON S3 record")

// isStream reports whether ev is delivered inside a self-managed Kafka event:
// plain Kafka records and Debezium change events.
func isStream(ev *plugins.Event) bool {
	return ev.Type == plugins.TypeKafkaRecord || strings.HasPrefix(ev.Type, plugins.TypeCDCPrefix)
}

// reportsItemFailures reports whether a response to an invocation of ev is
// read for batchItemFailures. The response to an HTTP request is the HTTP
// response and a direct invocation's is returned as it is, as on Lambda.
func reportsItemFailures(ev *plugins.Event) bool {
	return ev.Type != plugins.TypeHTTPRequest && ev.Type != plugins.TypeInvoke
}

var emptyObject = []byte(`{}`)

// appendPayload appends the Lambda event of a single-event invocation of ev
// to dst: an HTTP request's data is already the API Gateway HTTP API payload
// 2.0; a storage record is wrapped as an S3 event; a schedule tick becomes an
// EventBridge Scheduled Event; a direct invocation's payload goes unchanged
// ({} when empty, as Lambda sends); any other event goes as its CloudEvents
// JSON.
func (p *Pool) appendPayload(dst []byte, ev *plugins.Event) ([]byte, error) {
	switch {
	case ev.Type == plugins.TypeHTTPRequest || ev.Type == plugins.TypeInvoke:
		if len(ev.Data) == 0 {
			return append(dst, emptyObject...), nil
		}
		return append(dst, ev.Data...), nil
	case ev.Type == plugins.TypeStorageCreated || ev.Type == plugins.TypeStorageRemoved:
		if !json.Valid(ev.Data) || len(ev.Data) == 0 || ev.Data[0] != '{' {
			return dst, fmt.Errorf("%w (event %s)", errNotS3Record, ev.ID)
		}
		dst = append(dst, `{"Records":[`...)
		dst = append(dst, ev.Data...)
		return append(dst, "]}"...), nil
	case ev.Type == plugins.TypeScheduleTick:
		return p.appendSchedule(dst, ev)
	default:
		return ev.AppendJSON(dst), nil
	}
}

// appendSchedule builds the EventBridge Scheduled Event of a schedule tick.
// EventBridge sends "detail": {}; the tick's payload goes there instead, the
// one place a handler decoding events.EventBridgeEvent can read it.
func (p *Pool) appendSchedule(dst []byte, ev *plugins.Event) ([]byte, error) {
	var d struct {
		Schedule      string          `json:"schedule"`
		ScheduledTime string          `json:"scheduledTime"`
		Payload       json.RawMessage `json:"payload"`
	}
	if len(ev.Data) > 0 {
		if err := json.Unmarshal(ev.Data, &d); err != nil {
			return dst, fmt.Errorf("lambda: schedule event %s: data: %w", ev.ID, err)
		}
	}
	t := ev.Time
	if d.ScheduledTime != "" {
		if st, err := time.Parse(time.RFC3339Nano, d.ScheduledTime); err == nil {
			t = st
		}
	}
	if t.IsZero() {
		t = time.Now()
	}
	name := d.Schedule
	if name == "" {
		name = ev.Subject
	}
	dst = append(dst, `{"version":"0","id":`...)
	dst = plugins.AppendJSONString(dst, ev.ID)
	dst = append(dst, `,"detail-type":"Scheduled Event","source":"aws.events","account":`...)
	dst = plugins.AppendJSONString(dst, p.cfg.Account)
	dst = append(dst, `,"time":"`...)
	dst = t.UTC().AppendFormat(dst, "2006-01-02T15:04:05Z")
	dst = append(dst, `","region":`...)
	dst = plugins.AppendJSONString(dst, p.cfg.Region)
	dst = append(dst, `,"resources":[`...)
	dst = plugins.AppendJSONString(dst, "arn:aws:events:"+p.cfg.Region+":"+p.cfg.Account+":rule/"+name)
	dst = append(dst, `],"detail":`...)
	if len(d.Payload) == 0 || string(d.Payload) == "null" {
		dst = append(dst, emptyObject...)
	} else {
		dst = append(dst, d.Payload...)
	}
	return append(dst, '}'), nil
}

// kafkaKey is the records key of ev in a self-managed Kafka event and the
// "partition" of its batchItemFailures identifier: topic-partition.
func kafkaKey(ev *plugins.Event) string {
	return kafkaTopic(ev) + "-" + strconv.FormatInt(int64(ev.KafkaPartition), 10)
}

// kafkaTopic is ev's topic; an event without one (sluice invoke --as kafka)
// is named by its subject or source.
func kafkaTopic(ev *plugins.Event) string {
	switch {
	case ev.KafkaTopic != "":
		return ev.KafkaTopic
	case ev.Subject != "":
		return ev.Subject
	default:
		return ev.Source
	}
}

// appendKafka appends the self-managed Kafka event carrying evs: records
// grouped by topic-partition in the order the groups first appear, each
// group in batch order. keys[i] is kafkaKey(evs[i]). A record's key is the
// envelope's partitionkey, its value the envelope's data (for a change event
// the normalized Debezium value), both base64; headers are arrays of signed
// byte values, as Lambda's Java serializer writes them.
func (p *Pool) appendKafka(dst []byte, evs []*plugins.Event, keys []string) []byte {
	dst = append(dst, `{"eventSource":"SelfManagedKafka","bootstrapServers":`...)
	dst = plugins.AppendJSONString(dst, strings.Join(p.cfg.BootstrapServers, ","))
	dst = append(dst, `,"records":{`...)
	done := make([]bool, len(evs))
	now := time.Now()
	first := true
	for i := range evs {
		if done[i] {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = plugins.AppendJSONString(dst, keys[i])
		dst = append(dst, ":["...)
		for j := i; j < len(evs); j++ {
			if done[j] || keys[j] != keys[i] {
				continue
			}
			done[j] = true
			if j != i {
				dst = append(dst, ',')
			}
			dst = appendKafkaRecord(dst, evs[j], now)
		}
		dst = append(dst, ']')
	}
	return append(dst, "}}"...)
}

func appendKafkaRecord(dst []byte, ev *plugins.Event, now time.Time) []byte {
	t := ev.Time
	if t.IsZero() {
		t = now
	}
	dst = append(dst, `{"topic":`...)
	dst = plugins.AppendJSONString(dst, kafkaTopic(ev))
	dst = append(dst, `,"partition":`...)
	dst = strconv.AppendInt(dst, int64(ev.KafkaPartition), 10)
	dst = append(dst, `,"offset":`...)
	dst = strconv.AppendInt(dst, ev.KafkaOffset, 10)
	dst = append(dst, `,"timestamp":`...)
	dst = strconv.AppendInt(dst, t.UnixMilli(), 10)
	dst = append(dst, `,"timestampType":"CREATE_TIME"`...)
	if ev.PartitionKey != "" {
		dst = append(dst, `,"key":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, []byte(ev.PartitionKey))
		dst = append(dst, '"')
	}
	if ev.Data != nil {
		dst = append(dst, `,"value":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, ev.Data)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"headers":[`...)
	for i, h := range ev.KafkaHeaders {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '{')
		dst = plugins.AppendJSONString(dst, h.Key)
		dst = append(dst, ":["...)
		for k, c := range h.Value {
			if k > 0 {
				dst = append(dst, ',')
			}
			dst = strconv.AppendInt(dst, int64(int8(c)), 10)
		}
		dst = append(dst, "]}"...)
	}
	return append(dst, "]}"...)
}

// xrayTraceID converts a W3C traceparent to the X-Ray trace header Lambda
// passes as Lambda-Runtime-Trace-Id, or "" for a malformed one.
func xrayTraceID(tp string) string { return plugins.XRayTraceID(tp) }

// clientContext returns the decoded client context of ev, or "".
func clientContext(ev *plugins.Event) string {
	s, _ := ev.Extensions[ClientContextExtension].(string)
	if s == "" {
		return ""
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return ""
	}
	// A header value cannot hold a line break.
	var buf bytes.Buffer
	if json.Compact(&buf, b) != nil {
		return ""
	}
	return buf.String()
}
