package plugins

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestValidJSON(t *testing.T) {
	for _, s := range []string{
		``, ` `, `{}`, `[]`, ` { } `, `{"a":1}`, `{"a":1,}`, `{,}`, `[1,]`, `[,1]`, `[1 2]`, `{"a" 1}`, `{"a":}`,
		`{1:2}`, `{"a":1 "b":2}`, `"abc"`, `"a\"b"`, `"a\\"`, `"\u00e9\uD83D\uDE00"`, `"\u00g0"`, `"\x"`, `"\/"`,
		"\"tab\there\"", "\"nl\n\"", `"unterminated`, `"ends with backslash\`, `tru`, `true`, `trueX`, `null`, `nul`,
		`false`, `-`, `-0`, `-01`, `01`, `0.`, `0.5`, `.5`, `1e`, `1e+`, `1E-7`, `1.5e10`, `123abc`, `[1,[2,[3,{"x":[]}]]]`,
		`{"a":{"b":{"c":[true,false,null]}}}`, `]`, `}`, `[}`, `{]`, `[[]]]`, `{"a":1}}`, `1 2`, "\xff", "\"\xff\xfe\"",
		`{"key with \"escapes\" and ünïcödé":"value ` + strings.Repeat("long ", 40) + `"}`,
	} {
		if got, want := validJSON([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("validJSON(%q) = %v, json.Valid = %v", s, got, want)
		}
	}
}

func TestValidJSONDepth(t *testing.T) {
	for _, n := range []int{maxJSONDepth - 1, maxJSONDepth, maxJSONDepth + 1} {
		for _, open := range []string{"[", `{"a":`} {
			close := "]"
			if open != "[" {
				close = "}"
			}
			s := []byte(strings.Repeat(open, n) + "1" + strings.Repeat(close, n))
			if got, want := validJSON(s), json.Valid(s); got != want {
				t.Errorf("depth %d of %s: validJSON = %v, json.Valid = %v", n, open, got, want)
			}
		}
	}
}

func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5e3,"x\u0041",true,null,{}]}`, `"\\\"`, `[`, `-0.0E+1`, "\"\x01\""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid = %v", b, got, want)
		}
	})
}

func BenchmarkValidJSON(b *testing.B) {
	ev := &Event{ID: "id", Source: "s", Type: "t", DataContentType: "application/json",
		Data: []byte(`{"version":"2.0","routeKey":"POST /echo/{id}","rawPath":"/echo/42","rawQueryString":"x=1","headers":{"host":"localhost:8080","content-length":"17","content-type":"application/json","user-agent":"bench","x-forwarded-for":"127.0.0.1","x-forwarded-port":"8080","x-forwarded-proto":"http"},"queryStringParameters":{"x":"1"},"pathParameters":{"id":"42"},"requestContext":{"accountId":"anonymous","apiId":"sluice","domainName":"localhost:8080","domainPrefix":"localhost","http":{"method":"POST","path":"/echo/42","protocol":"HTTP/1.1","sourceIp":"127.0.0.1","userAgent":"bench"},"requestId":"6a3f0b8e-1c2d-4e5f-8a9b-0c1d2e3f4a5b","routeKey":"POST /echo/{id}","stage":"$default","time":"28/Nov/2026:17:57:30 +0000","timeEpoch":1795888650294},"body":"{\"hello\":\"world\"}","isBase64Encoded":false}`)}
	b.Run("validJSON", func(b *testing.B) {
		b.SetBytes(int64(len(ev.Data)))
		for b.Loop() {
			validJSON(ev.Data)
		}
	})
	b.Run("json.Valid", func(b *testing.B) {
		b.SetBytes(int64(len(ev.Data)))
		for b.Loop() {
			json.Valid(ev.Data)
		}
	})
}

func TestJSONValueEnd(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int
	}{
		{`1,2`, 1}, {`"a\"b" :`, 6}, {`{"a":[1,{}]}}`, 12}, {`[]]`, 2}, {`true false`, 4}, {`null`, 4},
		{` 1`, -1}, {``, -1}, {`{"a":}`, -1}, {`"open`, -1}, {`01`, 1}, {`-`, -1}, {`[1,]`, -1},
	} {
		if got := JSONValueEnd([]byte(tt.in)); got != tt.want {
			t.Errorf("JSONValueEnd(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}
