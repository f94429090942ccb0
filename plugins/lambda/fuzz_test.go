package lambda

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
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
// of a runtime's API, as net/http's client writes requests: every post of
// the invocation in progress completes it exactly once with the body or a
// FunctionError, and a second post is refused.
func FuzzRuntimeAPI(f *testing.F) {
	f.Add([]byte(`{"statusCode":200}`), false, false, "")
	f.Fuzz(func(t *testing.T, body []byte, isError, chunked bool, errType string) {
		pr, inv := fuzzProc()
		verb := "response"
		if isError {
			verb = "error"
		}
		var in bytes.Buffer
		for range 2 {
			req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1/2018-06-01/runtime/invocation/req-1/"+verb, bytes.NewReader(body))
			if chunked {
				req.ContentLength = -1
				req.Body = io.NopCloser(bytes.NewReader(body))
			}
			if errType != "" && !strings.ContainsFunc(errType, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f }) {
				// A client sends no control characters in a header.
				req.Header.Set(hdrErrorType, errType)
			}
			if err := req.Write(&in); err != nil {
				t.Skip(err)
			}
		}
		resps := serveScript(t, pr, in.Bytes())
		if len(resps) != 2 || resps[0].StatusCode != http.StatusAccepted {
			t.Fatalf("responses %v", resps)
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
		if resps[1].StatusCode != http.StatusForbidden {
			t.Fatalf("second post: status %d", resps[1].StatusCode)
		}
	})
}

// FuzzRuntimeAPIRequests feeds arbitrary bytes to a Runtime API
// connection: it never panics or hangs, and whatever it answers is HTTP/1.1
// that net/http's client reads.
func FuzzRuntimeAPIRequests(f *testing.F) {
	f.Add([]byte("GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("POST /2018-06-01/runtime/invocation/req-1/response HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}" +
		"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add([]byte("POST /2018-06-01/runtime/invocation/req-1/response HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n" +
		"Trailer: Lambda-Runtime-Function-Error-Type\r\n\r\n2\r\n{}\r\n0\r\nLambda-Runtime-Function-Error-Type: E\r\n\r\n"))
	f.Add([]byte("POST /2018-06-01/runtime/init/error HTTP/1.0\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\nx"))
	f.Fuzz(func(t *testing.T, in []byte) {
		pr, _ := fuzzProc()
		serveScript(t, pr, in)
	})
}

// fuzzExits holds the exited channel of each fuzzProc, to close.
var fuzzExits sync.Map

func fuzzProc() (*proc, *invocation) {
	p := &Pool{name: "f", cfg: Config{}.withDefaults(), arn: "arn:aws:lambda:r:1:function:f"}
	exited := make(chan struct{})
	pr := &proc{pool: p, polled: make(chan struct{}), exited: exited}
	fuzzExits.Store(pr, exited)
	inv := &invocation{id: "req-1", done: make(chan result, 1)}
	pr.cur = inv
	return pr, inv
}

// serveScript serves in on one connection of pr's Runtime API until in is
// read to its end (and the runtime is then taken as exited), and returns
// the responses, which must read as HTTP/1.1.
func serveScript(t *testing.T, pr *proc, in []byte) []*http.Response {
	t.Helper()
	sc := &scriptConn{in: bytes.NewReader(in), drained: make(chan struct{})}
	c := newAPIConn(pr, sc)
	done := make(chan struct{})
	go func() {
		c.serve()
		close(done)
	}()
	select {
	case <-done:
	case <-sc.drained:
		ex, _ := fuzzExits.LoadAndDelete(pr)
		close(ex.(chan struct{}))
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the connection was not let go after the runtime exited")
		}
	}
	var resps []*http.Response
	br := bufio.NewReader(bytes.NewReader(sc.out.Bytes()))
	for {
		if _, err := br.Peek(1); err != nil {
			return resps
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d does not read as HTTP: %v\n%q", len(resps), err, sc.out.Bytes())
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("answer %d: body: %v", len(resps), err)
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
		if resp.StatusCode != http.StatusContinue {
			resps = append(resps, resp)
		}
	}
}

// scriptConn is a connection reading a script and recording what is
// written. drained is closed when the script is read to its end.
type scriptConn struct {
	in      *bytes.Reader
	drained chan struct{}
	once    sync.Once
	mu      sync.Mutex
	out     bytes.Buffer
}

func (s *scriptConn) Read(p []byte) (int, error) {
	n, err := s.in.Read(p)
	if err == io.EOF {
		s.once.Do(func() { close(s.drained) })
	}
	return n, err
}

func (s *scriptConn) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.Write(p)
}

func (s *scriptConn) Close() error                     { return nil }
func (s *scriptConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (s *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (s *scriptConn) SetDeadline(time.Time) error      { return nil }
func (s *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (s *scriptConn) SetWriteDeadline(time.Time) error { return nil }
