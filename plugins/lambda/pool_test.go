package lambda

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sluicehq/sluice/plugins"
)

func TestEnvironmentAndInvocationHeaders(t *testing.T) {
	t.Setenv("SLUICE_TEST_GATEWAY_SECRET", "must-not-leak")
	p, _ := startPool(t, "env-fn", Config{
		Command: []string{fn(t, "env")},
		Env:     map[string]string{"GREETING": "hello", "LANG": "C.UTF-8"},
		Memory:  200 << 20, // 200 MiB: advertised as 200
		Timeout: 2500 * time.Millisecond,
		Region:  "eu-west-3",
	})
	ev := invokeEvent(`{}`)
	ev.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	ev.Extensions = map[string]any{
		ClientContextExtension: base64.StdEncoding.EncodeToString([]byte(`{"client":{},"env":{},"custom":{"tenant":"acme"}}`)),
	}
	b, err := invoke(p, 10*time.Second, ev)
	if err != nil || b.Results[0].Err != nil {
		t.Fatalf("invoke: %v %v", err, b.Results[0].Err)
	}
	var got struct {
		Env           map[string]string `json:"env"`
		RequestID     string            `json:"request_id"`
		FunctionARN   string            `json:"function_arn"`
		DeadlineMS    int64             `json:"deadline_ms"`
		TraceID       string            `json:"trace_id"`
		ClientContext map[string]string `json:"client_context"`
	}
	if err := json.Unmarshal(b.Results[0].Output, &got); err != nil {
		t.Fatalf("%v: %s", err, b.Results[0].Output)
	}
	want := map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME":        "env-fn",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "200",
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     "3",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/env-fn",
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"AWS_REGION":                      "eu-west-3",
		"AWS_DEFAULT_REGION":              "eu-west-3",
		"_HANDLER":                        "env",
		"TZ":                              "UTC",
		"GREETING":                        "hello",
		"LANG":                            "C.UTF-8",
		"PATH":                            os.Getenv("PATH"),
	}
	for k, v := range want {
		if got.Env[k] != v {
			t.Errorf("env %s = %q, want %q", k, got.Env[k], v)
		}
	}
	if !strings.HasPrefix(got.Env["AWS_LAMBDA_RUNTIME_API"], "127.0.0.1:") {
		t.Errorf("AWS_LAMBDA_RUNTIME_API = %q", got.Env["AWS_LAMBDA_RUNTIME_API"])
	}
	if !strings.Contains(got.Env["AWS_LAMBDA_LOG_STREAM_NAME"], "/[$LATEST]") {
		t.Errorf("AWS_LAMBDA_LOG_STREAM_NAME = %q", got.Env["AWS_LAMBDA_LOG_STREAM_NAME"])
	}
	if wd, _ := os.Getwd(); got.Env["LAMBDA_TASK_ROOT"] != wd {
		t.Errorf("LAMBDA_TASK_ROOT = %q, want %q", got.Env["LAMBDA_TASK_ROOT"], wd)
	}
	// aws-lambda-go sets _X_AMZN_TRACE_ID itself, from the trace header.
	allowed := map[string]bool{"_X_AMZN_TRACE_ID": true, "HOME": true, "AWS_LAMBDA_RUNTIME_API": true, "AWS_LAMBDA_LOG_STREAM_NAME": true, "LAMBDA_TASK_ROOT": true}
	for k := range got.Env {
		if _, ok := want[k]; !ok && !allowed[k] {
			t.Errorf("unexpected variable %s=%q in the runtime's environment", k, got.Env[k])
		}
	}
	if got.RequestID != ev.ID {
		t.Errorf("request id = %q, want the envelope id %q", got.RequestID, ev.ID)
	}
	if got.FunctionARN != "arn:aws:lambda:eu-west-3:000000000000:function:env-fn" || got.FunctionARN != p.ARN() {
		t.Errorf("function ARN = %q", got.FunctionARN)
	}
	if got.DeadlineMS != b.Deadline.UnixMilli() {
		t.Errorf("deadline = %d, want %d", got.DeadlineMS, b.Deadline.UnixMilli())
	}
	if got.TraceID != "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1" {
		t.Errorf("trace id = %q", got.TraceID)
	}
	if got.ClientContext["tenant"] != "acme" {
		t.Errorf("client context custom = %v", got.ClientContext)
	}
}

