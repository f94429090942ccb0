package plugins

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"
)

// SpecVersion is the CloudEvents version of every Event.
const SpecVersion = "1.0"

// Event types of the sources Sluice normalizes.
const (
	TypeHTTPRequest    = "sluice.http.request"
	TypeStorageCreated = "sluice.storage.object.created"
	TypeStorageRemoved = "sluice.storage.object.removed"
	TypeScheduleTick   = "sluice.schedule.tick"
	TypeKafkaRecord    = "sluice.kafka.record"
	TypeInvoke         = "sluice.invoke"
	// TypeCDCPrefix is followed by insert, update, delete, read or truncate.
	TypeCDCPrefix = "sluice.cdc."
)

// Event is the CloudEvents 1.0 envelope every function receives, encoded in
// structured mode: JSON payloads as "data", anything else as "data_base64".
//
// An Event is not safe for concurrent mutation; the invoker never mutates one
// after it was submitted. Its submitter may reuse it once every invocation
// it was given to is over (see Handler).
type Event struct {
	ID              string
	Source          string
	Type            string
	Time            time.Time // zero, or outside the years 0000–9999 (see ValidTime): omitted
	Subject         string
	DataContentType string
	DataSchema      string

	// Data is the payload: JSON text when DataContentType is a JSON type,
	// raw bytes otherwise.
	Data []byte
	// DataValidJSON tells encoders that Data is known to be valid JSON
	// (its producer wrote or checked it), sparing a validation per encoding
	// on the hot path. Leave it false for bytes from outside.
	DataValidJSON bool

	// Extensions Sluice sets.
	PartitionKey   string // partitionkey
	TraceParent    string // traceparent (W3C)
	TraceState     string // tracestate
	KafkaTopic     string // kafkatopic; kafkapartition and kafkaoffset are encoded when it is set
	KafkaPartition int32
	KafkaOffset    int64
	// KafkaHeaders are the record's headers, encoded as the extension
	// "kafkaheaders": a string holding a JSON array of {"key","value"} with
	// base64 values (CloudEvents extensions must be scalars).
	KafkaHeaders []KafkaHeader

	// Extensions holds any other extension attributes: lowercase names,
	// values of type string, bool, int64 or float64.
	Extensions map[string]any
}

// KafkaHeader is one Kafka record header.
type KafkaHeader struct {
	Key   string
	Value []byte
}

// IsJSONContentType reports whether a datacontenttype is JSON
// (application/json, text/json or a +json suffix), ignoring parameters. The
// empty type counts as JSON, as CloudEvents' JSON format implies.
func IsJSONContentType(ct string) bool {
	// The types decoders set themselves, answered before any parsing: this
	// runs for every event's Size and encoding.
	switch ct {
	case "application/json", "":
		return true
	case "application/octet-stream":
		return false
	}
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	if ct == "" {
		return true
	}
	ct = strings.ToLower(ct)
	return ct == "application/json" || ct == "text/json" || strings.HasSuffix(ct, "+json")
}

// IsJSONData reports whether the event's Data is encoded as JSON ("data")
// rather than base64: its content type is JSON and Data is valid JSON.
func (e *Event) IsJSONData() bool {
	return len(e.Data) > 0 && IsJSONContentType(e.DataContentType) && (e.DataValidJSON || validJSON(e.Data))
}

// Size estimates the encoded size of the event in bytes, for batch limits.
func (e *Event) Size() int {
	n := 160 + len(e.ID) + len(e.Source) + len(e.Type) + len(e.Subject) +
		len(e.DataContentType) + len(e.PartitionKey) + len(e.TraceParent) + len(e.KafkaTopic)
	if IsJSONContentType(e.DataContentType) {
		n += len(e.Data)
	} else {
		n += base64.StdEncoding.EncodedLen(len(e.Data))
	}
	for _, h := range e.KafkaHeaders {
		n += len(h.Key) + base64.StdEncoding.EncodedLen(len(h.Value)) + 24
	}
	for k, v := range e.Extensions {
		n += len(k) + 8
		if s, ok := v.(string); ok {
			n += len(s)
		}
	}
	return n
}

// MarshalJSON encodes the event in CloudEvents structured mode.
func (e *Event) MarshalJSON() ([]byte, error) {
	return e.AppendJSON(make([]byte, 0, e.Size())), nil
}

