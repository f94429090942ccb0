package plugins

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestEventEncoding(t *testing.T) {
	ts := time.Date(2026, 11, 28, 12, 0, 0, 500, time.UTC)
	tests := []struct {
		name string
		ev   Event
		want map[string]any
	}{
		{
			name: "json data stays json",
			ev:   Event{ID: "1", Source: "s", Type: "t", Time: ts, DataContentType: "application/json", Data: []byte(`{"a":[1,2]}`)},
			want: map[string]any{"specversion": "1.0", "id": "1", "source": "s", "type": "t", "time": "2026-11-28T12:00:00.0000005Z",
				"datacontenttype": "application/json", "data": map[string]any{"a": []any{1.0, 2.0}}},
		},
		{
			name: "empty content type with json data defaults to application/json",
			ev:   Event{ID: "1", Source: "s", Type: "t", Data: []byte(`"x"`)},
			want: map[string]any{"specversion": "1.0", "id": "1", "source": "s", "type": "t", "datacontenttype": "application/json", "data": "x"},
		},
		{
			name: "binary data is base64",
			ev:   Event{ID: "1", Source: "s", Type: "t", DataContentType: "image/png", Data: []byte{0x89, 'P', 'N', 'G', 0}},
			want: map[string]any{"specversion": "1.0", "id": "1", "source": "s", "type": "t", "datacontenttype": "image/png", "data_base64": "iVBORwA="},
		},
		{
			name: "bytes claiming json but invalid become octet-stream base64",
			ev:   Event{ID: "1", Source: "s", Type: "t", DataContentType: "application/json", Data: []byte(`{not json`)},
			want: map[string]any{"specversion": "1.0", "id": "1", "source": "s", "type": "t", "datacontenttype": "application/octet-stream", "data_base64": "e25vdCBqc29u"},
		},
		{
			name: "text is a json string",
			ev:   Event{ID: "1", Source: "s", Type: "t", DataContentType: "text/plain", Data: []byte("hi \"there\"\n")},
			want: map[string]any{"specversion": "1.0", "id": "1", "source": "s", "type": "t", "datacontenttype": "text/plain", "data": "hi \"there\"\n"},
		},
		{
			name: "kafka extensions and headers",
			ev: Event{ID: "1", Source: "s", Type: "t", PartitionKey: "k", TraceParent: "00-abc-def-01", KafkaTopic: "orders", KafkaPartition: 3, KafkaOffset: 42,
				KafkaHeaders: []KafkaHeader{{Key: "h", Value: []byte("v")}}},
			want: map[string]any{"specversion": "1.0", "id": "1", "source": "s", "type": "t", "partitionkey": "k", "traceparent": "00-abc-def-01",
				"kafkatopic": "orders", "kafkapartition": 3.0, "kafkaoffset": 42.0, "kafkaheaders": `[{"key":"h","value":"dg=="}]`},
		},
		{
			name: "other extensions, reserved names ignored",
			ev:   Event{ID: "1", Source: "s", Type: "t", Extensions: map[string]any{"b": true, "n": int64(7), "s": "x", "id": "shadow"}},
			want: map[string]any{"specversion": "1.0", "id": "1", "source": "s", "type": "t", "b": true, "n": 7.0, "s": "x"},
		},
		{
			name: "strings are escaped",
			ev:   Event{ID: "a\"b\\c\x01\u2028", Source: "s", Type: "t", Subject: "bad \xff utf8"},
			want: map[string]any{"specversion": "1.0", "id": "a\"b\\c\x01\u2028", "source": "s", "type": "t", "subject": "bad \ufffd utf8"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.ev.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatalf("invalid JSON %s: %v", b, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestEventRoundTrip(t *testing.T) {
	in := Event{ID: "1", Source: "s", Type: "t", Time: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC), Subject: "sub",
		DataContentType: "application/cloudevents-batch+json", DataSchema: "https://example.com/s", Data: []byte(`{"k":"v"}`), DataValidJSON: true,
		PartitionKey: "pk", TraceParent: "tp", TraceState: "ts", KafkaTopic: "topic", KafkaPartition: 1, KafkaOffset: 2,
		KafkaHeaders: []KafkaHeader{{Key: "a", Value: []byte{0, 1}}}, Extensions: map[string]any{"x": "y", "n": int64(3), "f": 1.5, "b": false}}
	b, _ := in.MarshalJSON()
	var out Event
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n in  %+v\n out %+v", in, out)
	}
}

// A time RFC 3339 cannot write is left out, so what is written parses.
func TestEventTimeOutOfRange(t *testing.T) {
	tests := []struct {
		t    time.Time
		want bool
	}{
		{time.Time{}, false},
		{time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), true},
		{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{time.Date(-1, 12, 31, 0, 0, 0, 0, time.UTC), false},
		{time.UnixMilli(700000000000000), false},
		{time.Date(9999, 12, 31, 23, 0, 0, 0, time.FixedZone("x", -2*3600)), false}, // year 10000 in UTC
	}
	for _, tt := range tests {
		if got := ValidTime(tt.t); got != tt.want {
			t.Errorf("ValidTime(%v) = %v, want %v", tt.t, got, tt.want)
		}
		b, _ := (&Event{ID: "1", Source: "s", Type: "t", Time: tt.t}).MarshalJSON()
		var out Event
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%v: %s does not parse: %v", tt.t, b, err)
		}
		if tt.want != !out.Time.IsZero() || tt.want && !out.Time.Equal(tt.t) {
			t.Errorf("%v: written %s", tt.t, b)
		}
	}
}

func TestEventDecodeErrors(t *testing.T) {
	tests := []struct {
		name, in string
		want     error
	}{
		{"not an object", `[1]`, ErrNotCloudEvent},
		{"null", `null`, ErrNotCloudEvent},
		{"wrong specversion", `{"specversion":"0.3","id":"1","source":"s","type":"t"}`, ErrNotCloudEvent},
		{"missing id", `{"specversion":"1.0","source":"s","type":"t"}`, ErrMissingRequired},
		{"bad time", `{"specversion":"1.0","id":"1","source":"s","type":"t","time":"yesterday"}`, ErrNotCloudEvent},
		{"both data kinds", `{"specversion":"1.0","id":"1","source":"s","type":"t","data":1,"data_base64":"AA=="}`, ErrNotCloudEvent},
		{"bad base64", `{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"!!"}`, ErrNotCloudEvent},
		{"object extension", `{"specversion":"1.0","id":"1","source":"s","type":"t","x":{}}`, ErrNotCloudEvent},
		{"non-string id", `{"specversion":"1.0","id":1,"source":"s","type":"t"}`, ErrNotCloudEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev Event
			err := json.Unmarshal([]byte(tt.in), &ev)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAppendJSONStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "quote\"back\\slash", "ctl\x00\x1f\t\r\n", "<html>&", "é✓😀", "bad\xffutf8", "\u2028\u2029"} {
		got := AppendJSONString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q: invalid %s: %v", s, got, err)
		}
		want, _ := json.Marshal(s)
		var wantBack string
		_ = json.Unmarshal(want, &wantBack)
		if back != wantBack {
			t.Errorf("%q: decodes to %q, encoding/json's to %q", s, back, wantBack)
		}
	}
}

func TestAppendJSONAllocs(t *testing.T) {
	ev := &Event{ID: "1", Source: "s", Type: "t", Time: time.Now(), Data: []byte(`{"a":1}`), KafkaTopic: "x"}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf = ev.AppendJSON(buf[:0]) }); n != 0 {
		t.Errorf("AppendJSON allocates %v times", n)
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := NewID()
		if len(id) != 36 || id[14] != '4' || strings.Count(id, "-") != 4 || !strings.ContainsRune("89ab", rune(id[19])) {
			t.Fatalf("not a v4 UUID: %s", id)
		}
		if seen[id] {
			t.Fatalf("duplicate %s", id)
		}
		seen[id] = true
	}
}

