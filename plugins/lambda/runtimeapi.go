package lambda

import (
	"bytes"
	"encoding/base64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/plugins"
)

// The Runtime API (2018-06-01) a proc serves its runtime on 127.0.0.1.
const (
	apiPrefix      = "/2018-06-01/runtime/"
	invocationPath = "invocation/"
)

// Header names, in canonical form so they are set without allocating.
const (
	hdrRequestID     = "Lambda-Runtime-Aws-Request-Id"
	hdrDeadline      = "Lambda-Runtime-Deadline-Ms"
	hdrFunctionARN   = "Lambda-Runtime-Invoked-Function-Arn"
	hdrTraceID       = "Lambda-Runtime-Trace-Id"
	hdrClientContext = "Lambda-Runtime-Client-Context"
	hdrErrorType     = "Lambda-Runtime-Function-Error-Type"
	hdrErrorBody     = "Lambda-Runtime-Function-Error-Body"
)

var (
	contentJSON = []string{"application/json"}
	acceptedOK  = []byte(`{"status":"OK"}`)
)

// ServeHTTP serves the Runtime API of one runtime process.
func (pr *proc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, apiPrefix)
	if !ok {
		apiError(w, http.StatusNotFound, "UnknownEndpoint", "unknown Runtime API path "+r.URL.Path)
		return
	}
	if rest == "init/error" {
		if r.Method != http.MethodPost {
			apiError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "use POST")
			return
		}
		pr.initError(w, r)
		return
	}
	rest, ok = strings.CutPrefix(rest, invocationPath)
	if !ok {
		apiError(w, http.StatusNotFound, "UnknownEndpoint", "unknown Runtime API path "+r.URL.Path)
		return
	}
	if rest == "next" {
		if r.Method != http.MethodGet {
			apiError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "use GET")
			return
		}
		pr.next(w, r)
		return
	}
	id, verb, ok := strings.Cut(rest, "/")
	if !ok || id == "" || (verb != "response" && verb != "error") {
		apiError(w, http.StatusNotFound, "UnknownEndpoint", "unknown Runtime API path "+r.URL.Path)
		return
	}
	if r.Method != http.MethodPost {
		apiError(w, http.StatusMethodNotAllowed, "MethodNotAllowed", "use POST")
		return
	}
	pr.complete(w, r, id, verb == "error")
}

