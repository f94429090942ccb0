package gateway

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"
)

// ErrBadOutput is wrapped by the error of a function output that cannot be
// turned into an HTTP response: a JSON object with a statusCode whose
// fields are malformed (a statusCode that is not a final HTTP status, a
// header that is not a string, a body that is not base64 when
// isBase64Encoded says so). The gateway answers 502. Any other output is a
// 200 body, as API Gateway answers it.
var ErrBadOutput = errors.New("gateway: function output is not a valid HTTP response")

// functionResponse is the API Gateway payload format 2.0 response. Fields
// are raw where API Gateway is lenient and so are we. Format 2.0 has no
// multiValueHeaders (several values of a header are one comma-separated
// string): API Gateway ignores the field, and so do we.
type functionResponse struct {
	StatusCode      *int                       `json:"statusCode"`
	Headers         map[string]json.RawMessage `json:"headers"`
	Cookies         []string                   `json:"cookies"`
	Body            json.RawMessage            `json:"body"`
	IsBase64Encoded bool                       `json:"isBase64Encoded"`
}

// writeOutput turns a function's output into the response, following API
// Gateway's payload format 2.0 rules:
//
//   - a JSON object with a top-level "statusCode" is a response: statusCode,
//     headers (string, number or boolean values), cookies (one Set-Cookie
//     each), body (a string, base64 when isBase64Encoded; any other JSON
//     value is sent as its JSON text) and isBase64Encoded; other fields,
//     multiValueHeaders included, are ignored. Content-Type defaults to
//     application/json;
//   - a JSON string is a 200 whose body is the string's text, Content-Type
//     application/json, as API Gateway does;
//   - anything else — other JSON, null, or output that is not JSON at all
//     (the plain text a Lambda runtime may post) — is a 200 with the output
//     as the body and Content-Type application/json, which is what API
//     Gateway assumes of an output without a statusCode. An empty output is
//     the function's null.
//
// No output but a response object needs validating, so none is: an
// object's structure is scanned only when it may hold the statusCode key,
// and a malformed one is a plain body like any other non-JSON text.
//
// On error it leaves resp untouched and returns an error wrapping
// ErrBadOutput.
func writeOutput(resp *fasthttp.Response, out []byte) error {
	rest := trimWS(out)
	if len(rest) == 0 {
		setJSONBody(resp, strNull)
		return nil
	}
	switch rest[0] {
	case '{':
		// The key can only be there if its end is, or an escape that could
		// spell it. `Code"` rather than the whole key: bytes.Index skips to
		// candidates by their first byte, and a quote is everywhere in JSON.
		if rest[len(rest)-1] != '}' || !bytes.Contains(rest, strCodeQuote) && !bytes.Contains(rest, strUnicodeEscape) {
			setJSONBody(resp, out)
			return nil
		}
		if hasStatus, err := scanOutput(rest); err != nil || !hasStatus {
			// Not JSON, or an object without a statusCode: the body.
			setJSONBody(resp, out)
			return nil
		}
	case '"':
		var s string
		if json.Unmarshal(rest, &s) != nil {
			setJSONBody(resp, out) // not a JSON string: text that starts with a quote
			return nil
		}
		setJSONBody(resp, []byte(s))
		return nil
	default:
		setJSONBody(resp, out)
		return nil
	}

	var r functionResponse
	if err := json.Unmarshal(out, &r); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			// The scan is lenient about tokens; what is not JSON is a body.
			setJSONBody(resp, out)
			return nil
		}
		return fmt.Errorf("%w: %v", ErrBadOutput, err)
	}
	code := 200
	if r.StatusCode != nil {
		code = *r.StatusCode
	}
	if code < 200 || code > 599 {
		return fmt.Errorf("%w: statusCode %d is not a final HTTP status", ErrBadOutput, code)
	}
	type header struct{ k, v string }
	headers := make([]header, 0, len(r.Headers))
	for k, raw := range r.Headers {
		v, ok, err := headerValue(raw)
		if err != nil {
			return fmt.Errorf("%w: header %q: %v", ErrBadOutput, k, err)
		}
		if ok {
			headers = append(headers, header{k, v})
		}
	}
	var body []byte
	if len(r.Body) > 0 && string(r.Body) != "null" {
		if r.Body[0] == '"' {
			var s string
			if err := json.Unmarshal(r.Body, &s); err != nil {
				return fmt.Errorf("%w: body: %v", ErrBadOutput, err)
			}
			body = []byte(s)
		} else {
			body = r.Body
		}
		if r.IsBase64Encoded {
			b, err := base64.StdEncoding.DecodeString(string(body))
			if err != nil {
				return fmt.Errorf("%w: body is not base64: %v", ErrBadOutput, err)
			}
			body = b
		}
	}

	resp.SetStatusCode(code)
	ctype := false
	for _, h := range headers {
		if skipResponseHeader(h.k) {
			continue
		}
		ctype = ctype || strings.EqualFold(h.k, fasthttp.HeaderContentType)
		resp.Header.Set(h.k, h.v)
	}
	for _, c := range r.Cookies {
		resp.Header.Add(fasthttp.HeaderSetCookie, c)
	}
	if !ctype {
		resp.Header.SetContentTypeBytes(strApplicationJSON)
	}
	resp.SetBody(body)
	return nil
}