// events of every source, as the gateway and the triggers build them.
func httpEvent() *plugins.Event {
	return &plugins.Event{
		ID: plugins.NewID(), Source: "sluice/http", Type: plugins.TypeHTTPRequest,
		DataContentType: "application/json",
		Data: []byte(`{"version":"2.0","routeKey":"POST /echo/{id}","rawPath":"/echo/42","rawQueryString":"a=1&b=2",` +
			`"cookies":["session=abc"],"headers":{"content-type":"text/plain","x-test":"yes"},` +
			`"queryStringParameters":{"a":"1","b":"2"},"pathParameters":{"id":"42"},` +
			`"requestContext":{"http":{"method":"POST","path":"/echo/42","protocol":"HTTP/1.1","sourceIp":"127.0.0.1","userAgent":"go-test"}},` +
			`"body":"aGVsbG8=","isBase64Encoded":true}`),
	}
}

func storageEvent(key string) *plugins.Event {
	return &plugins.Event{
		ID: plugins.NewID(), Source: "sluice/storage", Type: plugins.TypeStorageCreated,
		Subject: "photos/" + key, DataContentType: "application/json",
		Data: []byte(`{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1","eventTime":"2026-01-02T03:04:05.000Z",` +
			`"eventName":"ObjectCreated:Put","s3":{"s3SchemaVersion":"1.0","bucket":{"name":"photos","arn":"arn:aws:s3:::photos"},` +
			`"object":{"key":"` + key + `","size":1234,"eTag":"0123abcd","versionId":"v1","sequencer":"0055AED6DCD90281E5"}}}`),
	}
}

func scheduleEvent() *plugins.Event {
	return &plugins.Event{
		ID: plugins.NewID(), Source: "sluice/schedule", Type: plugins.TypeScheduleTick,
		Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), DataContentType: "application/json",
		Data: []byte(`{"schedule":"nightly","scheduledTime":"2026-01-02T03:04:00Z","payload":{"job":"cleanup"}}`),
	}
}

func kafkaEvent(topic string, partition int32, offset int64, key, value string) *plugins.Event {
	return &plugins.Event{
		ID: plugins.NewID(), Source: "sluice/kafka/" + topic, Type: plugins.TypeKafkaRecord,
		Time:            time.UnixMilli(1767323045123).UTC(),
		DataContentType: "application/octet-stream", Data: []byte(value),
		PartitionKey: key, KafkaTopic: topic, KafkaPartition: partition, KafkaOffset: offset,
		KafkaHeaders: []plugins.KafkaHeader{{Key: "h", Value: []byte{1, 200, 255}}, {Key: "empty"}},
	}
}

func cdcEvent() *plugins.Event {
	return &plugins.Event{
		ID: plugins.NewID(), Source: "sluice/cdc", Type: plugins.TypeCDCPrefix + "update",
		Subject: "inventory.public.customers", Time: time.UnixMilli(1767323045000).UTC(),
		DataContentType: "application/json",
		Data:            []byte(`{"op":"u","before":{"id":1,"email":"a@x"},"after":{"id":1,"email":"b@x"},"source":{"connector":"postgresql","db":"inventory","schema":"public","table":"customers","lsn":33},"ts_ms":1767323045000}`),
		KafkaTopic:      "dbserver1.inventory.customers", KafkaPartition: 2, KafkaOffset: 9,
	}
}

