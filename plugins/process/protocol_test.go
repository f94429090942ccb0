package process

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

func TestDecodeLine(t *testing.T) {
	tests := []struct {
		name     string
		line     string
		isResult bool
		err      string // substring of a protocol error
		results  int
	}{
		{"empty results", `{"batch":"b","results":[]}`, true, "", 0},
		{"results first", `{"results":[{"id":"a","ok":true}],"batch":"b"}`, true, "", 1},
		{"whitespace", " { \"batch\" : \"b\" ,\t\"results\" : [ { \"id\" : \"a\" , \"ok\" : false , \"error\" : \"x\" } ] } ", true, "", 1},
		{"unknown keys skipped", `{"batch":"b","extra":{"deep":[1,2,{"x":null}]},"results":[{"id":"a","ok":true,"output":1,"meta":[true]}]}`, true, "", 1},
		{"escaped key", `{"b\u0061tch":"b","results":[]}`, true, "", 0},
		{"stray text", `hello world`, false, "", 0},
		{"stray blank", ``, false, "", 0},
		{"stray JSON without batch", `{"level":"info","msg":"hi"}`, false, "", 0},
		{"stray JSON array", `[1,2]`, false, "", 0},
		{"stray malformed without batch", `{oops`, false, "", 0},
		{"malformed with batch", `{"batch":"b","results":[{"id":`, false, "malformed result line", 0},
		{"trailing garbage", `{"batch":"b","results":[]} x`, false, "malformed result line", 0},
		{"two objects", `{"batch":"b","results":[]}{"batch":"b","results":[]}`, false, "malformed result line", 0},
		{"batch not a string", `{"batch":1,"results":[]}`, false, `"batch" must be a string`, 0},
		{"no results", `{"batch":"b"}`, false, `no "results" array`, 0},
		{"results not an array", `{"batch":"b","results":{}}`, false, `"results" must be an array`, 0},
		{"result not an object", `{"batch":"b","results":[1]}`, false, "result 0 is not an object", 0},
		{"result without id", `{"batch":"b","results":[{"ok":true}]}`, false, `result 0 has no "id"`, 0},
		{"id not a string", `{"batch":"b","results":[{"id":7,"ok":true}]}`, false, `result 0: "id" must be a string`, 0},
		{"ok not a bool", `{"batch":"b","results":[{"id":"a","ok":"yes"}]}`, false, `"ok" must be true or false`, 0},
		{"invalid output", `{"batch":"b","results":[{"id":"a","ok":true,"output":01}]}`, false, "malformed", 0},
		{"bad escape", `{"batch":"b","results":[{"id":"\x","ok":true}]}`, false, "malformed", 0},
		{"control char", "{\"batch\":\"b\",\"results\":[{\"id\":\"a\tb\"}]}", false, "malformed", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l resultLine
			isResult, err := l.decode([]byte(tt.line))
			if tt.err != "" {
				if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("decode = %v, %v; want ErrProtocol %q", isResult, err, tt.err)
				}
				return
			}
			if err != nil || isResult != tt.isResult {
				t.Fatalf("decode = %v, %v; want %v", isResult, err, tt.isResult)
			}
			if isResult && len(l.results) != tt.results {
				t.Fatalf("%d results, want %d", len(l.results), tt.results)
			}
		})
	}
}

func TestFill(t *testing.T) {
	evs := []*plugins.Event{{ID: "a"}, {ID: "b"}, {ID: "dup"}, {ID: "dup"}, {ID: "e\"q"}, {ID: "missing"}}
	line := `{"batch":"B","results":[` +
		`{"id":"b","ok":true,"output":{"n":2}},` + // out of order
		`{"id":"dup","ok":true,"output":"first"},` +
		`{"id":"a","ok":true},` + // no output: null
		`{"id":"dup","output":"second"},` + // no ok, no error: success
		`{"id":"e\"q","ok":false,"error":{"code":7},"error_type":"Weird"},` + // escaped id, error not a string
		`{"id":"stranger","ok":true},` + // no such event
		`{"id":"a","ok":false,"error":"again"}` + // a second result for a
		`]}`
	var l resultLine
	if ok, err := l.decode([]byte(line)); !ok || err != nil {
		t.Fatal(ok, err)
	}
	b := &plugins.Batch{ID: "B", Events: evs, Results: make([]plugins.Result, len(evs))}
	_, _, unmatched := l.fill(b, nil, nil)
	if unmatched != 2 {
		t.Errorf("unmatched = %d, want 2", unmatched)
	}
	want := []string{"<nil>", `{"n":2}`, `"first"`, `"second"`}
	for i, w := range want {
		r := b.Results[i]
		if r.Err != nil || fmt.Sprint(string(r.Output)) != strings.TrimPrefix(w, "<nil>") || (w == "<nil>") != (r.Output == nil) {
			t.Errorf("result %d = %s, %v; want %s", i, r.Output, r.Err, w)
		}
	}
	var fe *plugins.FunctionError
	if !errors.As(b.Results[4].Err, &fe) || fe.Message != `{"code":7}` || fe.Type != "Weird" {
		t.Errorf("result 4 = %#v", b.Results[4].Err)
	}
	if err := b.Results[5].Err; !errors.Is(err, ErrMissingResult) || !strings.Contains(err.Error(), `"missing"`) {
		t.Errorf("result 5 = %v, want ErrMissingResult", err)
	}
	// Outputs must not alias the line: it is a reused buffer.
	line2 := []byte(line)
	if ok, _ := l.decode(line2); !ok {
		t.Fatal("decode")
	}
	_, _, _ = l.fill(b, nil, nil)
	for i := range line2 {
		line2[i] = 'X'
	}
	if string(b.Results[1].Output) != `{"n":2}` {
		t.Errorf("output changed with the line: %s", b.Results[1].Output)
	}
}

