package filter

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/sluicehq/sluice/plugins"
)

// The fuzzers' seed corpora live in testdata/fuzz/<name>; the table tests'
// patterns and the sample event seed them too.

func FuzzCompile(f *testing.F) {
	for _, s := range seedPatterns {
		f.Add(s)
	}
	ev := sample()
	f.Fuzz(func(t *testing.T, pattern string) {
		p, err := Compile(json.RawMessage(pattern))
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Compile error %T is not *Error: %v", err, err)
			}
			return
		}
		got := p.Match(ev)
		if want := refMatch([]byte(pattern), ev); got != want {
			t.Fatalf("Match = %v, reference = %v for %s", got, want, pattern)
		}
	})
}

func FuzzMatch(f *testing.F) {
	data := string(sample().Data)
	for _, s := range seedPatterns {
		f.Add(s, data)
	}
	f.Add(`{"data": {"a": [{"prefix": "x"}]}}`, `{"a": "x\u00e9\ud83d\ude00", "a\u0062": [1, {"c": null}]}`)
	f.Add(`{"data": [{"exists": true}]}`, `  [1e999, -0.0, "\ud800"] `)
	f.Fuzz(func(t *testing.T, pattern, data string) {
		p, err := Compile(json.RawMessage(pattern))
		if err != nil {
			return
		}
		ev := &plugins.Event{ID: "id-1", Source: "src", Type: "t", Subject: "s/k",
			DataContentType: "application/json", Data: []byte(data)}
		if got, want := plugins.ValidJSON(ev.Data), json.Valid(ev.Data); got != want {
			t.Fatalf("plugins.ValidJSON = %v, json.Valid = %v for %q", got, want, data)
		}
		got := p.Match(ev)
		if want := refMatch([]byte(pattern), ev); got != want {
			t.Fatalf("Match = %v, reference = %v\npattern %s\ndata %q", got, want, pattern, data)
		}
	})
}

func FuzzUnquote(f *testing.F) {
	for _, s := range []string{`"plain"`, `"\u00e9\n\t\"\\\/"`, `"\ud83d\ude00"`, `"\ud800x"`, `"\udc00\ud800"`, "\"\xff\xfe\"", `"\u0000"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, lit string) {
		b := bytes.TrimSpace([]byte(lit))
		if !json.Valid(b) || len(b) < 2 || b[0] != '"' {
			return
		}
		if !plugins.ValidJSON(b) {
			t.Fatalf("plugins.ValidJSON(%q) = false for a valid literal", lit)
		}
		var want string
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		if got := string(plugins.AppendUnquotedJSON(nil, b)); got != want {
			t.Fatalf("plugins.AppendUnquotedJSON(%q) = %q, want %q", lit, got, want)
		}
	})
}

var seedPatterns = []string{
	`{}`,
	`{"type": ["sluice.storage.object.created"], "data": {"s3": {"object": {"key": [{"prefix": "img/"}]}}}}`,
	`{"data": {"status": ["paid"], "amount": [{"numeric": [">", 0, "<=", 500]}]}}`,
	`{"data": {"state": [{"anything-but": ["stopped", "overloaded"]}], "c-count": [{"exists": true}]}}`,
	`{"data": {"$or": [{"c-count": [{"numeric": [">", 0, "<=", 5]}]}, {"d-count": [{"numeric": ["<", 10]}]}]}}`,
	`{"data": {"items": {"sku": ["B2"], "qty": [7]}}}`,
	`{"data": {"name": [{"equals-ignore-case": "alice"}, {"wildcard": "a*e"}]}}`,
	`{"data": {"source-ip": [{"cidr": "10.0.0.0/24"}]}, "subject": [{"suffix": "def0"}]}`,
	`{"data": {"responseElements": [null], "tags": [{"exists": false}]}}`,
	`{"partitionkey": [{"anything-but": {"prefix": "tmp/"}}], "kafkaoffset": [{"numeric": [">=", 0]}]}`,
}