func TestEventShapes(t *testing.T) {
	t.Parallel()
	p, rec := startPool(t, "echo", Config{
		Command:          []string{fn(t, "echo")},
		Instances:        2,
		BootstrapServers: []string{"127.0.0.1:9092", "127.0.0.1:9093"},
		Account:          "123456789012",
	})

	t.Run("http is the API Gateway v2 payload", func(t *testing.T) {
		ev := httpEvent()
		var req events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(invokeOne(t, p, ev), &req); err != nil {
			t.Fatal(err)
		}
		if req.Version != "2.0" || req.RouteKey != "POST /echo/{id}" || req.RawPath != "/echo/42" ||
			req.RawQueryString != "a=1&b=2" || req.Headers["x-test"] != "yes" ||
			req.QueryStringParameters["b"] != "2" || req.PathParameters["id"] != "42" ||
			req.RequestContext.HTTP.Method != "POST" || req.RequestContext.HTTP.SourceIP != "127.0.0.1" ||
			req.Body != "aGVsbG8=" || !req.IsBase64Encoded || !slices.Equal(req.Cookies, []string{"session=abc"}) {
			t.Errorf("decoded %+v", req)
		}
	})

	t.Run("storage is an S3 event", func(t *testing.T) {
		var s3 events.S3Event
		if err := json.Unmarshal(invokeOne(t, p, storageEvent("cats/tom+1.png")), &s3); err != nil {
			t.Fatal(err)
		}
		if len(s3.Records) != 1 {
			t.Fatalf("records = %+v", s3.Records)
		}
		r := s3.Records[0]
		if r.EventSource != "aws:s3" || r.EventName != "ObjectCreated:Put" || r.AWSRegion != "us-east-1" ||
			!r.EventTime.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) ||
			r.S3.Bucket.Name != "photos" || r.S3.Object.Key != "cats/tom+1.png" ||
			r.S3.Object.URLDecodedKey != "cats/tom 1.png" || r.S3.Object.Size != 1234 || r.S3.Object.ETag != "0123abcd" {
			t.Errorf("decoded %+v", r)
		}
	})

	t.Run("schedule is an EventBridge Scheduled Event", func(t *testing.T) {
		ev := scheduleEvent()
		var eb events.EventBridgeEvent
		if err := json.Unmarshal(invokeOne(t, p, ev), &eb); err != nil {
			t.Fatal(err)
		}
		if eb.Version != "0" || eb.ID != ev.ID || eb.DetailType != "Scheduled Event" || eb.Source != "aws.events" ||
			eb.AccountID != "123456789012" || eb.Region != "us-east-1" ||
			!eb.Time.Equal(time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)) ||
			!slices.Equal(eb.Resources, []string{"arn:aws:events:us-east-1:123456789012:rule/nightly"}) ||
			string(eb.Detail) != `{"job":"cleanup"}` {
			t.Errorf("decoded %+v detail %s", eb, eb.Detail)
		}
	})

	t.Run("direct invocation is the payload unchanged", func(t *testing.T) {
		// aws-lambda-go re-marshals what the handler returns, compacting it;
		// TestRuntimeAPIStatuses checks the bytes with a runtime that does not.
		payload := `{"a":[1,2,{"b":null}],"s":"x\u00e9"}`
		if got := string(invokeOne(t, p, invokeEvent(payload))); got != payload {
			t.Errorf("got %s, want %s", got, payload)
		}
		empty := invokeEvent("")
		empty.Data = nil
		if got := string(invokeOne(t, p, empty)); got != "{}" {
			t.Errorf("empty payload: got %s, want {}", got)
		}
	})

	t.Run("other events are CloudEvents", func(t *testing.T) {
		ev := &plugins.Event{ID: plugins.NewID(), Source: "custom", Type: "com.example.thing", DataContentType: "application/json", Data: []byte(`{"x":1}`)}
		var got plugins.Event
		if err := json.Unmarshal(invokeOne(t, p, ev), &got); err != nil {
			t.Fatal(err)
		}
		if got.ID != ev.ID || got.Type != ev.Type || string(got.Data) != `{"x":1}` {
			t.Errorf("decoded %+v", got)
		}
	})

	t.Run("kafka and cdc records of a batch are one self-managed Kafka event", func(t *testing.T) {
		k1 := kafkaEvent("orders", 0, 5, "k1", `{"n":1}`)
		k2 := kafkaEvent("orders", 1, 7, "", "\x00\xffbinary")
		k3 := kafkaEvent("orders", 0, 6, "k3", `plain text`)
		cdc := cdcEvent()
		h := httpEvent()
		b, err := invoke(p, 10*time.Second, k1, h, k2, cdc, k3)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range b.Results {
			if r.Err != nil {
				t.Fatalf("event %d: %v", i, r.Err)
			}
		}
		if string(b.Results[0].Output) != string(b.Results[4].Output) {
			t.Error("records of one invocation got different outputs")
		}
		var req events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(b.Results[1].Output, &req); err != nil || req.RawPath != "/echo/42" {
			t.Errorf("the HTTP event of the batch: %v %s", err, b.Results[1].Output)
		}
		var ke events.KafkaEvent
		if err := json.Unmarshal(b.Results[0].Output, &ke); err != nil {
			t.Fatalf("%v: %s", err, b.Results[0].Output)
		}
		if ke.EventSource != "SelfManagedKafka" || ke.BootstrapServers != "127.0.0.1:9092,127.0.0.1:9093" {
			t.Errorf("event source %q bootstrap %q", ke.EventSource, ke.BootstrapServers)
		}
		if len(ke.Records) != 3 || len(ke.Records["orders-0"]) != 2 || len(ke.Records["orders-1"]) != 1 ||
			len(ke.Records["dbserver1.inventory.customers-2"]) != 1 {
			t.Fatalf("records = %+v", ke.Records)
		}
		check := func(r events.KafkaRecord, ev *plugins.Event) {
			t.Helper()
			if r.Topic != ev.KafkaTopic || r.Partition != int64(ev.KafkaPartition) || r.Offset != ev.KafkaOffset ||
				!r.Timestamp.Equal(ev.Time) || r.TimestampType != "CREATE_TIME" {
				t.Errorf("record %+v for %+v", r, ev)
			}
			key, _ := base64.StdEncoding.DecodeString(r.Key)
			val, _ := base64.StdEncoding.DecodeString(r.Value)
			if string(key) != ev.PartitionKey || string(val) != string(ev.Data) {
				t.Errorf("key %q value %q, want %q %q", key, val, ev.PartitionKey, ev.Data)
			}
			var hs []plugins.KafkaHeader
			for _, m := range r.Headers {
				for k, v := range m {
					hs = append(hs, plugins.KafkaHeader{Key: k, Value: v})
				}
			}
			if len(hs) != len(ev.KafkaHeaders) {
				t.Fatalf("headers %+v, want %+v", hs, ev.KafkaHeaders)
			}
			for i := range hs {
				if hs[i].Key != ev.KafkaHeaders[i].Key || string(hs[i].Value) != string(ev.KafkaHeaders[i].Value) {
					t.Errorf("header %d = %+v, want %+v", i, hs[i], ev.KafkaHeaders[i])
				}
			}
		}
		check(ke.Records["orders-0"][0], k1)
		check(ke.Records["orders-0"][1], k3)
		check(ke.Records["orders-1"][0], k2)
		check(ke.Records["dbserver1.inventory.customers-2"][0], cdc)
		var dbz map[string]any
		v, _ := base64.StdEncoding.DecodeString(ke.Records["dbserver1.inventory.customers-2"][0].Value)
		if err := json.Unmarshal(v, &dbz); err != nil || dbz["op"] != "u" {
			t.Errorf("change event value %s: %v", v, err)
		}
		// The Kafka invocation of a mixed batch is logged under the batch id.
		if lines := rec.of(b.ID); !slices.Contains(lines, "stdout line of "+b.ID) {
			t.Errorf("lines of the batch id %s: %q", b.ID, lines)
		}
	})

	t.Run("storage data that is not an S3 record fails its event alone", func(t *testing.T) {
		bad := storageEvent("x")
		bad.Data = []byte(`not json`)
		good := storageEvent("y")
		b, err := invoke(p, 10*time.Second, bad, good)
		if err != nil {
			t.Fatal(err)
		}
		if !errors.Is(b.Results[0].Err, errNotS3Record) || b.Results[1].Err != nil {
			t.Errorf("results = %+v", b.Results)
		}
	})
}

