package gateway

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/valyala/fasthttp"
)

// FuzzEnvelope feeds raw requests through fasthttp's parser and the
// envelope encoder: whatever fasthttp accepts must become valid JSON that
// aws-lambda-go decodes, with the body and path parameters intact.
func FuzzEnvelope(f *testing.F) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /echo/a%20b?x=1&x=2&y HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\nCookie: a=b; c=d\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
		"PUT /files/a/b/c HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nX-A: 1\r\nx-a: \"2\"\r\nContent-Length: 3\r\n\r\n\xff\x00a",
		"POST /echo/1 HTTP/1.1\r\nHost: [::1]:80\r\nX-Forwarded-For: 1.2.3.4\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	r := testRouter(f, [2]string{"ANY", "/"}, [2]string{"ANY", "/echo/{id}"}, [2]string{"ANY", "/{any+}"})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var req fasthttp.Request
		if req.Read(bufio.NewReader(bytes.NewReader(raw))) != nil {
			return
		}
		ctx := new(fasthttp.RequestCtx)
		ctx.Init(&req, &net.TCPAddr{IP: net.ParseIP("::1"), Port: 1}, nil)
		p := new(Params)
		newRequestID(&p.id)
		ep, _ := r.lookup(ctx.Method(), ctx.Path(), p)
		if ep == nil {
			return
		}
		ri := requestInfo{headers: p.hs[:0], cookies: p.cs[:0], query: p.qs[:0]}
		ri.gather(ctx, p)
		data := appendRequestData(nil, &ri)
		if !json.Valid(data) {
			t.Fatalf("invalid JSON for %q: %s", raw, data)
		}
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatalf("aws-lambda-go cannot decode %s: %v", data, err)
		}
		body := []byte(ev.Body)
		if ev.IsBase64Encoded {
			var err error
			if body, err = base64.StdEncoding.DecodeString(ev.Body); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(body, ctx.PostBody()) {
			t.Fatalf("body %q came out as %q", ctx.PostBody(), body)
		}
		for i := 0; i < p.Len(); i++ {
			if v := p.Value(i); bytes.ContainsRune(v, 0xfffd) || !json.Valid(append(append([]byte(`"`), v...), '"')) {
				continue // invalid UTF-8 is replaced, as encoding/json does
			}
			if got := ev.PathParameters[p.Name(i)]; got != string(p.Value(i)) {
				t.Fatalf("path parameter %s = %q, want %q", p.Name(i), got, p.Value(i))
			}
		}
	})
}

// FuzzRouter checks lookups on arbitrary paths: no panic, and every
// parameter is a non-empty piece of the path, one segment unless greedy.
func FuzzRouter(f *testing.F) {
	for _, s := range []string{"/echo/1", "/users/me/settings", "/files/a/b", "//", "/a/b/c/", "", "/echo//", "/users/x/posts/y"} {
		f.Add("GET", s)
	}
	r := testRouter(f,
		[2]string{"GET", "/echo/{id}"}, [2]string{"GET", "/users/me"}, [2]string{"GET", "/users/{u}/settings"},
		[2]string{"POST", "/users/{id}/posts/{post}"}, [2]string{"GET", "/files/{path+}"}, [2]string{"ANY", "/a/{b}/c"},
	)
	f.Fuzz(func(t *testing.T, method, path string) {
		p := new(Params)
		ep, miss := r.lookup([]byte(method), []byte(path), p)
		if ep != nil && miss != nil && p.ep != ep {
			t.Fatal("inconsistent match")
		}
		if ep == nil {
			if p.Len() != 0 {
				t.Fatalf("%d params on a miss", p.Len())
			}
			return
		}
		for i := 0; i < p.Len(); i++ {
			v := p.Value(i)
			greedy := ep.pattern == "/files/{path+}"
			if len(v) == 0 || (!greedy && bytes.IndexByte(v, '/') >= 0) || !bytes.Contains([]byte(path), v) {
				t.Fatalf("%s %s: parameter %s = %q", method, path, p.Name(i), v)
			}
		}
	})
}
