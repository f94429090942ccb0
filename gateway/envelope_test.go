package gateway

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/valyala/fasthttp"
)

// requestCtx parses a raw HTTP/1.1 request into a RequestCtx as the server
// would, from the given peer.
func requestCtx(t testing.TB, raw string) *fasthttp.RequestCtx {
	t.Helper()
	var req fasthttp.Request
	if err := req.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatalf("cannot parse request: %v", err)
	}
	ctx := new(fasthttp.RequestCtx)
	ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP("192.0.2.7"), Port: 40000}, nil)
	return ctx
}

// encodeRequest routes ctx through a router holding route and returns the
// data of its event.
func encodeRequest(t testing.TB, ctx *fasthttp.RequestCtx, method, route string) []byte {
	t.Helper()
	r := testRouter(t, [2]string{method, route})
	p := new(Params)
	copy(p.id[:], "11111111-2222-4333-8444-555555555555")
	ep, _ := r.lookup(ctx.Method(), ctx.Path(), p)
	if ep == nil {
		t.Fatalf("%s %s does not match %s %s", ctx.Method(), ctx.Path(), method, route)
	}
	ri := requestInfo{headers: p.hs[:0], cookies: p.cs[:0], query: p.qs[:0]}
	ri.gather(ctx, p)
	size := estimateDataSize(&ri)
	data := appendRequestData(make([]byte, 0, size), &ri)
	if len(data) > size {
		t.Errorf("estimate %d is below the encoded size %d", size, len(data))
	}
	if !json.Valid(data) {
		t.Fatalf("invalid JSON: %s", data)
	}
	return data
}

func decodeV2(t testing.TB, data []byte) events.APIGatewayV2HTTPRequest {
	t.Helper()
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatalf("aws-lambda-go cannot decode %s: %v", data, err)
	}
	return ev
}

func TestEnvelopeAPIGatewayV2(t *testing.T) {
	raw := "POST /echo/a%20b?x=1&y=two&x=3&flag&q=%C3%A9%26 HTTP/1.1\r\n" +
		"Host: api.example.com:8080\r\n" +
		"User-Agent: curl/8.5.0\r\n" +
		"Content-Type: application/json\r\n" +
		"X-Multi: one\r\n" +
		"x-multi: two\r\n" +
		"X-Quote: say \"hi\" \\ there\r\n" +
		"Cookie: c1=v1; c2=v2\r\n" +
		"Cookie: c3=v3\r\n" +
		"X-Forwarded-For: 203.0.113.9\r\n" +
		"Traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n" +
		"Content-Length: 14\r\n" +
		"\r\n" +
		`{"hello":"é"}`
	ctx := requestCtx(t, raw)
	ctx.SetConnectionClose() // does not change the request
	data := encodeRequest(t, ctx, "POST", "/echo/{id}")
	ev := decodeV2(t, data)

	check := func(name, got, want string) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	check("version", ev.Version, "2.0")
	check("routeKey", ev.RouteKey, "POST /echo/{id}")
	check("rawPath", ev.RawPath, "/echo/a%20b")
	check("rawQueryString", ev.RawQueryString, "x=1&y=two&x=3&flag&q=%C3%A9%26")
	if want := []string{"c1=v1", "c2=v2", "c3=v3"}; !slices.Equal(ev.Cookies, want) {
		t.Errorf("cookies = %q, want %q", ev.Cookies, want)
	}
	wantHeaders := map[string]string{
		"host":              "api.example.com:8080",
		"user-agent":        "curl/8.5.0",
		"content-type":      "application/json",
		"content-length":    "14",
		"x-multi":           "one,two",
		"x-quote":           `say "hi" \ there`,
		"x-forwarded-for":   "203.0.113.9, 192.0.2.7",
		"x-forwarded-proto": "http",
		"traceparent":       "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
	}
	if !maps.Equal(ev.Headers, wantHeaders) {
		t.Errorf("headers =\n%v\nwant\n%v", ev.Headers, wantHeaders)
	}
	wantQuery := map[string]string{"x": "1,3", "y": "two", "flag": "", "q": "é&"}
	if !maps.Equal(ev.QueryStringParameters, wantQuery) {
		t.Errorf("queryStringParameters = %v, want %v", ev.QueryStringParameters, wantQuery)
	}
	if want := map[string]string{"id": "a b"}; !maps.Equal(ev.PathParameters, want) {
		t.Errorf("pathParameters = %v, want %v", ev.PathParameters, want)
	}
	rc := ev.RequestContext
	check("accountId", rc.AccountID, "anonymous")
	check("apiId", rc.APIID, "sluice")
	check("domainName", rc.DomainName, "api.example.com:8080")
	check("domainPrefix", rc.DomainPrefix, "api")
	check("http.method", rc.HTTP.Method, "POST")
	check("http.path", rc.HTTP.Path, "/echo/a%20b")
	check("http.protocol", rc.HTTP.Protocol, "HTTP/1.1")
	check("http.sourceIp", rc.HTTP.SourceIP, "192.0.2.7")
	check("http.userAgent", rc.HTTP.UserAgent, "curl/8.5.0")
	check("requestId", rc.RequestID, "11111111-2222-4333-8444-555555555555")
	check("requestContext.routeKey", rc.RouteKey, "POST /echo/{id}")
	check("stage", rc.Stage, "$default")
	ts, err := time.Parse("02/Jan/2006:15:04:05 -0700", rc.Time)
	if err != nil {
		t.Errorf("time %q: %v", rc.Time, err)
	}
	if d := ts.Sub(ctx.Time().Truncate(time.Second)); d != 0 {
		t.Errorf("time = %s, want %s", ts, ctx.Time())
	}
	if rc.TimeEpoch != ctx.Time().UnixMilli() {
		t.Errorf("timeEpoch = %d, want %d", rc.TimeEpoch, ctx.Time().UnixMilli())
	}
	check("body", ev.Body, `{"hello":"é"}`)
	if ev.IsBase64Encoded {
		t.Error("a JSON body is base64-encoded")
	}
}