func TestBatchItemFailures(t *testing.T) {
	t.Parallel()
	p, _ := startPool(t, "batchfail", Config{Command: []string{fn(t, "batchfail")}})

	t.Run("kafka records named fail alone", func(t *testing.T) {
		evs := []*plugins.Event{
			kafkaEvent("orders", 0, 1, "", "ok"),
			kafkaEvent("orders", 0, 2, "", "fail"),
			kafkaEvent("orders", 3, 2, "", "ok"),
			kafkaEvent("orders", 3, 4, "", "fail"),
		}
		b, err := invoke(p, 10*time.Second, evs...)
		if err != nil {
			t.Fatal(err)
		}
		for i, want := range []bool{false, true, false, true} {
			var fe *plugins.FunctionError
			failed := errors.As(b.Results[i].Err, &fe)
			if failed != want || failed && fe.Type != "BatchItemFailure" {
				t.Errorf("record %d: err = %v, want failed %v", i, b.Results[i].Err, want)
			}
		}
	})

	t.Run("an empty list is success", func(t *testing.T) {
		b, err := invoke(p, 10*time.Second, kafkaEvent("orders", 0, 1, "", "ok"), kafkaEvent("orders", 0, 2, "", "ok"))
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range b.Results {
			if r.Err != nil || string(r.Output) != `{"batchItemFailures":[]}` {
				t.Errorf("record %d: %+v", i, r)
			}
		}
	})

	t.Run("an identifier naming no record fails the invocation", func(t *testing.T) {
		b, err := invoke(p, 10*time.Second, kafkaEvent("orders", 0, 1, "", "ok"), kafkaEvent("orders", 0, 2, "", "bogus"))
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range b.Results {
			var fe *plugins.FunctionError
			if !errors.As(r.Err, &fe) || fe.Type != "InvalidBatchItemFailures" || !strings.Contains(fe.Message, `"partition":"orders-0","offset":1002`) {
				t.Errorf("record %d: %v", i, r.Err)
			}
		}
	})

	t.Run("other events by envelope id", func(t *testing.T) {
		ok, bad := storageEvent("ok.png"), storageEvent("fail.png")
		b, err := invoke(p, 10*time.Second, ok, bad)
		if err != nil {
			t.Fatal(err)
		}
		var fe *plugins.FunctionError
		if b.Results[0].Err != nil || !errors.As(b.Results[1].Err, &fe) || fe.Type != "BatchItemFailure" {
			t.Errorf("results = %+v", b.Results)
		}
	})

	t.Run("not read for HTTP and direct invocations", func(t *testing.T) {
		out := invokeOne(t, p, invokeEvent(`{"x":"fail"}`))
		if !strings.Contains(string(out), "batchItemFailures") {
			t.Errorf("output = %s", out)
		}
	})
}