func TestPayload(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{"http body", Event{Type: TypeHTTPRequest, Data: []byte(`{"body":"{\"ms\":5}","isBase64Encoded":false}`)}, `{"ms":5}`},
		{"http base64 body", Event{Type: TypeHTTPRequest, Data: []byte(`{"body":"aGk=","isBase64Encoded":true}`)}, "hi"},
		{"http no body", Event{Type: TypeHTTPRequest, Data: []byte(`{}`)}, ""},
		{"other source", Event{Type: TypeKafkaRecord, Data: []byte(`{"x":1}`)}, `{"x":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(Payload(&tt.ev)); got != tt.want {
				t.Errorf("Payload = %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzEventJSON: decoding arbitrary bytes must never panic, and whatever
// decodes must re-encode to JSON that decodes to the same event.
func FuzzEventJSON(f *testing.F) {
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"s","type":"t","data":{"a":1}}`))
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"s","type":"t","datacontenttype":"text/plain","data":"hi"}`))
	f.Add([]byte(`{"specversion":"1.0","id":"1","source":"s","type":"t","data_base64":"AAE=","kafkapartition":"2"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var ev Event
		if json.Unmarshal(in, &ev) != nil {
			return
		}
		b, _ := ev.MarshalJSON()
		if !json.Valid(b) {
			t.Fatalf("re-encoding is not JSON: %s", b)
		}
		var again Event
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("re-encoded event does not decode: %v\n%s", err, b)
		}
		b2, _ := again.MarshalJSON()
		if !bytes.Equal(b, b2) {
			t.Fatalf("not stable:\n%s\n%s", b, b2)
		}
	})
}