// next is the long poll: it hands the runtime its next invocation. The
// first poll of a runtime marks it ready.
func (pr *proc) next(w http.ResponseWriter, r *http.Request) {
	pr.pollOnce.Do(func() { close(pr.polled) })
	var inv *invocation
	select {
	case inv = <-pr.work:
	case <-pr.exited:
		apiError(w, http.StatusGone, "RuntimeStopped", "this runtime is being stopped")
		return
	case <-r.Context().Done():
		return
	}
	pr.mu.Lock()
	if pr.killed {
		// The invocation was given up (its deadline passed) between the
		// channel and here; it belongs to no one now.
		pr.mu.Unlock()
		apiError(w, http.StatusGone, "RuntimeStopped", "this runtime is being stopped")
		return
	}
	pr.cur = inv
	inv.delivered = true
	pr.mu.Unlock()
	// Lines the runtime wrote before it took this invocation are not its.
	pr.logs.sync(inv.id)

	h := w.Header()
	h[hdrRequestID] = []string{inv.id}
	h[hdrDeadline] = []string{strconv.FormatInt(inv.deadlineMS, 10)}
	h[hdrFunctionARN] = pr.pool.arnHeader
	if inv.traceID != "" {
		h[hdrTraceID] = []string{inv.traceID}
	}
	if inv.clientContext != "" {
		h[hdrClientContext] = []string{inv.clientContext}
	}
	h["Content-Type"] = contentJSON
	h["Content-Length"] = []string{strconv.Itoa(len(inv.payload))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(inv.payload)
}

// complete takes the response or error of the invocation in progress.
func (pr *proc) complete(w http.ResponseWriter, r *http.Request, id string, isError bool) {
	pr.mu.Lock()
	inv := pr.cur
	last := pr.last
	pr.mu.Unlock()
	if inv == nil || inv.id != id {
		if id == last {
			apiError(w, http.StatusForbidden, "InvalidStateTransition", "invocation "+id+" is already complete")
		} else {
			apiError(w, http.StatusBadRequest, "InvalidRequestID", "no invocation "+id+" is in progress")
		}
		return
	}
	body, tooLarge, err := readBody(r, MaxResponseSize)
	var res result
	switch {
	case tooLarge:
		res.err = &plugins.FunctionError{
			Type:    "Function.ResponseSizeTooLarge",
			Message: "Response payload size exceeded maximum allowed payload size (" + strconv.Itoa(MaxResponseSize) + " bytes).",
		}
	case err != nil:
		// The invocation stays in progress: the runtime may post again, or
		// it is dying and its exit will say so.
		apiError(w, http.StatusBadRequest, "InvalidRequestBody", "cannot read the body: "+err.Error())
		return
	case isError:
		res.err = decodeErrorBody(body, r.Header.Get(hdrErrorType))
	case r.Trailer.Get(hdrErrorType) != "":
		// A streamed response that failed midway: aws-lambda-go reports
		// the error in trailers after a partial body.
		eb, _ := base64.StdEncoding.DecodeString(r.Trailer.Get(hdrErrorBody))
		res.err = decodeErrorBody(eb, r.Trailer.Get(hdrErrorType))
	default:
		res.out = body
	}

	pr.mu.Lock()
	if pr.cur != inv {
		// Completed twice at once, or given up meanwhile.
		pr.mu.Unlock()
		apiError(w, http.StatusForbidden, "InvalidStateTransition", "invocation "+id+" is already complete")
		return
	}
	pr.cur = nil
	pr.last = id
	pr.served++
	pr.mu.Unlock()

	if tooLarge {
		apiError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
			"Response payload size exceeded maximum allowed payload size ("+strconv.Itoa(MaxResponseSize)+" bytes).")
	} else {
		w.Header()["Content-Type"] = contentJSON
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(acceptedOK)
	}
	inv.done <- res // buffered; only the holder of pr.cur sends
}

// initError records the runtime's report that it failed to initialize, then
// stops it: Lambda does not keep a runtime whose init failed.
func (pr *proc) initError(w http.ResponseWriter, r *http.Request) {
	body, _, _ := readBody(r, 1<<20)
	fe := decodeErrorBody(body, r.Header.Get(hdrErrorType))
	pr.mu.Lock()
	busy := pr.cur != nil
	if !busy && pr.initErr == nil {
		pr.initErr = fe
	}
	pr.mu.Unlock()
	if busy {
		apiError(w, http.StatusForbidden, "InvalidStateTransition", "init error reported during an invocation")
		return
	}
	w.Header()["Content-Type"] = contentJSON
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(acceptedOK)
	pr.kill()
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// readBody reads at most limit bytes of r's body into a slice of its own.
// tooLarge reports a longer body (not read to its end).
func readBody(r *http.Request, limit int) (body []byte, tooLarge bool, err error) {
	if r.ContentLength > int64(limit) {
		return nil, true, nil
	}
	if r.ContentLength >= 0 {
		body = make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, false, err
		}
		return body, false, nil
	}
	// Chunked, as aws-lambda-go posts: read through a pooled buffer and
	// keep an exact copy.
	buf := bodyPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 1<<20 {
			buf.Reset()
			bodyPool.Put(buf)
		}
	}()
	n, err := buf.ReadFrom(io.LimitReader(r.Body, int64(limit)+1))
	if err != nil {
		return nil, false, err
	}
	if n > int64(limit) {
		return nil, true, nil
	}
	return bytes.Clone(buf.Bytes()), false, nil
}

// apiError writes an error in the Runtime API's shape.
func apiError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header()["Content-Type"] = contentJSON
	w.WriteHeader(status)
	b := append([]byte(`{"errorMessage":`), plugins.AppendJSONString(nil, msg)...)
	b = append(b, `,"errorType":`...)
	b = plugins.AppendJSONString(b, typ)
	b = append(b, '}')
	_, _ = w.Write(b)
}