func TestPanicIsAFunctionErrorAndTheRuntimeIsReplaced(t *testing.T) {
	t.Parallel()
	p, rec := startPool(t, "panic", Config{Command: []string{fn(t, "panic")}})
	ev := invokeEvent(`{"panic":true}`)
	b, err := invoke(p, 10*time.Second, ev)
	if err != nil {
		t.Fatal(err)
	}
	var fe *plugins.FunctionError
	if !errors.As(b.Results[0].Err, &fe) || fe.Message != "boom: asked to panic" || fe.Type != "string" || len(fe.Trace) == 0 {
		t.Fatalf("err = %#v", b.Results[0].Err)
	}
	if !strings.Contains(strings.Join(fe.Trace, "\n"), "main.go:") {
		t.Errorf("trace = %q", fe.Trace)
	}
	// aws-lambda-go exits after a panic; the next event runs on a new runtime.
	waitUntil(t, "a restart", func() bool { return p.Restarts() == 1 })
	if out := invokeOne(t, p, invokeEvent(`{"panic":false}`)); string(out) != `{"ok":true}` {
		t.Errorf("after restart: %s", out)
	}
	rec.waitFor(t, "restarting")
}

func TestTimeoutKillsAndRestarts(t *testing.T) {
	t.Parallel()
	p, rec := startPool(t, "sleepy", Config{Command: []string{fn(t, "sleep")}, Timeout: 400 * time.Millisecond})
	first := invokeOne(t, p, invokeEvent(`{"ms":0}`))
	var before struct{ PID int }
	if err := json.Unmarshal(first, &before); err != nil {
		t.Fatal(err)
	}
	ev := invokeEvent(`{"ms":60000}`)
	_, err := invoke(p, 400*time.Millisecond, ev)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
	if tag := rec.waitFor(t, "Task timed out after 0.40 seconds"); tag != ev.ID {
		t.Errorf("timeout line tagged %q, want %q", tag, ev.ID)
	}
	waitUntil(t, "the runtime that missed its deadline to be gone", func() bool {
		return errors.Is(syscall.Kill(before.PID, 0), syscall.ESRCH)
	})
	var after struct{ PID int }
	if err := json.Unmarshal(invokeOne(t, p, invokeEvent(`{"ms":1}`)), &after); err != nil {
		t.Fatal(err)
	}
	if after.PID == before.PID || p.Restarts() != 1 {
		t.Errorf("pid %d -> %d, restarts %d", before.PID, after.PID, p.Restarts())
	}
}

func TestCrashMidInvocation(t *testing.T) {
	t.Parallel()
	p, rec := startPool(t, "crash", Config{Command: []string{fn(t, "crash")}, Instances: 2})

	ev := invokeEvent(`{"crash":true}`)
	_, err := invoke(p, 10*time.Second, ev)
	var fe *plugins.FunctionError
	if !errors.As(err, &fe) || fe.Type != "Runtime.ExitError" ||
		fe.Message != "RequestId: "+ev.ID+" Error: Runtime exited with error: exit status 3" {
		t.Fatalf("err = %v", err)
	}
	if lines := rec.of(ev.ID); !slices.Contains(lines, "about to crash") || !slices.Contains(lines, "Runtime.ExitError") {
		t.Errorf("lines of %s: %q", ev.ID, lines)
	}

	// In a batch of several invocations, the crash fails its own event only.
	good, bad := invokeEvent(`{}`), invokeEvent(`{"crash":true}`)
	b, err := invoke(p, 10*time.Second, good, bad)
	if err != nil {
		t.Fatal(err)
	}
	if b.Results[0].Err != nil || string(b.Results[0].Output) != `{"ok":true}` || !errors.As(b.Results[1].Err, &fe) || fe.Type != "Runtime.ExitError" {
		t.Errorf("results = %+v", b.Results)
	}
	waitUntil(t, "two restarts", func() bool { return p.Restarts() == 2 })
	if out := invokeOne(t, p, invokeEvent(`{}`)); string(out) != `{"ok":true}` {
		t.Errorf("after restart: %s", out)
	}
}