// AppendJSON appends the event's structured-mode JSON to dst. It does not
// allocate beyond growing dst.
func (e *Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"specversion":"1.0","id":`...)
	dst = AppendJSONString(dst, e.ID)
	dst = append(dst, `,"source":`...)
	dst = AppendJSONString(dst, e.Source)
	dst = append(dst, `,"type":`...)
	dst = AppendJSONString(dst, e.Type)
	if ValidTime(e.Time) {
		dst = append(dst, `,"time":"`...)
		dst = appendRFC3339Nano(dst, e.Time)
		dst = append(dst, '"')
	}
	dst = appendOptional(dst, `,"subject":`, e.Subject)
	dst = appendOptional(dst, `,"dataschema":`, e.DataSchema)
	dst = appendOptional(dst, `,"partitionkey":`, e.PartitionKey)
	dst = appendOptional(dst, `,"traceparent":`, e.TraceParent)
	dst = appendOptional(dst, `,"tracestate":`, e.TraceState)
	if e.KafkaTopic != "" {
		dst = append(dst, `,"kafkatopic":`...)
		dst = AppendJSONString(dst, e.KafkaTopic)
		dst = append(dst, `,"kafkapartition":`...)
		dst = strconv.AppendInt(dst, int64(e.KafkaPartition), 10)
		dst = append(dst, `,"kafkaoffset":`...)
		dst = strconv.AppendInt(dst, e.KafkaOffset, 10)
	}
	if len(e.KafkaHeaders) > 0 {
		dst = append(dst, `,"kafkaheaders":`...)
		dst = AppendJSONString(dst, string(appendKafkaHeaders(nil, e.KafkaHeaders)))
	}
	if len(e.Extensions) > 0 {
		dst = e.appendExtensions(dst)
	}
	if e.Data == nil {
		dst = appendOptional(dst, `,"datacontenttype":`, e.DataContentType)
		return append(dst, '}')
	}
	ct := e.DataContentType
	switch {
	case IsJSONContentType(ct) && (e.DataValidJSON || validJSON(e.Data)):
		if ct == "" {
			ct = "application/json"
		}
		dst = append(dst, `,"datacontenttype":`...)
		dst = AppendJSONString(dst, ct)
		dst = append(dst, `,"data":`...)
		dst = append(dst, e.Data...)
	case strings.HasPrefix(ct, "text/") && utf8.Valid(e.Data):
		dst = append(dst, `,"datacontenttype":`...)
		dst = AppendJSONString(dst, ct)
		dst = append(dst, `,"data":`...)
		dst = appendJSONBytesString(dst, e.Data)
	default:
		if ct == "" || IsJSONContentType(ct) {
			// Bytes that claim to be JSON but are not: keep them, honestly typed.
			ct = "application/octet-stream"
		}
		dst = append(dst, `,"datacontenttype":`...)
		dst = AppendJSONString(dst, ct)
		dst = append(dst, `,"data_base64":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, e.Data)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// rfc3339Second is the "2006-01-02T15:04:05" of one UTC second, formatted
// once: every event of a second shares it, and formatting it was most of
// the cost of an event's time.
type rfc3339Second struct {
	sec int64
	b   [19]byte
}

var rfc3339Cache atomic.Pointer[rfc3339Second]

// ValidTime reports whether t can be an event's time: not zero, and in
// the years 0000 through 9999 that RFC 3339 can write. Decoders that
// compute a time from a number (Kafka record timestamps, Debezium's
// ts_ms) check it, since any int64 is a valid number of milliseconds.
func ValidTime(t time.Time) bool {
	if t.IsZero() {
		return false
	}
	y := t.UTC().Year()
	return y >= 0 && y <= 9999
}

// appendRFC3339Nano appends t in UTC as time.RFC3339Nano formats it.
func appendRFC3339Nano(dst []byte, t time.Time) []byte {
	t = t.UTC()
	sec := t.Unix()
	c := rfc3339Cache.Load()
	if c == nil || c.sec != sec {
		// Only time moving forward replaces the cached second, so that
		// events carrying old times (a replayed topic) do not thrash it.
		if c != nil && sec < c.sec || t.Year() < 0 || t.Year() > 9999 {
			return t.AppendFormat(dst, time.RFC3339Nano)
		}
		c = &rfc3339Second{sec: sec}
		t.Truncate(time.Second).AppendFormat(c.b[:0], "2006-01-02T15:04:05")
		rfc3339Cache.Store(c)
	}
	dst = append(dst, c.b[:]...)
	if ns := t.Nanosecond(); ns != 0 {
		var frac [10]byte
		frac[0] = '.'
		for i := 9; i >= 1; i-- {
			frac[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for frac[n-1] == '0' {
			n--
		}
		dst = append(dst, frac[:n]...)
	}
	return append(dst, 'Z')
}

func appendKafkaHeaders(dst []byte, hs []KafkaHeader) []byte {
	dst = append(dst, '[')
	for i, h := range hs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"key":`...)
		dst = AppendJSONString(dst, h.Key)
		dst = append(dst, `,"value":"`...)
		dst = base64.StdEncoding.AppendEncode(dst, h.Value)
		dst = append(dst, `"}`...)
	}
	return append(dst, ']')
}