func TestIsJSONContentType(t *testing.T) {
	for ct, want := range map[string]bool{
		"":                                true,
		"application/json":                true,
		"Application/JSON; charset=utf-8": true,
		" text/json ":                     true,
		"application/cloudevents+json":    true,
		"application/octet-stream":        false,
		"APPLICATION/OCTET-STREAM":        false,
		"text/plain":                      false,
		"application/jsonx":               false,
	} {
		if got := IsJSONContentType(ct); got != want {
			t.Errorf("IsJSONContentType(%q) = %v, want %v", ct, got, want)
		}
	}
}

// appendJSONStringRef is AppendJSONString one byte at a time, as it was
// before its 8-bytes-at-a-time fast path: the reference the fast path must
// match byte for byte.
func appendJSONStringRef(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// TestAppendJSONStringEveryByte puts every byte value at every offset of
// an 8-byte word (and across word boundaries) and compares with the
// reference.
func TestAppendJSONStringEveryByte(t *testing.T) {
	for n := 0; n <= 25; n++ {
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := []byte(strings.Repeat("abcdefgh", 4)[:n])
				b[pos] = byte(c)
				s := string(b)
				if got, want := AppendJSONString(nil, s), appendJSONStringRef(nil, s); !bytes.Equal(got, want) {
					t.Fatalf("%q: got %s, want %s", s, got, want)
				}
			}
		}
	}
}

// FuzzAppendJSONString: the fast path must match the reference on any
// input, and the result must be JSON decoding to the valid-UTF-8 input.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain ascii text longer than eight", "q\"uote\\", "\x00\x1f\x7f", "é✓😀 mixed ascii", "bad\xffutf8 and more", "\u2028\u2029"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := AppendJSONString(nil, s)
		if want := appendJSONStringRef(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%q: invalid JSON %s: %v", s, got, err)
		}
		if utf8.ValidString(s) && back != s {
			t.Fatalf("%q decodes to %q", s, back)
		}
	})
}

func BenchmarkAppendJSONString(b *testing.B) {
	for _, c := range []struct{ name, s string }{
		{"header", "application/json"},
		{"body", `{"order":{"id":"A-1001","items":[{"sku":"X","qty":2}],"total":42.5},"customer":"c-17"}`},
		{"text", strings.Repeat("The quick brown fox jumps over the lazy dog. ", 20)},
	} {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 0, 4096)
			b.SetBytes(int64(len(c.s)))
			for b.Loop() {
				buf = AppendJSONString(buf[:0], c.s)
			}
		})
	}
}

func TestAppendRFC3339Nano(t *testing.T) {
	times := []time.Time{
		time.Unix(0, 0), time.Unix(1, 1), time.Unix(1795891635, 83000045),
		time.Date(2026, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 100000000, time.FixedZone("x", -7*3600)),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 5, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(12000, 1, 1, 0, 0, 0, 10, time.UTC),
		time.Now(), time.Now().Add(time.Second),
	}
	for i := range 1000 {
		times = append(times, time.Unix(1795891635+int64(i%3), int64(i)*1234567%1e9))
	}
	for _, tm := range times {
		want := tm.UTC().AppendFormat(nil, time.RFC3339Nano)
		// Twice: formatted, then from the cache.
		for range 2 {
			if got := appendRFC3339Nano(nil, tm); !bytes.Equal(got, want) {
				t.Fatalf("%v: got %s, want %s", tm, got, want)
			}
		}
	}
}

func TestValidJSONExported(t *testing.T) {
	for _, s := range []string{`{"a":1}`, `{"a":}`, `[1,2]`, `x`} {
		if got, want := ValidJSON([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("ValidJSON(%q) = %v, json.Valid = %v", s, got, want)
		}
	}
}

func BenchmarkMarshalJSON(b *testing.B) {
	ev := &Event{ID: "dab7f2ce-b511-440d-af76-ffed3624312e", Source: "/sluice/http/echo", Type: TypeHTTPRequest,
		Time: time.Now(), Subject: "/echo", DataContentType: "application/json", DataValidJSON: true,
		Data: []byte(`{"version":"2.0","routeKey":"POST /echo","rawPath":"/echo","body":"{\"a\":1}","isBase64Encoded":false}`)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ev.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}