func TestAppendBatchLine(t *testing.T) {
	evs := []*plugins.Event{
		{ID: "1", Source: "s", Type: "t", Data: []byte("{\r\n\t\"a\": \"x\\ny\",\n\"b\": [1,\n2]\n}")},
		{ID: "2\n", Source: "s", Type: "t", DataContentType: "text/plain", Data: []byte("line1\nline2\r")},
	}
	deadline := time.UnixMilli(1700000000123)
	line := appendBatchLine(nil, "B\n1", deadline, evs, nil)
	if bytes.Count(line, []byte{'\n'}) != 1 || line[len(line)-1] != '\n' || bytes.IndexByte(line, '\r') >= 0 {
		t.Fatalf("not exactly one line: %q", line)
	}
	var got struct {
		Batch      string          `json:"batch"`
		DeadlineMS int64           `json:"deadline_ms"`
		Events     []plugins.Event `json:"events"`
	}
	if err := json.Unmarshal(line, &got); err != nil {
		t.Fatal(err)
	}
	if got.Batch != "B\n1" || got.DeadlineMS != 1700000000123 || len(got.Events) != 2 {
		t.Fatalf("decoded %+v", got)
	}
	var data map[string]any
	if err := json.Unmarshal(got.Events[0].Data, &data); err != nil || data["a"] != "x\ny" {
		t.Errorf("event 0 data %s (%v): the string's escaped newline must survive", got.Events[0].Data, err)
	}
	if got.Events[1].ID != "2\n" || string(got.Events[1].Data) != "line1\nline2\r" {
		t.Errorf("event 1 = %q %q", got.Events[1].ID, got.Events[1].Data)
	}
	if line := appendBatchLine(nil, "p", time.Time{}, nil, nil); string(line) != `{"batch":"p","deadline_ms":0,"events":[]}`+"\n" {
		t.Errorf("empty batch line %q", line)
	}
}

func TestEnviron(t *testing.T) {
	gateway := map[string]string{"PATH": "/bin", "HOME": "/root", "LANG": "", "SECRET": "s3cret", "AWS_SECRET_ACCESS_KEY": "k"}
	got := environ(map[string]string{"PATH": "/opt/bin", "A": "1"}, func(k string) string { return gateway[k] })
	slices.Sort(got)
	want := []string{"A=1", "HOME=/root", "PATH=/opt/bin"}
	if !slices.Equal(got, want) {
		t.Errorf("environ = %q, want %q", got, want)
	}
	if got := environ(nil, func(string) string { return "" }); got == nil || len(got) != 0 {
		// nil would make os/exec pass the gateway's whole environment.
		t.Errorf("environ of nothing = %#v, want an empty non-nil slice", got)
	}
}

func TestDecodeDoesNotAllocate(t *testing.T) {
	line := []byte(`{"batch":"b","results":[{"id":"a","ok":true,"output":{"x":[1,2.5e3,"s\n"]}},{"id":"b","ok":false,"error":"no","error_type":"T"}]}`)
	var l resultLine
	l.decode(line)
	if n := testing.AllocsPerRun(100, func() { _, _ = l.decode(line) }); n != 0 {
		t.Errorf("decode allocates %.0f times per line", n)
	}
}