func (e *Event) appendExtensions(dst []byte) []byte {
	keys := make([]string, 0, len(e.Extensions))
	for k := range e.Extensions {
		if !reservedAttr[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		dst = append(dst, ',')
		dst = AppendJSONString(dst, k)
		dst = append(dst, ':')
		switch v := e.Extensions[k].(type) {
		case string:
			dst = AppendJSONString(dst, v)
		case bool:
			dst = strconv.AppendBool(dst, v)
		case int:
			dst = strconv.AppendInt(dst, int64(v), 10)
		case int32:
			dst = strconv.AppendInt(dst, int64(v), 10)
		case int64:
			dst = strconv.AppendInt(dst, v, 10)
		case float64:
			if math.IsNaN(v) || math.IsInf(v, 0) {
				dst = append(dst, "null"...)
			} else {
				dst = strconv.AppendFloat(dst, v, 'g', -1, 64)
			}
		default:
			dst = AppendJSONString(dst, fmt.Sprint(v))
		}
	}
	return dst
}

var reservedAttr = map[string]bool{
	"specversion": true, "id": true, "source": true, "type": true, "time": true,
	"subject": true, "datacontenttype": true, "dataschema": true, "data": true,
	"data_base64": true, "partitionkey": true, "traceparent": true, "tracestate": true,
	"kafkatopic": true, "kafkapartition": true, "kafkaoffset": true, "kafkaheaders": true,
}

func appendOptional(dst []byte, key, v string) []byte {
	if v == "" {
		return dst
	}
	dst = append(dst, key...)
	return AppendJSONString(dst, v)
}

// Errors UnmarshalJSON returns for events that are not CloudEvents 1.0.
var (
	ErrNotCloudEvent   = errors.New("plugins: not a CloudEvents 1.0 JSON object")
	ErrMissingRequired = errors.New("plugins: missing required CloudEvents attribute")
)

// UnmarshalJSON decodes a structured-mode CloudEvents 1.0 JSON object. It
// requires specversion 1.0, id, source and type.
func (e *Event) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("%w: %v", ErrNotCloudEvent, err)
	}
	if raw == nil {
		return ErrNotCloudEvent
	}
	*e = Event{}
	str := func(name string, dst *string) error {
		v, ok := raw[name]
		if !ok || string(v) == "null" {
			return nil
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return fmt.Errorf("%w: attribute %q must be a string", ErrNotCloudEvent, name)
		}
		return nil
	}
	var sv, ts string
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"specversion", &sv}, {"id", &e.ID}, {"source", &e.Source}, {"type", &e.Type},
		{"time", &ts}, {"subject", &e.Subject}, {"datacontenttype", &e.DataContentType},
		{"dataschema", &e.DataSchema}, {"partitionkey", &e.PartitionKey},
		{"traceparent", &e.TraceParent}, {"tracestate", &e.TraceState}, {"kafkatopic", &e.KafkaTopic},
	} {
		if err := str(f.name, f.dst); err != nil {
			return err
		}
	}
	if sv != SpecVersion {
		return fmt.Errorf("%w: specversion %q, want %q", ErrNotCloudEvent, sv, SpecVersion)
	}
	for _, req := range []struct{ name, v string }{{"id", e.ID}, {"source", e.Source}, {"type", e.Type}} {
		if req.v == "" {
			return fmt.Errorf("%w: %s", ErrMissingRequired, req.name)
		}
	}
	if ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return fmt.Errorf("%w: time %q is not RFC 3339", ErrNotCloudEvent, ts)
		}
		e.Time = t
	}
	if v, ok := raw["kafkapartition"]; ok {
		n, err := strconv.ParseInt(strings.Trim(string(v), `"`), 10, 32)
		if err != nil {
			return fmt.Errorf("%w: kafkapartition must be an integer", ErrNotCloudEvent)
		}
		e.KafkaPartition = int32(n)
	}
	if v, ok := raw["kafkaoffset"]; ok {
		n, err := strconv.ParseInt(strings.Trim(string(v), `"`), 10, 64)
		if err != nil {
			return fmt.Errorf("%w: kafkaoffset must be an integer", ErrNotCloudEvent)
		}
		e.KafkaOffset = n
	}
	if v, ok := raw["kafkaheaders"]; ok {
		var s string
		var hs []struct {
			Key   string `json:"key"`
			Value []byte `json:"value"`
		}
		if json.Unmarshal(v, &s) != nil || json.Unmarshal([]byte(s), &hs) != nil {
			return fmt.Errorf("%w: kafkaheaders must be a string holding a JSON array of {key, value}", ErrNotCloudEvent)
		}
		for _, h := range hs {
			e.KafkaHeaders = append(e.KafkaHeaders, KafkaHeader{Key: h.Key, Value: h.Value})
		}
	}
	d, hasData := raw["data"]
	d64, hasB64 := raw["data_base64"]
	switch {
	case hasData && hasB64:
		return fmt.Errorf("%w: both data and data_base64", ErrNotCloudEvent)
	case hasB64:
		var s string
		if err := json.Unmarshal(d64, &s); err != nil {
			return fmt.Errorf("%w: data_base64 must be a string", ErrNotCloudEvent)
		}
		data, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return fmt.Errorf("%w: data_base64: %v", ErrNotCloudEvent, err)
		}
		e.Data = data
	case hasData && string(d) != "null":
		if !IsJSONContentType(e.DataContentType) && len(d) > 0 && d[0] == '"' {
			// Text data of a non-JSON type travels as a JSON string.
			var s string
			if err := json.Unmarshal(d, &s); err != nil {
				return fmt.Errorf("%w: data: %v", ErrNotCloudEvent, err)
			}
			e.Data = []byte(s)
		} else {
			e.Data = bytes.Clone(d)
			e.DataValidJSON = true // json.Unmarshal checked the whole object
			if e.DataContentType == "" {
				e.DataContentType = "application/json"
			}
		}
	}
	for k, v := range raw {
		if reservedAttr[k] {
			continue
		}
		var x any
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.UseNumber()
		if err := dec.Decode(&x); err != nil {
			return fmt.Errorf("%w: extension %q: %v", ErrNotCloudEvent, k, err)
		}
		switch t := x.(type) {
		case string, bool:
			e.setExt(k, t)
		case json.Number:
			if n, err := t.Int64(); err == nil {
				e.setExt(k, n)
			} else if f, err := t.Float64(); err == nil {
				e.setExt(k, f)
			}
		case nil:
		default:
			return fmt.Errorf("%w: extension %q must be a string, number or boolean", ErrNotCloudEvent, k)
		}
	}
	return nil
}

