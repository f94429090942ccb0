package filter

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

// sample is the EventBridge documentation's example event (an EC2 state
// change, with the content-filtering examples' fields added to its detail)
// carried in a Sluice envelope: detail becomes data.
func sample() *plugins.Event {
	return &plugins.Event{
		ID:              "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
		Source:          "aws.ec2",
		Type:            "EC2 Instance State-change Notification",
		Subject:         "i-1234567890abcdef0",
		Time:            time.Date(2017, 12, 22, 18, 43, 48, 0, time.UTC),
		DataContentType: "application/json",
		PartitionKey:    "i-1234567890abcdef0",
		KafkaTopic:      "ec2",
		KafkaPartition:  3,
		KafkaOffset:     1042,
		Extensions:      map[string]any{"region": "us-west-1", "account": "123456789012", "retries": int64(2), "replayed": false},
		Data: []byte(`{
  "instance-id": "i-1234567890abcdef0",
  "state": "terminated",
  "c-count": 5,
  "d-count": 3,
  "x-limit": 301.8,
  "source-ip": "10.0.0.33",
  "name": "Alice",
  "filename": "archive/2017/log.txt",
  "eventVersion": "",
  "responseElements": null,
  "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0", "arn:aws:ec2:us-west-1:123456789012:instance/i-b188560g"],
  "location": {"region": "eu-west", "zone": "eu-west-1a"},
  "items": [{"sku": "A1", "qty": 2}, {"sku": "B2", "qty": 7}],
  "tags": [],
  "empty": {},
  "esc\"aped": "quo\"te \u00e9",
  "unicode": "Straße"
}`),
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		pattern string
		want    bool
	}{
		{"empty pattern", `{}`, true},
		{"type exact", `{"type": ["EC2 Instance State-change Notification"]}`, true},
		{"type other", `{"type": ["sluice.http.request"]}`, false},
		{"type OR", `{"type": ["x", "EC2 Instance State-change Notification"]}`, true},
		{"source and type AND", `{"source": ["aws.ec2"], "type": ["x"]}`, false},
		{"source prefix", `{"source": [{"prefix": "aws."}]}`, true},
		{"time prefix", `{"time": [{"prefix": "2017-12-22"}]}`, true},
		{"time prefix other", `{"time": [{"prefix": "2017-10-02"}]}`, false},
		{"extension string", `{"region": ["us-west-1"]}`, true},
		{"extension number", `{"retries": [{"numeric": [">=", 2]}]}`, true},
		{"extension bool", `{"replayed": [false]}`, true},
		{"extension missing", `{"nothere": [{"exists": false}]}`, true},
		{"extension missing exists", `{"nothere": [{"exists": true}]}`, false},
		{"partitionkey", `{"partitionkey": ["i-1234567890abcdef0"]}`, true},
		{"kafkatopic", `{"kafkatopic": ["ec2"]}`, true},
		{"kafkapartition", `{"kafkapartition": [3]}`, true},
		{"kafkaoffset range", `{"kafkaoffset": [{"numeric": [">", 1000, "<", 2000]}]}`, true},
		{"specversion", `{"specversion": ["1.0"]}`, true},
		{"datacontenttype", `{"datacontenttype": ["application/json"]}`, true},
		{"subject suffix", `{"subject": [{"suffix": "def0"}]}`, true},
		{"subject unset exists false", `{"dataschema": [{"exists": false}]}`, true},

		{"data exact", `{"data": {"state": ["terminated"]}}`, true},
		{"data exact other", `{"data": {"state": ["running"]}}`, false},
		{"data anything-but", `{"data": {"state": [{"anything-but": "initializing"}]}}`, true},
		{"data anything-but hit", `{"data": {"state": [{"anything-but": "terminated"}]}}`, false},
		{"data anything-but list", `{"data": {"state": [{"anything-but": ["stopped", "overloaded"]}]}}`, true},
		{"data anything-but list hit", `{"data": {"state": [{"anything-but": ["stopped", "terminated"]}]}}`, false},
		{"data anything-but number", `{"data": {"x-limit": [{"anything-but": 123}]}}`, true},
		{"data anything-but number hit", `{"data": {"c-count": [{"anything-but": [5, 6]}]}}`, false},
		{"data anything-but prefix", `{"data": {"state": [{"anything-but": {"prefix": "init"}}]}}`, true},
		{"data anything-but prefix hit", `{"data": {"state": [{"anything-but": {"prefix": "term"}}]}}`, false},
		{"data anything-but suffix", `{"data": {"filename": [{"anything-but": {"suffix": ".txt"}}]}}`, false},
		{"data anything-but wildcard", `{"data": {"filename": [{"anything-but": {"wildcard": "*/lib/*"}}]}}`, true},
		{"data anything-but ignore case", `{"data": {"name": [{"anything-but": {"equals-ignore-case": ["ALICE", "bob"]}}]}}`, false},
		{"data anything-but missing", `{"data": {"nothere": [{"anything-but": "x"}]}}`, false},
		{"data numeric range", `{"data": {"c-count": [{"numeric": [">", 0, "<=", 5]}]}}`, true},
		{"data numeric range edge", `{"data": {"c-count": [{"numeric": [">", 0, "<", 5]}]}}`, false},
		{"data numeric lt", `{"data": {"d-count": [{"numeric": ["<", 10]}]}}`, true},
		{"data numeric eq exponent", `{"data": {"x-limit": [{"numeric": ["=", 3.018e2]}]}}`, true},
		{"data numeric on string", `{"data": {"state": [{"numeric": [">", 0]}]}}`, false},
		{"data number exact", `{"data": {"c-count": [5.0]}}`, true},
		{"data number is not a string", `{"data": {"c-count": ["5"]}}`, false},
		{"data cidr", `{"data": {"source-ip": [{"cidr": "10.0.0.0/24"}]}}`, true},
		{"data cidr miss", `{"data": {"source-ip": [{"cidr": "10.0.1.0/24"}]}}`, false},
		{"data cidr not an ip", `{"data": {"state": [{"cidr": "10.0.0.0/24"}]}}`, false},
		{"data exists", `{"data": {"c-count": [{"exists": true}]}}`, true},
		{"data exists false", `{"data": {"c-count": [{"exists": false}]}}`, false},
		{"data exists false missing", `{"data": {"f-count": [{"exists": false}]}}`, true},
		{"data exists object", `{"data": {"location": [{"exists": true}]}}`, true},
		{"data exists null", `{"data": {"responseElements": [{"exists": true}]}}`, true},
		{"data empty array missing", `{"data": {"tags": [{"exists": false}]}}`, true},
		{"data empty array exists", `{"data": {"tags": [{"exists": true}]}}`, false},
		{"data null", `{"data": {"responseElements": [null]}}`, true},
		{"data null not missing", `{"data": {"nothere": [null]}}`, false},
		{"data empty string", `{"data": {"eventVersion": [""]}}`, true},
		{"data equals-ignore-case", `{"data": {"name": [{"equals-ignore-case": "alice"}]}}`, true},
		{"data equals-ignore-case unicode", `{"data": {"unicode": [{"equals-ignore-case": "STRAßE"}]}}`, true},
		{"data prefix ignore case", `{"data": {"name": [{"prefix": {"equals-ignore-case": "AL"}}]}}`, true},
		{"data suffix ignore case", `{"data": {"filename": [{"suffix": {"equals-ignore-case": ".TXT"}}]}}`, true},
		{"data suffix", `{"data": {"filename": [{"suffix": ".png"}]}}`, false},
		{"data wildcard", `{"data": {"filename": [{"wildcard": "archive/*/log.*"}]}}`, true},
		{"data wildcard miss", `{"data": {"filename": [{"wildcard": "archive/*/img.*"}]}}`, false},
		{"data array any", `{"data": {"resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-b188560g"]}}`, true},
		{"data array none", `{"data": {"resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-zzz"]}}`, false},
		{"data array prefix", `{"data": {"resources": [{"prefix": "arn:aws:ec2:"}]}}`, true},
		{"data nested", `{"data": {"location": {"region": ["eu-west"]}}}`, true},
		{"data nested miss", `{"data": {"location": {"region": ["us-east"]}}}`, false},
		{"data nested on missing", `{"data": {"nothere": {"a": [{"exists": false}]}}}`, true},
		{"data nested on scalar", `{"data": {"state": {"a": ["x"]}}}`, false},
		{"data array of objects same element", `{"data": {"items": {"sku": ["B2"], "qty": [7]}}}`, true},
		{"data array of objects across elements", `{"data": {"items": {"sku": ["A1"], "qty": [7]}}}`, false},
		{"data escaped key and value", `{"data": {"esc\"aped": ["quo\"te é"]}}`, true},
		{"data AND", `{"data": {"state": ["terminated"], "c-count": [5]}}`, true},
		{"data AND fails", `{"data": {"state": ["terminated"], "c-count": [6]}}`, false},
		{"attribute and data", `{"source": ["aws.ec2"], "data": {"state": ["terminated"]}}`, true},
		{"attribute fails before data", `{"source": ["aws.s3"], "data": {"state": ["terminated"]}}`, false},
		{"or", `{"data": {"$or": [{"c-count": [{"numeric": [">", 10]}]}, {"d-count": [{"numeric": ["<", 10]}]}]}}`, true},
		{"or none", `{"data": {"$or": [{"c-count": [{"numeric": [">", 10]}]}, {"d-count": [{"numeric": [">", 10]}]}]}}`, false},
		{"or at root", `{"$or": [{"type": ["x"]}, {"data": {"state": ["terminated"]}}]}`, true},
		{"or with base", `{"source": ["aws.ec2"], "$or": [{"type": ["x"]}, {"subject": ["y"]}]}`, false},
		{"nested or", `{"data": {"$or": [{"state": ["x"]}, {"$or": [{"name": ["y"]}, {"c-count": [5]}]}]}}`, true},
		{"exists or value", `{"data": {"nothere": ["a", {"exists": false}]}}`, true},
	}
	ev := sample()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Compile(json.RawMessage(tt.pattern))
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if got := p.Match(ev); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
			if ref := refMatch([]byte(tt.pattern), ev); ref != tt.want {
				t.Errorf("reference matcher = %v, want %v (the table or the reference is wrong)", ref, tt.want)
			}
		})
	}
}

