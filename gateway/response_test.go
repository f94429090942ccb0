package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/valyala/fasthttp"

	"github.com/sluicehq/sluice/plugins"
)

type wantResponse struct {
	code    int
	ctype   string
	body    string
	headers map[string]string
	cookies []string
}

func TestWriteOutput(t *testing.T) {
	lambdaResp, err := json.Marshal(events.APIGatewayV2HTTPResponse{
		StatusCode: 201,
		Headers:    map[string]string{"X-From": "go"},
		Body:       "created",
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		out  string
		want wantResponse
	}{
		{"plain object", `{"a":1,"b":[1,2,{"c":"}"}]}`, wantResponse{200, "application/json", `{"a":1,"b":[1,2,{"c":"}"}]}`, nil, nil}},
		{"nested statusCode does not count", `{"data":{"statusCode":404}}`, wantResponse{200, "application/json", `{"data":{"statusCode":404}}`, nil, nil}},
		{"statusCode in a string does not count", `{"x":"\"statusCode\":1"}`, wantResponse{200, "application/json", `{"x":"\"statusCode\":1"}`, nil, nil}},
		{"array", `[1,2,3]`, wantResponse{200, "application/json", `[1,2,3]`, nil, nil}},
		{"string is the body", `"hello \"you\""`, wantResponse{200, "application/json", `hello "you"`, nil, nil}},
		{"padded object", " {\"a\":1}\n", wantResponse{200, "application/json", " {\"a\":1}\n", nil, nil}},
		{"unicode escapes, no statusCode", `{"a":"\u003c"}`, wantResponse{200, "application/json", `{"a":"\u003c"}`, nil, nil}},
		{"number", `42`, wantResponse{200, "application/json", `42`, nil, nil}},
		{"null", `null`, wantResponse{200, "application/json", `null`, nil, nil}},
		{"empty output is null", ``, wantResponse{200, "application/json", `null`, nil, nil}},
		{"whitespace output is null", " \n", wantResponse{200, "application/json", `null`, nil, nil}},
		{"empty object", `{}`, wantResponse{200, "application/json", `{}`, nil, nil}},
		{"response", `{"statusCode":201,"headers":{"Content-Type":"text/plain","X-N":7,"X-B":true},"body":"made"}`,
			wantResponse{201, "text/plain", "made", map[string]string{"X-N": "7", "X-B": "true"}, nil}},
		{"response without content type", `{"statusCode":404,"body":"{\"error\":\"no\"}"}`,
			wantResponse{404, "application/json", `{"error":"no"}`, nil, nil}},
		{"base64 body", `{"statusCode":200,"headers":{"content-type":"image/png"},"body":"iVBORw0KGgo=","isBase64Encoded":true}`,
			wantResponse{200, "image/png", "\x89PNG\r\n\x1a\n", nil, nil}},
		{"cookies", `{"statusCode":200,"cookies":["a=1; Path=/","b=2; HttpOnly"],"body":""}`,
			wantResponse{200, "application/json", "", nil, []string{"a=1; Path=/", "b=2; HttpOnly"}}},
		{"multiValueHeaders are not in format 2.0", `{"statusCode":200,"multiValueHeaders":{"X-M":["1","2"]},"headers":{"X-H":"1,2"}}`,
			wantResponse{200, "application/json", "", map[string]string{"X-M": "", "X-H": "1,2"}, nil}},
		{"plain text", `Hello from Lambda!`, wantResponse{200, "application/json", `Hello from Lambda!`, nil, nil}},
		{"plain text with a statusCode-like word", `statusCode: 500`, wantResponse{200, "application/json", `statusCode: 500`, nil, nil}},
		{"html", "<h1>hi</h1>\n", wantResponse{200, "application/json", "<h1>hi</h1>\n", nil, nil}},
		{"not JSON, starts like an object", `{"a":1`, wantResponse{200, "application/json", `{"a":1`, nil, nil}},
		{"not JSON, an object with statusCode", `{"statusCode":200}}`, wantResponse{200, "application/json", `{"statusCode":200}}`, nil, nil}},
		{"not JSON, a bad token after statusCode", `{"statusCode":200,"a":tru}`, wantResponse{200, "application/json", `{"statusCode":200,"a":tru}`, nil, nil}},
		{"not JSON, an unterminated string", `"unterminated`, wantResponse{200, "application/json", `"unterminated`, nil, nil}},
		{"not JSON, a word", `tru`, wantResponse{200, "application/json", `tru`, nil, nil}},
		{"not JSON, a broken array", `[1,2`, wantResponse{200, "application/json", `[1,2`, nil, nil}},
		{"not UTF-8", "\xff\xfe", wantResponse{200, "application/json", "\xff\xfe", nil, nil}},
		{"statusCode and nothing else", `{"statusCode":204}`, wantResponse{204, "application/json", "", nil, nil}},
		{"null statusCode is 200", `{"statusCode":null,"body":"x"}`, wantResponse{200, "application/json", "x", nil, nil}},
		{"unknown fields ignored", `{"statusCode":202,"body":"b","extra":{"k":1}}`, wantResponse{202, "application/json", "b", nil, nil}},
		{"base64 with text content type", `{"statusCode":200,"headers":{"content-type":"text/plain"},"body":"aGk=","isBase64Encoded":true}`,
			wantResponse{200, "text/plain", "hi", nil, nil}},
		{"isBase64Encoded false keeps the body", `{"statusCode":200,"body":"aGk=","isBase64Encoded":false}`, wantResponse{200, "application/json", "aGk=", nil, nil}},
		{"non-string body kept as JSON", `{"statusCode":200,"body":{"k":[1]}}`,
			wantResponse{200, "application/json", `{"k":[1]}`, nil, nil}},
		{"null fields of aws-lambda-go", string(lambdaResp), wantResponse{201, "application/json", "created", map[string]string{"X-From": "go"}, nil}},
		{"framing headers dropped", `{"statusCode":200,"headers":{"Content-Length":"99","Connection":"close","X-Sluice-Request-Id":"forged"},"body":"ok"}`,
			wantResponse{200, "application/json", "ok", map[string]string{"Content-Length": "", "Connection": "", HeaderRequestID: ""}, nil}},
		{"escaped statusCode key", `{"status\u0043ode":202}`, wantResponse{202, "application/json", "", nil, nil}},
		{"member names match exactly", `{"statusCode":200,"Body":"x","HEADERS":{"X-A":"1"}}`, wantResponse{200, "application/json", "", map[string]string{"X-A": ""}, nil}},
		{"the last of a member given twice counts", `{"statusCode":500,"body":"a","statusCode":201,"body":"b"}`, wantResponse{201, "application/json", "b", nil, nil}},
		{"space everywhere", " {\n \"statusCode\" : 200 ,\t\"headers\" : { \"X-A\" : \"1\" } , \"cookies\" : [ \"a=1\" ] , \"body\" : \"ok\" }\n",
			wantResponse{200, "application/json", "ok", map[string]string{"X-A": "1"}, []string{"a=1"}}},
		{"escaped header name and value", `{"statusCode":200,"headers":{"X-\u0041":"caf\u00e9"}}`, wantResponse{200, "application/json", "", map[string]string{"X-A": "café"}, nil}},
		{"null header and cookie skipped", `{"statusCode":200,"headers":{"X-N":null},"cookies":[null,"a=1"]}`, wantResponse{200, "application/json", "", map[string]string{"X-N": ""}, []string{"a=1"}}},
		{"invalid UTF-8 in the body string", "{\"statusCode\":200,\"body\":\"a\xffb\"}", wantResponse{200, "application/json", "a\ufffdb", nil, nil}},
		{"not JSON, a bad token in a header", `{"statusCode":200,"headers":{"X":tru}}`, wantResponse{200, "application/json", `{"statusCode":200,"headers":{"X":tru}}`, nil, nil}},
		{"not JSON, a control character in a string", "{\"statusCode\":200,\"body\":\"a\x01\"}", wantResponse{200, "application/json", "{\"statusCode\":200,\"body\":\"a\x01\"}", nil, nil}},
		{"not JSON, a trailing comma", `{"statusCode":200,}`, wantResponse{200, "application/json", `{"statusCode":200,}`, nil, nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp fasthttp.Response
			if err := writeOutput(&resp, []byte(tt.out)); err != nil {
				t.Fatalf("writeOutput: %v", err)
			}
			checkResponse(t, &resp, tt.want)
		})
	}
}

func checkResponse(t *testing.T, resp *fasthttp.Response, want wantResponse) {
	t.Helper()
	if resp.StatusCode() != want.code {
		t.Errorf("status = %d, want %d", resp.StatusCode(), want.code)
	}
	if got := string(resp.Header.ContentType()); got != want.ctype {
		t.Errorf("content-type = %q, want %q", got, want.ctype)
	}
	if got := string(resp.Body()); got != want.body {
		t.Errorf("body = %q, want %q", got, want.body)
	}
	for k, v := range want.headers {
		if got := string(resp.Header.Peek(k)); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	var cookies []string
	for _, v := range resp.Header.Cookies() {
		cookies = append(cookies, string(v))
	}
	sort.Strings(cookies)
	if !slices.Equal(cookies, want.cookies) {
		t.Errorf("Set-Cookie = %q, want %q", cookies, want.cookies)
	}
}

func TestWriteOutputErrors(t *testing.T) {
	// Only a JSON object with a statusCode can be a bad response: anything
	// else is a body.
	for _, out := range []string{
		`{"statusCode":"200"}`,
		`{"statusCode":200.5}`,
		`{"statusCode":99}`,
		`{"statusCode":600}`,
		`{"statusCode":200,"headers":{"X":{"nested":1}}}`,
		`{"statusCode":200,"headers":[1]}`,
		`{"statusCode":200,"body":"%%%","isBase64Encoded":true}`,
		`{"statusCode":200,"cookies":"a=1"}`,
		`{"statusCode":200,"isBase64Encoded":"yes"}`,
		`{"statusCode":200,"body":"aGk","isBase64Encoded":true}`,
		`{"statusCode":true}`,
		`{"statusCode":2e2}`,
		`{"statusCode":99999999999999999999}`,
		`{"statusCode":200,"headers":"X: 1"}`,
		`{"statusCode":200,"cookies":[1]}`,
		`{"statusCode":200,"cookies":[["a=1"]]}`,
	} {
		t.Run(out, func(t *testing.T) {
			var resp fasthttp.Response
			resp.Header.Set("X-Before", "kept")
			err := writeOutput(&resp, []byte(out))
			if !errors.Is(err, ErrBadOutput) {
				t.Fatalf("writeOutput(%s) = %v, want ErrBadOutput", out, err)
			}
			if resp.StatusCode() != 200 || len(resp.Body()) != 0 || string(resp.Header.Peek("X-Before")) != "kept" {
				t.Fatalf("response changed on error: %d %q", resp.StatusCode(), resp.Body())
			}
		})
	}
}

// FuzzWriteOutput checks the response decoder against encoding/json: for
// valid JSON it finds a top-level statusCode exactly when there is one;
// writeOutput passes objects without one, and anything that is not JSON,
// through unchanged as a 200 body; only a valid object with a statusCode
// can be refused; and it never panics on anything.
func FuzzWriteOutput(f *testing.F) {
	for _, s := range []string{
		`{"statusCode":200,"body":"x"}`, `{"a":{"statusCode":1}}`, `[{"statusCode":1}]`, `null`, ``,
		`{"statusCode":201,"headers":{"a":"b"},"cookies":["c=d"],"isBase64Encoded":true,"body":"aGk="}`,
		`{"x":"\u0022statusCode\u0022"}`, `{"status\u0043ode":200}`, `{"a":[[[[[]]]]],"b":-1.5e3,"c":true}`,
		`plain text`, `{"statusCode":200,"a":tru}`, `"unterminated`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, out []byte) {
		var resp fasthttp.Response
		err := writeOutput(&resp, out)
		var m map[string]json.RawMessage
		isObject := json.Unmarshal(out, &m) == nil && m != nil
		_, hasStatus := m["statusCode"]
		if err != nil && !(isObject && hasStatus) {
			t.Fatalf("writeOutput(%q) = %v: only an object with a statusCode may be refused", out, err)
		}
		if err != nil && !errors.Is(err, ErrBadOutput) {
			t.Fatalf("writeOutput(%q) = %v, not an ErrBadOutput", out, err)
		}
		if !json.Valid(out) {
			if len(trimWS(out)) > 0 && (err != nil || resp.StatusCode() != 200 || !bytes.Equal(resp.Body(), out)) {
				t.Fatalf("writeOutput(%q) = %v: %d %q, want the output as a 200 body", out, err, resp.StatusCode(), resp.Body())
			}
			if _, ok := scanResponse(trimWS(out)); ok {
				t.Fatalf("scanResponse(%q) takes output that is not JSON for a response", out)
			}
			return
		}
		_, got := scanResponse(trimWS(out))
		if got != (isObject && hasStatus) {
			t.Fatalf("scanResponse(%q) statusCode = %v, want %v", out, got, isObject && hasStatus)
		}
		if isObject && hasStatus && err == nil {
			// A response: its status is the statusCode's (null is 200).
			want := 200
			if raw := m["statusCode"]; string(raw) != "null" && json.Unmarshal(raw, &want) != nil {
				t.Fatalf("writeOutput(%q) took statusCode %s", out, raw)
			}
			if resp.StatusCode() != want {
				t.Fatalf("writeOutput(%q): status %d, want the statusCode's %d", out, resp.StatusCode(), want)
			}
		}
		if isObject && !hasStatus && (err != nil || !bytes.Equal(resp.Body(), out)) {
			t.Fatalf("writeOutput(%q) = %v, body %q, for an object without statusCode", out, err, resp.Body())
		}
	})
}

// TestWriteOutputAllocs holds the mapping of a shaped response (headers,
// a cookie, a plain or an escaped string body) and of a passed-through
// object to zero allocations: the output is read once and nothing of it is
// copied but into the response.
func TestWriteOutputAllocs(t *testing.T) {
	for name, out := range map[string]string{
		"response":     `{"statusCode":201,"headers":{"content-type":"text/plain","x-n":7},"cookies":["a=1; Path=/"],"body":"made"}`,
		"passthrough":  `{"errorCode":"E1","items":[1,2,{"k":"v"}]}`,
		"escaped body": `{"statusCode":200,"headers":{"content-type":"application/json"},"body":"{\"order\":{\"id\":\"A-1\",\"note\":\"caf\u00e9\"}}"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if raceEnabled && name == "escaped body" {
				t.Skip("the body buffer is pooled, and the race detector drops pool puts")
			}
			var resp fasthttp.Response
			b := []byte(out)
			if n := testing.AllocsPerRun(1000, func() {
				resp.Reset()
				if err := writeOutput(&resp, b); err != nil {
					t.Fatal(err)
				}
			}); n != 0 {
				t.Fatalf("writeOutput: %v allocations, want 0", n)
			}
		})
	}
}

// FuzzUnquote checks the JSON string decoder against encoding/json on
// every valid JSON string.
func FuzzUnquote(f *testing.F) {
	for _, s := range []string{`"plain"`, `"a\"b\\c\/d\b\f\n\r\t"`, `"caf\u00e9 \ud83d\ude00"`, `"lone \ud83d x"`,
		`"\udc00\ud83d"`, `"\ud83d\u0041"`, "\"bad \xff utf8\"", "\"raw surrogate \xed\xa0\x80\"", `""`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, s []byte) {
		if len(s) < 2 || s[0] != '"' || plugins.JSONValueEnd(s) != len(s) {
			return
		}
		var want string
		if err := json.Unmarshal(s, &want); err != nil {
			t.Fatalf("encoding/json rejects %q: %v", s, err)
		}
		if got := plugins.AppendUnquotedJSON(nil, s); string(got) != want {
			t.Fatalf("plugins.AppendUnquotedJSON(%q) = %q, encoding/json %q", s, got, want)
		}
		if got := unquote(s); string(got) != want {
			t.Fatalf("unquote(%q) = %q, encoding/json %q", s, got, want)
		}
	})
}