// FuzzDecodeResults checks the result-line decoder against encoding/json:
// whatever it accepts is valid JSON with the same batch id and results, and
// it accepts every well-formed result line.
func FuzzDecodeResults(f *testing.F) {
	for _, s := range []string{
		`{"batch":"b","results":[]}`,
		`{"batch":"b","results":[{"id":"a","ok":true,"output":{"x":[1,-2.5e-3,true,null,"\u00e9"]}}]}`,
		`{"results":[{"id":"a","ok":false,"error":"boom","error_type":"E"}],"batch":"b"}`,
		`{"batch":"b\"c","results":[{"id":"\ud83d\ude00","output":"x"}]}`,
		`{"level":"info"}`,
		`{"batch":`,
		`not json`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var l resultLine
		isResult, err := l.decode(line)
		if err != nil && !errors.Is(err, ErrProtocol) {
			t.Fatalf("error %v does not wrap ErrProtocol", err)
		}
		valid := json.Valid(line)
		if isResult && !valid {
			t.Fatalf("accepted invalid JSON %q", line)
		}
		ref, refOK := referenceDecode(line)
		if refOK != isResult {
			t.Fatalf("decode = %v, %v; encoding/json says result line: %v (%q)", isResult, err, refOK, line)
		}
		if !isResult {
			if err == nil && valid && bytes.Contains(line, []byte(`"batch"`)) && isObjectWithKey(line, "batch") {
				t.Fatalf("a line with a batch key was taken for a stray line: %q", line)
			}
			return
		}
		if got := unquoteContents(l.batch); got != ref.Batch {
			t.Fatalf("batch %q, encoding/json %q", got, ref.Batch)
		}
		if len(l.results) != len(ref.Results) {
			t.Fatalf("%d results, encoding/json %d", len(l.results), len(ref.Results))
		}
		for i, r := range l.results {
			want := ref.Results[i]
			if got := unquoteContents(r.id); got != want.id {
				t.Fatalf("result %d id %q, want %q", i, got, want.id)
			}
			if r.output != nil && !json.Valid(r.output) {
				t.Fatalf("result %d output %q is not JSON", i, r.output)
			}
			if !bytes.Equal(r.output, want.output) {
				t.Fatalf("result %d output %q, want %q", i, r.output, want.output)
			}
		}
		// Filling never panics, and every event gets a result.
		evs := make([]*plugins.Event, len(l.results)+1)
		for i := range evs {
			evs[i] = &plugins.Event{ID: fmt.Sprint(i)}
			if i < len(l.results) {
				evs[i].ID = unquoteContents(l.results[i].id)
			}
		}
		b := &plugins.Batch{Events: evs, Results: make([]plugins.Result, len(evs))}
		l.fill(b, nil, nil)
		for i, r := range b.Results {
			if r.Err == nil && r.Output != nil && !json.Valid(r.Output) {
				t.Fatalf("event %d output %q", i, r.Output)
			}
		}
		if b.Results[len(evs)-1].Err == nil {
			t.Fatal("the event without a result succeeded")
		}
	})
}

type refResult struct {
	id     string
	output []byte
}

// referenceDecode decodes a result line with encoding/json, keys matched
// exactly (encoding/json's struct decoding would fold case) and the last of
// duplicate keys winning, as the decoder does.
func referenceDecode(line []byte) (ref struct {
	Batch   string
	Results []refResult
}, ok bool) {
	var top map[string]json.RawMessage
	if json.Unmarshal(line, &top) != nil || top == nil {
		return ref, false
	}
	rawBatch, hasBatch := top["batch"]
	rawResults, hasResults := top["results"]
	if !hasBatch || !hasResults || json.Unmarshal(rawBatch, &ref.Batch) != nil || rawBatch[0] != '"' {
		return ref, false
	}
	var results []json.RawMessage
	if rawResults[0] != '[' || json.Unmarshal(rawResults, &results) != nil {
		return ref, false
	}
	for _, raw := range results {
		var obj map[string]json.RawMessage
		if raw[0] != '{' || json.Unmarshal(raw, &obj) != nil {
			return ref, false
		}
		var r refResult
		rawID, hasID := obj["id"]
		if !hasID || rawID[0] != '"' || json.Unmarshal(rawID, &r.id) != nil {
			return ref, false
		}
		if ok, has := obj["ok"]; has && string(ok) != "true" && string(ok) != "false" && string(ok) != "null" {
			return ref, false
		}
		if out, has := obj["output"]; has {
			r.output = out
		}
		ref.Results = append(ref.Results, r)
	}
	return ref, true
}

func isObjectWithKey(line []byte, key string) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(line, &top) != nil {
		return false
	}
	_, ok := top[key]
	return ok
}