func (e *Event) setExt(k string, v any) {
	if e.Extensions == nil {
		e.Extensions = make(map[string]any)
	}
	e.Extensions[k] = v
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string literal to dst. Invalid UTF-8
// becomes U+FFFD, as encoding/json does.
func AppendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		// Most of what an envelope holds is plain ASCII: skip it 8 bytes
		// at a time, straight to the first byte that needs a look.
		if i+8 <= len(s) {
			m := escapeMask8(load8(s, i))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
		} else {
			// The tail, and short strings: a table lookup per byte.
			for i < len(s) && plainASCII[s[i]] {
				i++
			}
			if i == len(s) {
				break
			}
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if plainASCII[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// SWAR constants: a byte repeated in each of the 8 lanes of a word.
const (
	lanes01 = 0x0101010101010101
	lanes80 = 0x8080808080808080
)

// plainASCII marks the bytes AppendJSONString copies as they are.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// load8 reads s[i:i+8] as a little-endian word; the compiler merges the
// byte loads into one.
func load8(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// escapeMask8 has the high bit set in the lowest lane of w that holds a
// control character, a quote, a backslash or a byte of a multi-byte
// character: the bytes AppendJSONString must look at one by one. It is zero
// when there is none. Each (x - 0x01…) &^ x & 0x80… term is non-zero
// exactly when some lane of x is zero, and a borrow only starts at such a
// lane, so lanes above the lowest flagged one may be flagged wrongly but
// the lowest never is.
func escapeMask8(w uint64) uint64 {
	q := w ^ ('"' * lanes01)
	b := w ^ ('\\' * lanes01)
	return ((w-0x20*lanes01)&^w | (q-lanes01)&^q | (b-lanes01)&^b | w) & lanes80
}

func appendJSONBytesString(dst, b []byte) []byte {
	// AppendJSONString does not retain s, so viewing b as a string without
	// copying is safe and spares an allocation per event.
	return AppendJSONString(dst, unsafe.String(unsafe.SliceData(b), len(b)))
}