func TestMatchDataKinds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		ct      string
		data    []byte
		pattern string
		want    bool
	}{
		{"json string data", "application/json", []byte(`"hello world"`), `{"data": [{"prefix": "hello"}]}`, true},
		{"json number data", "", []byte(`42`), `{"data": [{"numeric": [">", 40]}]}`, true},
		{"text data", "text/plain", []byte("ERROR disk full"), `{"data": [{"prefix": "ERROR"}]}`, true},
		{"text data has no fields", "text/plain", []byte("x"), `{"data": {"a": [{"exists": false}]}}`, true},
		{"binary data missing", "application/octet-stream", []byte{0xff, 0}, `{"data": [{"exists": false}]}`, true},
		{"invalid json is binary", "application/json", []byte(`{"a":`), `{"data": {"a": [{"exists": true}]}}`, false},
		{"invalid json content type", "application/json", []byte(`{"a":`), `{"datacontenttype": ["application/octet-stream"]}`, true},
		{"no data", "", nil, `{"data": [{"exists": false}]}`, true},
		{"no data nested", "", nil, `{"data": {"a": ["b"]}}`, false},
		{"json content type default", "", []byte(`{"a":"b"}`), `{"datacontenttype": ["application/json"], "data": {"a": ["b"]}}`, true},
		{"whitespace around data", "application/json", []byte(" \n{\"a\": [1, 2 ,3 ] }\n"), `{"data": {"a": [3]}}`, true},
		{"duplicate key last wins", "application/json", []byte(`{"a": 1, "a": 2}`), `{"data": {"a": [2]}}`, true},
		{"duplicate key first loses", "application/json", []byte(`{"a": 1, "a": 2}`), `{"data": {"a": [1]}}`, false},
		{"nested arrays flatten", "application/json", []byte(`{"a": [[1], [2, [3]]]}`), `{"data": {"a": [3]}}`, true},
		{"huge number", "application/json", []byte(`{"a": 1e400}`), `{"data": {"a": [{"numeric": [">", 1e300]}]}}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &plugins.Event{ID: "1", Source: "s", Type: "t", DataContentType: tt.ct, Data: tt.data}
			p := MustCompile(tt.pattern)
			if got := p.Match(ev); got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
			if ref := refMatch([]byte(tt.pattern), ev); ref != tt.want {
				t.Errorf("reference matcher = %v, want %v", ref, tt.want)
			}
		})
	}
}

func TestNilPatternMatchesAll(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"", "  ", "null"} {
		p, err := Compile(json.RawMessage(in))
		if err != nil || p != nil {
			t.Fatalf("Compile(%q) = %v, %v; want nil, nil", in, p, err)
		}
		if !p.Match(sample()) {
			t.Fatalf("nil pattern did not match")
		}
	}
}

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern string
		want    string
		path    []any
	}{
		{`[]`, "pattern: want a JSON object", nil},
		{"\v{}", `pattern: not valid JSON: invalid character '\v'`, nil},
		{`{"data": {"status": [{"numeric": [">"]}]}}`, "data.status[0]: numeric needs an operator and a number", []any{"data", "status", 0}},
		{`{"data": {"status": [{"numeric": [">", "5"]}]}}`, "data.status[0]: numeric needs an operator and a number", nil},
		{`{"data": {"status": [{"numeric": ["!=", 5]}]}}`, `data.status[0]: numeric operator "!=" is not one of`, nil},
		{`{"data": {"n": [{"numeric": [">", 5, ">", 6]}]}}`, "data.n[0]: numeric has two lower bounds", nil},
		{`{"data": {"n": [{"numeric": [">", 5, "<", 1]}]}}`, "data.n[0]: numeric range is empty", nil},
		{`{"data": {"n": [{"numeric": ["=", 5, "<", 6]}]}}`, `data.n[0]: numeric "=" stands alone`, nil},
		{`{"data": {"n": [1e999]}}`, "data.n[0]: number 1e999 is out of range", nil},
		{`{"data": {"status": "paid"}}`, "data.status: want an array of values or an object of fields, got a string", []any{"data", "status"}},
		{`{"data": {"status": []}}`, "data.status: empty array", nil},
		{`{"data": {"status": [["a"]]}}`, "data.status[0]: nested arrays are not allowed", nil},
		{`{"data": {"status": [{"prefx": "a"}]}}`, `data.status[0]: unknown matcher "prefx"`, nil},
		{`{"data": {"status": [{"prefix": "a", "suffix": "b"}]}}`, "data.status[0]: a matcher object has exactly one key", nil},
		{`{"data": {"status": [{"prefix": 5}]}}`, "data.status[0]: prefix takes a string", nil},
		{`{"data": {"status": [{"exists": "yes"}]}}`, "data.status[0]: exists takes true or false", nil},
		{`{"data": {"status": [{"cidr": "10.0.0.300/8"}]}}`, `data.status[0]: cidr "10.0.0.300/8" is not an IP prefix`, nil},
		{`{"data": {"status": [{"wildcard": "a**b"}]}}`, "consecutive * are not allowed", nil},
		{`{"data": {"status": [{"anything-but": []}]}}`, "anything-but takes a non-empty array", nil},
		{`{"data": {"status": [{"anything-but": [true]}]}}`, "anything-but lists strings and numbers, got a boolean", nil},
		{`{"data": {"status": [{"anything-but": {"numeric": [">", 1]}}]}}`, `anything-but takes one of prefix, suffix, equals-ignore-case or wildcard, not "numeric"`, nil},
		{`{"data": {"status": [{"anything-but": {"prefix": 1}}]}}`, "anything-but prefix takes a string", nil},
		{`{"data": {}}`, "data: empty object", nil},
		{`{"Type": ["x"]}`, "Type: not a CloudEvents attribute name", nil},
		{`{"source": {"a": ["x"]}}`, "source: only data has nested fields", nil},
		{`{"data": {"$or": []}}`, "data.$or: $or takes a non-empty array", nil},
		{`{"data": {"$or": [{"a": ["x"]}, 5]}}`, "data.$or[1]: want a non-empty pattern object, got a number", nil},
		{`{"data": {"$or": [{"a": ["x"]}, {"b": [{"exists": 1}]}]}}`, "data.$or[1].b[0]: exists takes true or false", nil},
		{`{"type": ["a"], "type": ["b"]}`, "type: duplicate key", nil},
		{`{"type": ["a"]} {}`, "unexpected data after the pattern object", nil},
		{`{"type": ["a"]`, "not valid JSON", nil},
		{`{"data": {"a.b": [{"exists": 2}]}}`, `data["a.b"][0]: exists takes true or false`, nil},
		{`{"data":` + strings.Repeat(`{"a":`, 40) + `["x"]` + strings.Repeat("}", 41), "nested deeper than", nil},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := Compile(json.RawMessage(tt.pattern))
			if err == nil {
				t.Fatalf("Compile(%s) succeeded", tt.pattern)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to contain %q", err, tt.want)
			}
			var fe *Error
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not *Error", err)
			}
			if tt.path != nil && !equalPath(fe.Path, tt.path) {
				t.Errorf("Path = %v, want %v", fe.Path, tt.path)
			}
		})
	}
}

func equalPath(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTooManyFields(t *testing.T) {
	t.Parallel()
	var sb strings.Builder
	sb.WriteString(`{"data": {`)
	for i := 0; i <= maxFields; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`"f` + strings.Repeat("x", i) + `": [1]`)
	}
	sb.WriteString(`}}`)
	if _, err := Compile(json.RawMessage(sb.String())); err == nil || !strings.Contains(err.Error(), "more than 64 fields") {
		t.Fatalf("Compile: %v, want a too-many-fields error", err)
	}
}

func TestWildcard(t *testing.T) {
	t.Parallel()
	tests := []struct {
		p, s string
		want bool
	}{
		{"*", "", true},
		{"*", "abc", true},
		{"a*", "abc", true},
		{"*c", "abc", true},
		{"a*c", "ac", true},
		{"a*c", "abdc", true},
		{"a*c", "abd", false},
		{"a*b*c", "aXbYbZc", true},
		{"a*b*c", "aXcYb", false},
		{`a\*c`, "a*c", true},
		{`a\*c`, "abc", false},
		{"abc", "abc", true},
		{"abc", "abcd", false},
		{"", "", true},
		{"", "a", false},
		{"*.png", "x.png.jpg", false},
		{"*.png", "x.jpg.png", true},
	}
	for _, tt := range tests {
		if got := wildcard(tt.p, tt.s); got != tt.want {
			t.Errorf("wildcard(%q, %q) = %v, want %v", tt.p, tt.s, got, tt.want)
		}
		if got := refWildcard(tt.p, tt.s); got != tt.want {
			t.Errorf("refWildcard(%q, %q) = %v, want %v", tt.p, tt.s, got, tt.want)
		}
	}
}

func TestFoldAffixes(t *testing.T) {
	t.Parallel()
	// The Kelvin sign K (3 bytes) folds to k (1 byte): byte slicing would
	// get these wrong.
	if !hasPrefixFold("\u212aelvin", "KEL") || !hasSuffixFold("five \u212a", " k") {
		t.Error("fold affixes miss the Kelvin sign")
	}
	if hasPrefixFold("ab", "abc") || hasSuffixFold("bc", "abc") {
		t.Error("fold affixes longer than the string matched")
	}
}

func TestMatchAllocations(t *testing.T) {
	ev := sample()
	for _, pat := range []string{
		`{"type": ["EC2 Instance State-change Notification"], "data": {"state": ["terminated"]}}`,
		`{"data": {"location": {"region": [{"prefix": "eu-"}]}, "c-count": [{"numeric": [">", 0, "<=", 5]}]}}`,
		`{"data": {"items": {"sku": ["B2"], "qty": [7]}}}`,
	} {
		p := MustCompile(pat)
		if !p.Match(ev) {
			t.Fatalf("%s does not match", pat)
		}
		if n := testing.AllocsPerRun(100, func() { p.Match(ev) }); n != 0 {
			t.Errorf("Match(%s) allocates %v times, want 0", pat, n)
		}
	}
}
