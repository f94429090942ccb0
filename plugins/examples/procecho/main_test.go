package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestServe(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string // one answer line per batch line, compared as JSON
	}{
		{
			"gateway shape",
			`{"batch":"b1","deadline_ms":1,"events":[{"specversion":"1.0","id":"e1","source":"s","type":"t","data":{"a":[1,{"b":"]}"}]}}]}` + "\n",
			[]string{`{"batch":"b1","results":[{"id":"e1","ok":true,"output":{"specversion":"1.0","id":"e1","source":"s","type":"t","data":{"a":[1,{"b":"]}"}]}}}]}`},
		},
		{
			"keys in any order, escapes, whitespace",
			` { "events" : [ {"data":"say \"hi\\\"","id" : "e\"2"} , {"id":"e3","x":true} ] , "batch" : "b\\2" } ` + "\n\n",
			[]string{`{"batch":"b\\2","results":[{"id":"e\"2","ok":true,"output":{"data":"say \"hi\\\"","id" : "e\"2"}},{"id":"e3","ok":true,"output":{"id":"e3","x":true}}]}`},
		},
		{
			"empty batch, then one without a final newline",
			`{"batch":"p","deadline_ms":0,"events":[]}` + "\n" + `{"batch":"q","events":[{"id":"z"}]}`,
			[]string{`{"batch":"p","results":[]}`, `{"batch":"q","results":[{"id":"z","ok":true,"output":{"id":"z"}}]}`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, logs bytes.Buffer
			if err := serve(strings.NewReader(tt.in), &out, &logs, true); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("%d answer lines, want %d: %q", len(lines), len(tt.want), out.String())
			}
			for i, w := range tt.want {
				var got, want any
				if err := json.Unmarshal([]byte(lines[i]), &got); err != nil {
					t.Fatalf("answer %q: %v", lines[i], err)
				}
				if err := json.Unmarshal([]byte(w), &want); err != nil {
					t.Fatal(err)
				}
				g, _ := json.Marshal(got)
				ww, _ := json.Marshal(want)
				if !bytes.Equal(g, ww) {
					t.Errorf("answer %s\nwant %s", lines[i], w)
				}
			}
			if n := strings.Count(logs.String(), "procecho: batch"); n != len(tt.want) {
				t.Errorf("%d log lines, want %d", n, len(tt.want))
			}
		})
	}
}

func TestServeRejectsGarbage(t *testing.T) {
	for _, in := range []string{"not json\n", `{"events":[]}` + "\n", `{"batch":"b","events":[{"id":"x"` + "\n"} {
		if err := serve(strings.NewReader(in), &bytes.Buffer{}, &bytes.Buffer{}, false); err == nil {
			t.Errorf("serve(%q) succeeded", in)
		}
	}
}

// FuzzParseBatch feeds parseBatch arbitrary bytes (it must not panic) and
// batch lines built with encoding/json from fuzzed ids and data (it must
// find exactly the batch id, each event's JSON and each id).
func FuzzParseBatch(f *testing.F) {
	f.Add([]byte(`{"batch":"b","events":[{"id":"a"}]}`), "b\"1", "e\\1", []byte(`{"x":"}\"]","y":[1, 2 ,{}]}`))
	f.Add([]byte("not json"), "", "", []byte(" null "))
	f.Fuzz(func(t *testing.T, line []byte, batchID, eventID string, data []byte) {
		_, _, _ = parseBatch(line, nil)

		if !json.Valid(data) {
			data = []byte("null")
		}
		type ev struct {
			ID   string          `json:"id"`
			Data json.RawMessage `json:"data"`
		}
		// Data first: the id must be found wherever it is.
		type evDataFirst struct {
			Data json.RawMessage `json:"data"`
			ID   string          `json:"id"`
		}
		e1, _ := json.Marshal(ev{eventID, data})
		e2, _ := json.Marshal(evDataFirst{data, eventID + "2"})
		built, err := json.Marshal(map[string]any{
			"events": []json.RawMessage{e1, e2}, "batch": batchID, "deadline_ms": 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		id, events, err := parseBatch(built, nil)
		if err != nil {
			t.Fatalf("parseBatch(%s): %v", built, err)
		}
		wantID, _ := json.Marshal(batchID)
		if !bytes.Equal(id, wantID) {
			t.Fatalf("batch id %s, want %s", id, wantID)
		}
		if len(events) != 2 {
			t.Fatalf("%d events in %s", len(events), built)
		}
		for i, raw := range [][]byte{e1, e2} {
			var want struct{ ID json.RawMessage }
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			// encoding/json re-encodes RawMessage compactly: compare that.
			var compact bytes.Buffer
			_ = json.Compact(&compact, raw)
			if !bytes.Equal(events[i].raw, compact.Bytes()) || !bytes.Equal(events[i].id, want.ID) {
				t.Fatalf("event %d = %s id %s, want %s id %s", i, events[i].raw, events[i].id, compact.Bytes(), want.ID)
			}
		}
	})
}
