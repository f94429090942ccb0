package gateway

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/valyala/fasthttp"

	"github.com/sluicehq/sluice/plugins"
)

// ErrBadOutput is wrapped by the error of a function output that cannot be
// turned into an HTTP response: a JSON object with a statusCode whose
// fields are malformed (a statusCode that is not a final HTTP status, a
// header that is not a string, a body that is not base64 when
// isBase64Encoded says so). The gateway answers 502. Any other output is a
// 200 body, as API Gateway answers it.
var ErrBadOutput = errors.New("gateway: function output is not a valid HTTP response")

// responseFields are the raw values of a payload format 2.0 response's
// members, nil where absent. Format 2.0 has no multiValueHeaders (several
// values of a header are one comma-separated string): API Gateway ignores
// the field, and so do we, with every other unknown member.
type responseFields struct {
	statusCode, headers, cookies, body, isBase64Encoded []byte
}

// writeOutput turns a function's output into the response, following API
// Gateway's payload format 2.0 rules:
//
//   - a JSON object with a top-level "statusCode" is a response: statusCode,
//     headers (string, number or boolean values), cookies (one Set-Cookie
//     each), body (a string, base64 when isBase64Encoded; any other JSON
//     value is sent as its JSON text) and isBase64Encoded; other fields,
//     multiValueHeaders included, are ignored. Member names match exactly
//     (escapes decoded), and of a member given twice the last counts.
//     Content-Type defaults to application/json;
//   - a JSON string is a 200 whose body is the string's text, Content-Type
//     application/json, as API Gateway does;
//   - anything else — other JSON, null, or output that is not JSON at all
//     (the plain text a Lambda runtime may post) — is a 200 with the output
//     as the body and Content-Type application/json, which is what API
//     Gateway assumes of an output without a statusCode. An empty output is
//     the function's null.
//
// An object is read once: scanResponse validates it and keeps the raw
// values of the members above as it goes, and only those are decoded. An
// object that cannot hold the statusCode key is not read at all.
//
// On error it leaves resp untouched and returns an error wrapping
// ErrBadOutput.
func writeOutput(resp *fasthttp.Response, out []byte) error {
	rest := trimWS(out)
	if len(rest) == 0 {
		setJSONBody(resp, strNull)
		return nil
	}
	var f responseFields
	switch rest[0] {
	case '{':
		if rest[len(rest)-1] != '}' || !mayHoldStatusCode(rest) {
			setJSONBody(resp, out)
			return nil
		}
		var isResponse bool
		if f, isResponse = scanResponse(rest); !isResponse {
			// Not JSON, or an object without a statusCode: the body.
			setJSONBody(resp, out)
			return nil
		}
	case '"':
		if plugins.JSONValueEnd(rest) != len(rest) {
			setJSONBody(resp, out) // not a JSON string: text that starts with a quote
			return nil
		}
		setJSONBody(resp, unquote(rest))
		return nil
	default:
		setJSONBody(resp, out)
		return nil
	}
	return writeResponse(resp, &f)
}

// mayHoldStatusCode reports whether obj has the text of a "statusCode"
// key, or an escape that could spell it: only then can it be a response.
// It looks for `Code"` and then at what precedes it, rather than for the
// whole key: bytes.Index skips to candidates by their first byte, which
// is rare as a capital and everywhere as a quote or an 's'.
func mayHoldStatusCode(obj []byte) bool {
	for rest := obj; ; {
		i := bytes.Index(rest, strCodeQuote)
		if i < 0 {
			return bytes.Contains(obj, strUnicodeEscape)
		}
		if i >= len(`"status`) && string(rest[i-len(`"status`):i]) == `"status` {
			return true
		}
		rest = rest[i+len(strCodeQuote):]
	}
}