func TestResponseSizeLimit(t *testing.T) {
	t.Parallel()
	p, _ := startPool(t, "big", Config{Command: []string{fn(t, "big")}})
	out := invokeOne(t, p, invokeEvent(`{"bytes":5000000}`))
	if len(out) != 5000002 {
		t.Errorf("a 5 MB response came back as %d bytes", len(out))
	}
	b, err := invoke(p, 10*time.Second, invokeEvent(`{"bytes":7000000}`))
	if err != nil {
		t.Fatal(err)
	}
	var fe *plugins.FunctionError
	if !errors.As(b.Results[0].Err, &fe) || fe.Type != "Function.ResponseSizeTooLarge" {
		t.Fatalf("err = %v", b.Results[0].Err)
	}
	// aws-lambda-go exits when its response is refused; a fresh runtime
	// takes the next event.
	waitUntil(t, "a restart", func() bool { return p.Restarts() == 1 })
	if out := invokeOne(t, p, invokeEvent(`{"bytes":3}`)); string(out) != `"xxx"` {
		t.Errorf("after restart: %s", out)
	}
}

func TestRuntimeAPIStatuses(t *testing.T) {
	t.Parallel()
	t.Run("probe", func(t *testing.T) {
		t.Parallel()
		p, rec := startPool(t, "probe", Config{Command: []string{fn(t, "raw")}, Env: map[string]string{"RAW_MODE": "probe"}})
		ev := invokeEvent(`{"k":"v"}`)
		b, err := invoke(p, 10*time.Second, ev)
		if err != nil {
			t.Fatal(err)
		}
		var fe *plugins.FunctionError
		if !errors.As(b.Results[0].Err, &fe) || fe.Type != "Function.ResponseSizeTooLarge" {
			t.Fatalf("err = %v", b.Results[0].Err)
		}
		rec.waitFor(t, "after too large:")
		lines := strings.Join(rec.of(ev.ID), "\n")
		for _, want := range []string{"unknown id: 400", "too large: 413", "after too large: 403"} {
			if !strings.Contains(lines, want) {
				t.Errorf("no %q in %q", want, lines)
			}
		}
	})
	t.Run("answer twice", func(t *testing.T) {
		t.Parallel()
		p, rec := startPool(t, "twice", Config{Command: []string{fn(t, "raw")}})
		ev := invokeEvent(`{ "k" : "v" }`)
		if out := invokeOne(t, p, ev); string(out) != `{ "k" : "v" }` {
			t.Errorf("output = %s", out)
		}
		rec.waitFor(t, "again:")
		lines := strings.Join(rec.of(ev.ID), "\n")
		if !strings.Contains(lines, "answer: 202") || !strings.Contains(lines, "again: 403") {
			t.Errorf("lines = %q", lines)
		}
	})
	t.Run("error bodies", func(t *testing.T) {
		t.Parallel()
		p, _ := startPool(t, "errors", Config{Command: []string{fn(t, "raw")}, Env: map[string]string{"RAW_MODE": "error"}})
		tests := []struct {
			body string
			want plugins.FunctionError
		}{
			{`{"errorMessage":"bad input","errorType":"ValueError","stackTrace":["  File \"app.py\", line 3, in handler\n"]}`,
				plugins.FunctionError{Message: "bad input", Type: "ValueError", Trace: []string{"  File \"app.py\", line 3, in handler\n"}}},
			{`{"errorMessage":"no type"}`, plugins.FunctionError{Message: "no type", Type: "Custom.Header"}},
			{`"just text"`, plugins.FunctionError{Message: `"just text"`, Type: "Custom.Header"}},
		}
		for _, tt := range tests {
			body, _ := json.Marshal(tt.body)
			b, err := invoke(p, 10*time.Second, invokeEvent(`{"body":`+string(body)+`}`))
			if err != nil {
				t.Fatal(err)
			}
			var fe *plugins.FunctionError
			if !errors.As(b.Results[0].Err, &fe) || fe.Message != tt.want.Message || fe.Type != tt.want.Type || !slices.Equal(fe.Trace, tt.want.Trace) {
				t.Errorf("body %s: got %#v, want %#v", tt.body, b.Results[0].Err, tt.want)
			}
		}
	})
}

func TestStartFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   Config
		check func(t *testing.T, err error)
	}{
		{"exits at once", Config{Command: []string{"sh", "-c", "echo cannot open db >&2; exit 3"}, Instances: 3}, func(t *testing.T, err error) {
			if !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "cannot open db") {
				t.Errorf("err = %v", err)
			}
		}},
		{"reports an init error", Config{Command: []string{fn(t, "raw")}, Env: map[string]string{"RAW_MODE": "init-error"}}, func(t *testing.T, err error) {
			var ie *InitError
			if !errors.As(err, &ie) || ie.Err.Type != "Runtime.ConfigError" || ie.Err.Message != "cannot load config" {
				t.Errorf("err = %v", err)
			}
		}},
		{"never polls", Config{Command: []string{"sleep", "60"}, InitTimeout: 300 * time.Millisecond}, func(t *testing.T, err error) {
			if !strings.Contains(err.Error(), "did not poll for an invocation within 300ms") {
				t.Errorf("err = %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := New("x", tt.cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = p.Start(context.Background())
			if err == nil {
				_ = p.Close(context.Background())
				t.Fatal("Start succeeded")
			}
			tt.check(t, err)
			if _, err := invoke(p, time.Second, invokeEvent(`{}`)); !errors.Is(err, ErrNotStarted) {
				t.Errorf("invoke after a failed start: %v", err)
			}
		})
	}
}

func TestInstancesRunInParallel(t *testing.T) {
	t.Parallel()
	p, _ := startPool(t, "sleep4", Config{Command: []string{fn(t, "sleep")}, Instances: 4})
	evs := make([]*plugins.Event, 8)
	for i := range evs {
		evs[i] = invokeEvent(`{"ms":50}`)
	}
	b, err := invoke(p, 20*time.Second, evs...)
	if err != nil {
		t.Fatal(err)
	}
	pids := map[int]int{}
	for i, r := range b.Results {
		var out struct{ PID int }
		if r.Err != nil || json.Unmarshal(r.Output, &out) != nil {
			t.Fatalf("event %d: %+v", i, r)
		}
		pids[out.PID]++
	}
	if len(pids) != 4 {
		t.Errorf("8 events ran on %d runtimes (%v), want all 4", len(pids), pids)
	}
	if b.MaxRSSBytes <= 0 {
		t.Errorf("MaxRSSBytes = %d", b.MaxRSSBytes)
	}
}