var (
	strApplicationJSON = []byte("application/json")
	strNull            = []byte("null")
	strCodeQuote       = []byte(`Code"`)
	strUnicodeEscape   = []byte(`\u`)
)

// setJSONBody answers 200 with body, which is the gateway's once the
// invocation ended: it is not copied.
func setJSONBody(resp *fasthttp.Response, body []byte) {
	resp.SetStatusCode(fasthttp.StatusOK)
	resp.Header.SetContentTypeBytes(strApplicationJSON)
	resp.SetBodyRaw(body)
}

func headerValue(raw json.RawMessage) (string, bool, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false, nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, err
		}
		return s, true, nil
	case '{', '[':
		return "", false, errors.New("must be a string")
	default: // a number or a boolean, as API Gateway accepts
		return string(raw), true, nil
	}
}

// skipResponseHeader reports headers a function may not set: framing and
// hop-by-hop headers the server owns, and the request id.
func skipResponseHeader(k string) bool {
	switch strings.ToLower(k) {
	case "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",
		"trailer", "te", "proxy-connection", "x-sluice-request-id":
		return true
	}
	return false
}

// scanOutput reports whether out is a JSON object with a top-level
// "statusCode" key. It checks the structure of objects as it goes (strings,
// nesting, separators) without the cost of validating every token, which
// matters on the hot path: the output of a function that does not shape its
// response is passed through as the body. Anything other than an object is
// validated in full. An empty out is the function's null. It returns an
// error wrapping ErrBadOutput for what is not JSON.
func scanOutput(out []byte) (hasStatus bool, err error) {
	rest := skipWS(out, 0)
	if len(rest) == 0 {
		return false, nil
	}
	if rest[0] != '{' {
		if !json.Valid(out) {
			return false, fmt.Errorf("%w: not JSON", ErrBadOutput)
		}
		return false, nil
	}
	rest = skipWS(rest, 1)
	if len(rest) > 0 && rest[0] == '}' {
		rest = rest[1:]
	} else {
		for {
			if len(rest) == 0 || rest[0] != '"' {
				return false, errNotObject
			}
			end := stringEnd(rest)
			if end < 0 {
				return false, errNotObject
			}
			key := rest[:end]
			if string(key) == `"statusCode"` {
				hasStatus = true
			} else if len(key) > 2 && hasBackslash(key) {
				var k string
				if json.Unmarshal(key, &k) == nil && k == "statusCode" {
					hasStatus = true
				}
			}
			rest = skipWS(rest, end)
			if len(rest) == 0 || rest[0] != ':' {
				return false, errNotObject
			}
			rest = skipWS(rest, 1)
			n := valueEnd(rest)
			if n <= 0 {
				return false, errNotObject
			}
			rest = skipWS(rest, n)
			if len(rest) == 0 {
				return false, errNotObject
			}
			if rest[0] == '}' {
				rest = rest[1:]
				break
			}
			if rest[0] != ',' {
				return false, errNotObject
			}
			rest = skipWS(rest, 1)
		}
	}
	if len(skipWS(rest, 0)) != 0 {
		return false, errNotObject
	}
	return hasStatus, nil
}

var errNotObject = fmt.Errorf("%w: malformed JSON object", ErrBadOutput)

func trimWS(b []byte) []byte {
	b = skipWS(b, 0)
	for len(b) > 0 {
		switch b[len(b)-1] {
		case ' ', '\t', '\n', '\r':
			b = b[:len(b)-1]
			continue
		}
		break
	}
	return b
}

func skipWS(b []byte, i int) []byte {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
			continue
		}
		break
	}
	return b[i:]
}

func hasBackslash(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

// stringEnd returns the length of the JSON string at the start of b
// (quotes included), or -1. It jumps from quote to quote with
// bytes.IndexByte, which is vectorized: strings are most of a function's
// output. Control characters inside are not checked.
func stringEnd(b []byte) int {
	i := 1
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return -1
		}
		i += j
		n := 0
		for k := i - 1; k >= 1 && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return i + 1
		}
		i++
	}
}

// valueEnd returns the length of the JSON value at the start of b, or -1.
// Nested values are checked for balanced brackets and well-formed strings.
func valueEnd(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	switch b[0] {
	case '"':
		return stringEnd(b)
	case '{', '[':
		var stack [64]byte
		depth := 0
		for i := 0; i < len(b); i++ {
			switch c := b[i]; c {
			case '"':
				n := stringEnd(b[i:])
				if n < 0 {
					return -1
				}
				i += n - 1
			case '{', '[':
				// Past the stack's depth, brackets are only counted,
				// not matched: deeper than any response needs.
				if depth < len(stack) {
					stack[depth] = c
				}
				depth++
			case '}', ']':
				if depth == 0 {
					return -1
				}
				depth--
				if depth < len(stack) {
					want := byte('{')
					if c == ']' {
						want = '['
					}
					if stack[depth] != want {
						return -1
					}
				}
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	default:
		i := 0
		for i < len(b) {
			c := b[i]
			if c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r' {
				break
			}
			if !(c == '-' || c == '+' || c == '.' || ('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || c == 'E') {
				return -1
			}
			i++
		}
		if i == 0 {
			return -1
		}
		return i
	}
}