// writeResponse writes the response of a valid object with a statusCode,
// checking every field before it touches resp.
func writeResponse(resp *fasthttp.Response, f *responseFields) error {
	code := 200
	if !isNull(f.statusCode) {
		n, err := strconv.Atoi(string(f.statusCode))
		if err != nil {
			return fmt.Errorf("%w: statusCode %s is not an integer", ErrBadOutput, f.statusCode)
		}
		code = n
	}
	if code < 200 || code > 599 {
		return fmt.Errorf("%w: statusCode %d is not a final HTTP status", ErrBadOutput, code)
	}
	// Headers are decoded into a buffer first, so that a bad one leaves
	// resp untouched; a response seldom sets more than this many.
	var buf [16]header
	headers := buf[:0]
	if !isNull(f.headers) {
		if f.headers[0] != '{' {
			return fmt.Errorf("%w: headers must be an object", ErrBadOutput)
		}
		err := eachMember(f.headers, func(k, v []byte) error {
			if isNull(v) {
				return nil
			}
			switch v[0] {
			case '{', '[':
				return fmt.Errorf("%w: header %q: must be a string", ErrBadOutput, unquote(k))
			case '"':
				v = unquote(v)
			}
			// A number or a boolean is its JSON text, as API Gateway accepts.
			headers = append(headers, header{unquote(k), v})
			return nil
		})
		if err != nil {
			return err
		}
	}
	if !isNull(f.cookies) {
		if f.cookies[0] != '[' {
			return fmt.Errorf("%w: cookies must be an array of strings", ErrBadOutput)
		}
		if err := eachElement(f.cookies, func(v []byte) error {
			if v[0] != '"' && !isNull(v) {
				return fmt.Errorf("%w: cookies must be an array of strings", ErrBadOutput)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	isBase64 := false
	switch string(f.isBase64Encoded) {
	case "", "null", "false":
	case "true":
		isBase64 = true
	default:
		return fmt.Errorf("%w: isBase64Encoded %s is not a boolean", ErrBadOutput, f.isBase64Encoded)
	}
	// A string body is sent as its text. One with escapes (what most JSON
	// encoders make of a JSON body) is decoded at the end, straight into
	// the response's buffer.
	var body []byte
	escaped := false
	if !isNull(f.body) {
		body = f.body
		if body[0] == '"' {
			body = body[1 : len(body)-1]
			escaped = needsUnquote(body)
		}
		if isBase64 {
			if escaped {
				body, escaped = plugins.AppendUnquotedJSON(nil, f.body), false
			}
			b := make([]byte, base64.StdEncoding.DecodedLen(len(body)))
			n, err := base64.StdEncoding.Decode(b, body)
			if err != nil {
				return fmt.Errorf("%w: body is not base64: %v", ErrBadOutput, err)
			}
			body = b[:n]
		}
	}

	resp.SetStatusCode(code)
	ctype := false
	for _, h := range headers {
		if skipResponseHeader(h.k) {
			continue
		}
		ctype = ctype || bytes.EqualFold(h.k, strContentType)
		resp.Header.SetBytesKV(h.k, h.v)
	}
	if !isNull(f.cookies) {
		_ = eachElement(f.cookies, func(v []byte) error {
			if !isNull(v) {
				resp.Header.AddBytesKV(strSetCookie, unquote(v))
			}
			return nil
		})
	}
	if !ctype {
		resp.Header.SetContentTypeBytes(strApplicationJSON)
	}
	if escaped {
		b := resp.SwapBody(nil)
		resp.SwapBody(plugins.AppendUnquotedJSON(b[:0], f.body))
	} else {
		resp.SetBody(body)
	}
	return nil
}

type header struct{ k, v []byte }

// scanResponse reports whether out (without space around it) is a valid
// JSON object with a top-level "statusCode" member, and returns the raw
// values of the members a response has. It walks the object's members and
// validates each value with plugins.JSONValueEnd, once.
func scanResponse(out []byte) (f responseFields, isResponse bool) {
	hasStatus := false
	err := eachMember(out, func(k, v []byte) error {
		switch string(unquote(k)) {
		case "statusCode":
			f.statusCode, hasStatus = v, true
		case "headers":
			f.headers = v
		case "cookies":
			f.cookies = v
		case "body":
			f.body = v
		case "isBase64Encoded":
			f.isBase64Encoded = v
		}
		return nil
	})
	return f, err == nil && hasStatus
}

// eachMember calls fn with the raw key (quotes included) and raw value of
// each member of the JSON object obj, which must be all of obj, and
// validates it as it goes: it returns errNotJSON for what is not one valid
// object, or fn's error.
func eachMember(obj []byte, fn func(k, v []byte) error) error {
	if len(obj) == 0 || obj[0] != '{' {
		return errNotJSON
	}
	rest := skipWS(obj, 1)
	if len(rest) > 0 && rest[0] == '}' {
		return trailing(rest[1:])
	}
	for {
		if len(rest) == 0 || rest[0] != '"' {
			return errNotJSON
		}
		n := plugins.JSONValueEnd(rest)
		if n < 0 {
			return errNotJSON
		}
		k := rest[:n]
		rest = skipWS(rest, n)
		if len(rest) == 0 || rest[0] != ':' {
			return errNotJSON
		}
		rest = skipWS(rest, 1)
		if n = plugins.JSONValueEnd(rest); n < 0 {
			return errNotJSON
		}
		if err := fn(k, rest[:n]); err != nil {
			return err
		}
		if rest = skipWS(rest, n); len(rest) == 0 {
			return errNotJSON
		}
		switch rest[0] {
		case '}':
			return trailing(rest[1:])
		case ',':
			rest = skipWS(rest, 1)
		default:
			return errNotJSON
		}
	}
}

// eachElement is eachMember for the elements of a JSON array.
func eachElement(arr []byte, fn func(v []byte) error) error {
	if len(arr) == 0 || arr[0] != '[' {
		return errNotJSON
	}
	rest := skipWS(arr, 1)
	if len(rest) > 0 && rest[0] == ']' {
		return trailing(rest[1:])
	}
	for {
		n := plugins.JSONValueEnd(rest)
		if n < 0 {
			return errNotJSON
		}
		if err := fn(rest[:n]); err != nil {
			return err
		}
		if rest = skipWS(rest, n); len(rest) == 0 {
			return errNotJSON
		}
		switch rest[0] {
		case ']':
			return trailing(rest[1:])
		case ',':
			rest = skipWS(rest, 1)
		default:
			return errNotJSON
		}
	}
}

func trailing(rest []byte) error {
	if len(skipWS(rest, 0)) != 0 {
		return errNotJSON
	}
	return nil
}

var errNotJSON = fmt.Errorf("%w: malformed JSON", ErrBadOutput)

func isNull(raw []byte) bool { return len(raw) == 0 || string(raw) == "null" }

// unquote returns the text of the valid JSON string s, as encoding/json
// decodes it: without an escape or invalid UTF-8 that is s without its
// quotes, not copied.
func unquote(s []byte) []byte {
	in := s[1 : len(s)-1]
	if !needsUnquote(in) {
		return in
	}
	return plugins.AppendUnquotedJSON(nil, s)
}

// needsUnquote reports whether the inside of a JSON string has an escape
// or invalid UTF-8, which decoding changes.
func needsUnquote(in []byte) bool {
	return bytes.IndexByte(in, '\\') >= 0 || !utf8.Valid(in)
}

var (
	strApplicationJSON = []byte("application/json")
	strNull            = []byte("null")
	strCodeQuote       = []byte(`Code"`)
	strContentType     = []byte(fasthttp.HeaderContentType)
	strSetCookie       = []byte(fasthttp.HeaderSetCookie)
	strUnicodeEscape   = []byte(`\u`)
)

// setJSONBody answers 200 with body, which is the gateway's once the
// invocation ended: it is not copied.
func setJSONBody(resp *fasthttp.Response, body []byte) {
	resp.SetStatusCode(fasthttp.StatusOK)
	resp.Header.SetContentTypeBytes(strApplicationJSON)
	resp.SetBodyRaw(body)
}

// skipResponseHeader reports headers a function may not set: framing and
// hop-by-hop headers the server owns, and the request id.
func skipResponseHeader(k []byte) bool {
	var lower [len("x-sluice-request-id")]byte
	if len(k) > len(lower) {
		return false
	}
	for i, c := range k {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	switch string(lower[:len(k)]) {
	case "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade",
		"trailer", "te", "proxy-connection", "x-sluice-request-id":
		return true
	}
	return false
}

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
