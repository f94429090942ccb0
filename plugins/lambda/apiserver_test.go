package lambda

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// TestRuntimeAPIServerProtocol drives one connection of the Runtime API
// server with raw HTTP/1.1 as clients write it (curl's Expect, HTTP/1.0,
// chunked bodies with trailers, pipelining) and reads the answers with
// net/http's client parser.
func TestRuntimeAPIServerProtocol(t *testing.T) {
	const (
		resp = "/2018-06-01/runtime/invocation/req-1/response"
		next = "/2018-06-01/runtime/invocation/next"
	)
	tests := []struct {
		name     string
		in       string
		statuses []int
		out      string // the invocation's response body, "" when it is not completed
		errType  string // the invocation's error type, when it fails
		check    func(t *testing.T, rs []*http.Response)
	}{
		{
			name:     "content-length",
			in:       "POST " + resp + " HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\n\"ok\"",
			statuses: []int{202},
			out:      `"ok"`,
			check: func(t *testing.T, rs []*http.Response) {
				if rs[0].Header.Get("Date") == "" || rs[0].Header.Get("Content-Type") != "application/json" || rs[0].Close {
					t.Errorf("headers %v, close %v", rs[0].Header, rs[0].Close)
				}
			},
		},
		{
			name:     "expect 100-continue, as curl posts",
			in:       "POST " + resp + " HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
			statuses: []int{202},
			out:      `{}`,
		},
		{
			name: "chunked with error trailers, as aws-lambda-go streams a failure",
			in: "POST " + resp + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTrailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n" +
				"3\r\npar\r\n4;ext=1\r\ntial\r\n0\r\nLambda-Runtime-Function-Error-Type: Stream.Broke\r\n" +
				"Lambda-Runtime-Function-Error-Body: eyJlcnJvck1lc3NhZ2UiOiJtaWR3YXkifQ==\r\n\r\n",
			statuses: []int{202},
			errType:  "Stream.Broke",
		},
		{
			name:     "HTTP/1.0 closes after the answer",
			in:       "POST " + resp + " HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}GET " + next + " HTTP/1.1\r\nHost: x\r\n\r\n",
			statuses: []int{202},
			out:      `{}`,
			check: func(t *testing.T, rs []*http.Response) {
				if !rs[0].Close {
					t.Error("no Connection: close")
				}
			},
		},
		{
			name:     "pipelined answers in order",
			in:       "GET /nope HTTP/1.1\r\nHost: x\r\n\r\nPOST " + next + " HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nxPOST " + resp + " HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}POST " + resp + " HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
			statuses: []int{404, 405, 202, 403},
			out:      `{}`,
			check: func(t *testing.T, rs []*http.Response) {
				if rs[1].Header.Get("Allow") != "GET" {
					t.Errorf("405 Allow = %q", rs[1].Header.Get("Allow"))
				}
			},
		},
		{name: "missing Host", in: "POST " + resp + " HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", statuses: []int{400}},
		{name: "bad Content-Length", in: "POST " + resp + " HTTP/1.1\r\nHost: x\r\nContent-Length: 2x\r\n\r\n{}", statuses: []int{400}},
		{name: "both lengths", in: "POST " + resp + " HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}", statuses: []int{400}},
		{name: "unknown coding", in: "POST " + resp + " HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", statuses: []int{501}},
		{name: "line folding", in: "POST " + resp + " HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", statuses: []int{400}},
		{name: "HTTP/2 preface", in: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", statuses: []int{505}},
		{name: "header too large", in: "GET " + next + " HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", maxHeaderLine) + "\r\n\r\n", statuses: []int{431}},
		{name: "ends inside the body", in: "POST " + resp + " HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n{}", statuses: []int{400}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pr, inv := fuzzProc()
			rs := serveScript(t, pr, []byte(tt.in))
			var got []int
			for _, r := range rs {
				got = append(got, r.StatusCode)
				if b, _ := io.ReadAll(r.Body); !strings.HasPrefix(string(b), "{") {
					t.Errorf("answer %d: body %q is not JSON", r.StatusCode, b)
				}
			}
			if len(got) != len(tt.statuses) {
				t.Fatalf("statuses %v, want %v", got, tt.statuses)
			}
			for i := range got {
				if got[i] != tt.statuses[i] {
					t.Fatalf("statuses %v, want %v", got, tt.statuses)
				}
			}
			var r result
			var completed bool
			select {
			case r = <-inv.done:
				completed = true
			default:
			}
			switch {
			case tt.errType != "":
				fe, ok := r.err.(interface{ Error() string })
				if !completed || !ok || !strings.Contains(fe.Error(), tt.errType) || !strings.Contains(fe.Error(), "midway") {
					t.Errorf("completed %v with %v, want a %s error", completed, r.err, tt.errType)
				}
			case tt.out != "":
				if !completed || string(r.out) != tt.out || r.err != nil {
					t.Errorf("completed %v with %q, %v; want %q", completed, r.out, r.err, tt.out)
				}
			default:
				if completed {
					t.Errorf("completed with %q, %v", r.out, r.err)
				}
			}
			if tt.check != nil {
				tt.check(t, rs)
			}
		})
	}
}

// TestWaitingPollAnswered: a poll that waits is answered by deliver on its
// connection, in one write with the 202 pipelined before it; a poll sent
// with Connection: close (as Python's urllib sends it) gets its invocation
// and then the end of the connection.
func TestWaitingPollAnswered(t *testing.T) {
	for _, tt := range []struct {
		name  string
		first string // before the poll
		close bool
	}{
		{"keep-alive, pipelined after a response", "POST /2018-06-01/runtime/invocation/req-1/response HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", false},
		{"connection close", "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pr, inv := fuzzProc()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			srv := newAPIServer(pr, ln)
			go srv.serve()
			defer srv.Close()
			nc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			poll := "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n"
			if tt.close {
				poll += "Connection: close\r\n"
			}
			if _, err := nc.Write([]byte(tt.first + poll + "\r\n")); err != nil {
				t.Fatal(err)
			}
			if tt.first != "" {
				<-inv.done
			}
			waitUntil(t, "the poll waiting", func() bool {
				pr.mu.Lock()
				defer pr.mu.Unlock()
				return pr.poll != nil
			})
			next := &invocation{id: "req-2", payload: []byte(`{"n":2}`), deadlineMS: 42, done: make(chan result, 1)}
			pr.deliver(next)
			br := bufio.NewReader(nc)
			if tt.first != "" {
				r, err := http.ReadResponse(br, nil)
				if err != nil || r.StatusCode != http.StatusAccepted {
					t.Fatalf("first answer %v, %v", r, err)
				}
				_, _ = io.ReadAll(r.Body)
			}
			r, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(r.Body)
			if r.StatusCode != 200 || string(body) != `{"n":2}` || r.Header.Get(hdrRequestID) != "req-2" || r.Header.Get(hdrDeadline) != "42" || r.Close != tt.close {
				t.Fatalf("poll answer %d %q %v close %v", r.StatusCode, body, r.Header, r.Close)
			}
			if tt.close {
				if _, err := br.ReadByte(); err != io.EOF {
					t.Errorf("after a close poll: %v, want EOF", err)
				}
			}
		})
	}
}
