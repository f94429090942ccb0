package lambda

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sluicehq/sluice/plugins"
)

// Seeds are in testdata/fuzz/FuzzXxx.

func FuzzParseItemFailures(f *testing.F) {
	f.Add([]byte(`{"batchItemFailures":[{"itemIdentifier":{"partition":"orders-0","offset":2}}]}`))
	p := &Pool{cfg: Config{}.withDefaults()}
	f.Fuzz(func(t *testing.T, out []byte) {
		ids, present, err := parseItemFailures(out)
		if !present && (err != nil || len(ids) > 0) {
			t.Fatalf("absent but ids %v err %v", ids, err)
		}
		if err != nil && !errors.Is(err, ErrItemFailures) {
			t.Fatalf("error %v does not wrap ErrItemFailures", err)
		}
		// Whatever the response, settling it fails only items of the
		// invocation, and every item gets a result.
		b := &plugins.Batch{Events: []*plugins.Event{
			{ID: "a", Type: plugins.TypeKafkaRecord, KafkaTopic: "orders", KafkaPartition: 0, KafkaOffset: 1},
			{ID: "b", Type: plugins.TypeKafkaRecord, KafkaTopic: "orders", KafkaPartition: 0, KafkaOffset: 2},
			{ID: "c", Type: plugins.TypeStorageCreated},
		}, Results: make([]plugins.Result, 3)}
		inv := &invocation{events: []int{0, 1}, kafka: true, readFailures: true}
		b.Results[2].Output = []byte("untouched")
		p.settle(b, inv, result{out: out})
		if string(b.Results[2].Output) != "untouched" {
			t.Fatal("settle touched an event outside the invocation")
		}
		for i := range 2 {
			r := b.Results[i]
			if r.Err == nil && !bytes.Equal(r.Output, out) && len(out) > 0 {
				t.Fatalf("item %d succeeded with output %q, want the response", i, r.Output)
			}
		}
		if err == nil && present && len(ids) == 0 {
			for i := range 2 {
				if b.Results[i].Err != nil {
					t.Fatalf("an empty list failed item %d", i)
				}
			}
		}
	})
}

func FuzzDecodeErrorBody(f *testing.F) {
	f.Add([]byte(`{"errorMessage":"m","errorType":"T","stackTrace":[{"path":"p.go","line":1,"label":"f"}]}`), "Unhandled")
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		fe := decodeErrorBody(body, header)
		if fe == nil {
			t.Fatal("nil error")
		}
		if !utf8.ValidString(fe.Message) || !utf8.ValidString(fe.Type) {
			t.Fatalf("invalid UTF-8 in %#v", fe)
		}
		for _, s := range fe.Trace {
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8 in trace %q", s)
			}
		}
		if len(fe.Message) > maxErrorText+len("…") || len(fe.Trace) > maxTraceFrames {
			t.Fatalf("unbounded: message %d bytes, %d frames", len(fe.Message), len(fe.Trace))
		}
	})
}

// FuzzRuntimeAPI posts arbitrary bodies to the response and error endpoints
// of a runtime's API: every post of the invocation in progress completes
// it exactly once with the body or a FunctionError, and a second post is
// refused.
func FuzzRuntimeAPI(f *testing.F) {
	f.Add([]byte(`{"statusCode":200}`), false, false, "")
	f.Fuzz(func(t *testing.T, body []byte, isError, chunked bool, errType string) {
		p := &Pool{name: "f", cfg: Config{}.withDefaults()}
		pr := &proc{pool: p, work: make(chan *invocation, 1), polled: make(chan struct{}), exited: make(chan struct{})}
		inv := &invocation{id: "req-1", done: make(chan result, 1)}
		pr.cur = inv
		verb := "response"
		if isError {
			verb = "error"
		}
		post := func() *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodPost, "/2018-06-01/runtime/invocation/req-1/"+verb, bytes.NewReader(body))
			if chunked {
				req.ContentLength = -1
			}
			if errType != "" && !strings.ContainsAny(errType, "\r\n\x00") {
				req.Header.Set(hdrErrorType, errType)
			}
			rec := httptest.NewRecorder()
			pr.ServeHTTP(rec, req)
			return rec
		}
		if rec := post(); rec.Code != http.StatusAccepted {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		var r result
		select {
		case r = <-inv.done:
		default:
			t.Fatal("the invocation did not complete")
		}
		if isError {
			var fe *plugins.FunctionError
			if !errors.As(r.err, &fe) || !utf8.ValidString(fe.Message) {
				t.Fatalf("error post gave %#v", r.err)
			}
		} else if r.err != nil || !bytes.Equal(r.out, body) {
			t.Fatalf("response post gave %q, %v", r.out, r.err)
		}
		if rec := post(); rec.Code != http.StatusForbidden {
			t.Fatalf("second post: status %d", rec.Code)
		}
	})
}