func TestLogsAreTaggedAndCompleteWhenInvokeReturns(t *testing.T) {
	t.Parallel()
	p, rec := startPool(t, "logs", Config{Command: []string{fn(t, "echo")}, Instances: 2})
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				ev := invokeEvent(`{}`)
				b, err := invoke(p, 10*time.Second, ev)
				if err == nil {
					err = b.Results[0].Err
				}
				if err != nil {
					errs <- err
					return
				}
				got := rec.of(ev.ID)
				slices.Sort(got)
				want := []string{"stderr line of " + ev.ID, "stdout line of " + ev.ID}
				if !slices.Equal(got, want) {
					errs <- fmt.Errorf("lines of %s when Invoke returned: %q", ev.ID, got)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCloseStopsEveryRuntime(t *testing.T) {
	t.Parallel()
	p, err := New("closing", Config{Command: []string{fn(t, "sleep")}, Instances: 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	evs := []*plugins.Event{invokeEvent(`{}`), invokeEvent(`{}`), invokeEvent(`{}`)}
	b, err := invoke(p, 10*time.Second, evs...)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, r := range b.Results {
		var out struct{ PID int }
		if err := json.Unmarshal(r.Output, &out); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, out.PID)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("runtime %d still running after Close: %v", pid, err)
		}
	}
	if _, err := invoke(p, time.Second, invokeEvent(`{}`)); !errors.Is(err, ErrClosed) {
		t.Errorf("invoke after Close: %v", err)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{"ok", Config{Command: []string{"x"}, Env: map[string]string{"A": "b", "PATH": "/bin"}}, nil},
		{"no command", Config{}, []string{"command: required"}},
		{"negatives", Config{Command: []string{"x"}, Instances: -1, Memory: -1, Timeout: -1, InitTimeout: -1},
			[]string{"instances:", "memory:", "timeout:", "init_timeout:"}},
		{"reserved env", Config{Command: []string{"x"}, Env: map[string]string{"AWS_LAMBDA_RUNTIME_API": "x", "TZ": "Europe/Paris", "_HANDLER": "h"}},
			[]string{"env.AWS_LAMBDA_RUNTIME_API: reserved", "env.TZ: reserved", "env._HANDLER: reserved"}},
		{"bad env", Config{Command: []string{"x"}, Env: map[string]string{"A=B": "x", "C": "nul\x00"}},
			[]string{`env."A=B": not a valid variable name`, "env.C: value holds a NUL byte"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := New("f", Config{Command: []string{"./no/such/binary"}}, nil); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("New with a missing command: %v", err)
	}
	if _, err := New("f", Config{Command: []string{"."}}, nil); err == nil {
		t.Error("New with a directory as command succeeded")
	}
}

func TestXRayTraceID(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=0"},
		{"", ""},
		{"00-zzf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", ""},
		{"00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01", ""},
	}
	for _, tt := range tests {
		if got := xrayTraceID(tt.in); got != tt.want {
			t.Errorf("xrayTraceID(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseItemFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		ids     []itemID
		present bool
		err     bool
	}{
		{`{"statusCode":200}`, nil, false, false},
		{`"batchItemFailures"`, nil, false, false},
		{`{"BatchItemFailures":[{"itemIdentifier":"a"}]}`, nil, false, false},
		{`{"batchItemFailures":null}`, nil, true, false},
		{`{"batchItemFailures":[]}`, []itemID{}, true, false},
		{`{"batchItemFailures":[{"itemIdentifier":"a"},{"itemIdentifier":{"partition":"t-0","offset":5}}]}`,
			[]itemID{{id: "a"}, {partition: "t-0", offset: 5}}, true, false},
		{`{"batchItemFailures":[{"itemIdentifier":{"partition":"t-1","offset":"7"}}]}`, []itemID{{partition: "t-1", offset: 7}}, true, false},
		{`{"batchItemFailures":[{"itemIdentifier":""}]}`, nil, true, true},
		{`{"batchItemFailures":[{"itemIdentifier":null}]}`, nil, true, true},
		{`{"batchItemFailures":[{}]}`, nil, true, true},
		{`{"batchItemFailures":[{"itemIdentifier":5}]}`, nil, true, true},
		{`{"batchItemFailures":[{"itemIdentifier":{"partition":"t-1"}}]}`, nil, true, true},
		{`{"batchItemFailures":[{"itemIdentifier":{"partition":"t-1","offset":1.5}}]}`, nil, true, true},
		{`{"batchItemFailures":{}}`, nil, true, true},
		{`{"batchItemFailures":[`, nil, true, true},
	}
	for _, tt := range tests {
		ids, present, err := parseItemFailures([]byte(tt.in))
		if present != tt.present || (err != nil) != tt.err || !tt.err && !slices.Equal(ids, tt.ids) {
			t.Errorf("parseItemFailures(%s) = %v, %v, %v", tt.in, ids, present, err)
		}
		if err != nil && !errors.Is(err, ErrItemFailures) {
			t.Errorf("error %v does not wrap ErrItemFailures", err)
		}
	}
}

func TestDecodeErrorBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		body, header string
		want         plugins.FunctionError
	}{
		{`{"errorMessage":"m","errorType":"T","stackTrace":[{"path":"main.go","line":12,"label":"handler"}]}`, "",
			plugins.FunctionError{Message: "m", Type: "T", Trace: []string{"handler (main.go:12)"}}},
		{`{"errorMessage":"m","stackTrace":"a\nb\n"}`, "H", plugins.FunctionError{Message: "m", Type: "H", Trace: []string{"a", "b"}}},
		{`{"errorMessage":{"nested":true},"errorType":"T","stackTrace":[1,"x",{"other":1}]}`, "",
			plugins.FunctionError{Message: `{"nested":true}`, Type: "T", Trace: []string{"1", "x", `{"other":1}`}}},
		{``, "Unhandled", plugins.FunctionError{Message: "the runtime reported an error without a message", Type: "Unhandled"}},
		{"plain \xff text", "", plugins.FunctionError{Message: "plain \uFFFD text"}},
	}
	for _, tt := range tests {
		got := decodeErrorBody([]byte(tt.body), tt.header)
		if got.Message != tt.want.Message || got.Type != tt.want.Type || !slices.Equal(got.Trace, tt.want.Trace) {
			t.Errorf("decodeErrorBody(%q, %q) = %#v, want %#v", tt.body, tt.header, got, tt.want)
		}
	}
}

func TestScheduleWithoutPayloadHasEmptyDetail(t *testing.T) {
	t.Parallel()
	p := &Pool{cfg: Config{Region: "r", Account: "a"}}
	ev := &plugins.Event{ID: "id", Type: plugins.TypeScheduleTick, Time: time.Unix(0, 0), Data: []byte(`{"schedule":"s"}`)}
	out, err := p.appendPayload(nil, ev)
	if err != nil {
		t.Fatal(err)
	}
	var eb events.EventBridgeEvent
	if err := json.Unmarshal(out, &eb); err != nil || string(eb.Detail) != "{}" || !eb.Time.Equal(time.Unix(0, 0)) {
		t.Errorf("%s: %v", out, err)
	}
	ev.Data = []byte(`[`)
	if _, err := p.appendPayload(nil, ev); err == nil {
		t.Error("a schedule event with broken data built a payload")
	}
}