func TestEnvelopeBodies(t *testing.T) {
	binary := string([]byte{0, 1, 2, 0xff, 0xfe, 'a'})
	tests := []struct {
		name, ctype, body string
		wantB64           bool
	}{
		{"json", "application/json", `{"a":1}`, false},
		{"json with charset", "application/json; charset=utf-8", `[1,2]`, false},
		{"text", "text/plain", "hello\nworld\t\"quoted\"", false},
		{"vendor json", "application/vnd.api+json", `{}`, false},
		{"xml upper case", "APPLICATION/XML", "<a/>", false},
		{"yaml", "application/yaml", "a: 1", false},
		{"octet-stream", "application/octet-stream", binary, true},
		{"text but not utf-8", "text/plain", binary, true},
		{"form post", "application/x-www-form-urlencoded", "a=1&b=2", true},
		{"no content type", "", "plain", true},
		{"image", "image/png", "\x89PNG\r\n", true},
		{"empty", "application/json", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := "PUT /b HTTP/1.1\r\nHost: h\r\n"
			if tt.ctype != "" {
				raw += "Content-Type: " + tt.ctype + "\r\n"
			}
			raw += "Content-Length: " + itoa(len(tt.body)) + "\r\n\r\n" + tt.body
			data := encodeRequest(t, requestCtx(t, raw), "PUT", "/b")
			ev := decodeV2(t, data)
			if ev.IsBase64Encoded != tt.wantB64 {
				t.Fatalf("isBase64Encoded = %v, want %v", ev.IsBase64Encoded, tt.wantB64)
			}
			got := ev.Body
			if ev.IsBase64Encoded {
				b, err := base64.StdEncoding.DecodeString(ev.Body)
				if err != nil {
					t.Fatal(err)
				}
				got = string(b)
			}
			if got != tt.body {
				t.Fatalf("body = %q, want %q", got, tt.body)
			}
			if tt.body == "" && strings.Contains(string(data), `"body"`) {
				t.Fatalf("an empty body is encoded: %s", data)
			}
		})
	}
}

func TestEnvelopeMinimal(t *testing.T) {
	data := encodeRequest(t, requestCtx(t, "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"), "GET", "/")
	for _, absent := range []string{`"cookies"`, `"queryStringParameters"`, `"pathParameters"`, `"body"`} {
		if strings.Contains(string(data), absent) {
			t.Errorf("%s present in %s", absent, data)
		}
	}
	ev := decodeV2(t, data)
	if ev.RawPath != "/" || ev.RequestContext.DomainPrefix != "localhost" || ev.Headers["host"] != "localhost" {
		t.Fatalf("unexpected event %+v", ev)
	}
}

func itoa(n int) string { return string(fasthttp.AppendUint(nil, n)) }
