package plugins

import (
	"encoding/json"
	"testing"
)

func TestAppendUnquotedJSON(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     string // "" with json set: what encoding/json decodes
		json     bool
	}{
		{name: "plain", in: `"plain"`, json: true},
		{name: "escapes", in: `"a\"b\\c\/d\b\f\n\r\t"`, json: true},
		{name: "pair", in: `"caf\u00e9 \ud83d\ude00"`, json: true},
		{name: "lone surrogate", in: `"lone \ud83d x"`, json: true},
		{name: "reversed pair", in: `"\udc00\ud83d"`, json: true},
		{name: "invalid utf-8", in: "\"bad \xff utf8\"", json: true},
		{name: "empty", in: `""`, json: true},
		// Not valid JSON: no panic, the rest copied as it is.
		{name: "short escape", in: `"ab\u12"`, want: `ab\u12`},
		{name: "bad escape", in: `"ab\qc"`, want: `ab\qc`},
		{name: "trailing backslash", in: `"ab\"`, want: `ab\`},
		{name: "too short", in: `"`, want: ``},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if tt.json {
				if err := json.Unmarshal([]byte(tt.in), &want); err != nil {
					t.Fatal(err)
				}
			}
			if got := AppendUnquotedJSON([]byte("x"), []byte(tt.in)); string(got) != "x"+want {
				t.Errorf("AppendUnquotedJSON(%q) = %q, want %q", tt.in, got, "x"+want)
			}
		})
	}
}
