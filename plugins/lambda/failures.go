package lambda

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sluicehq/sluice/plugins"
)

// itemID is one itemIdentifier of a batchItemFailures response: an
// envelope id, or a Kafka record named by topic-partition and offset.
type itemID struct {
	id        string
	partition string
	offset    int64
}

func (i itemID) String() string {
	if i.id != "" {
		return strconv.Quote(i.id)
	}
	return fmt.Sprintf(`{"partition":%q,"offset":%d}`, i.partition, i.offset)
}

// ErrItemFailures is wrapped by the error of an invocation whose
// batchItemFailures cannot be read or name an item that was not in the
// invocation. As on Lambda, such a response fails every item.
var ErrItemFailures = errors.New("lambda: invalid batchItemFailures")

var batchItemFailuresKey = []byte(`"batchItemFailures"`)

// parseItemFailures reads the batchItemFailures of a function's response.
// present is false when out is not a JSON object with that key (exactly
// spelled): the response is then not a partial batch response at all. A null
// or empty list is present and means every item succeeded. An identifier that
// is missing, null, empty or neither a string nor {"partition","offset"} is
// an error wrapping ErrItemFailures, as is a response that mentions the key
// but is not valid JSON.
func parseItemFailures(out []byte) (ids []itemID, present bool, err error) {
	if !bytes.Contains(out, batchItemFailuresKey) {
		return nil, false, nil
	}
	if !json.Valid(out) {
		return nil, true, fmt.Errorf("%w: the response is not valid JSON", ErrItemFailures)
	}
	if t := bytes.TrimLeft(out, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, false, nil
	}
	var resp map[string]json.RawMessage
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, true, fmt.Errorf("%w: %v", ErrItemFailures, err)
	}
	raw, ok := resp["batchItemFailures"]
	if !ok {
		return nil, false, nil
	}
	if string(raw) == "null" {
		return nil, true, nil
	}
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, true, fmt.Errorf("%w: must be a list of {\"itemIdentifier\": …}", ErrItemFailures)
	}
	ids = make([]itemID, 0, len(items))
	for i, it := range items {
		v, ok := it["itemIdentifier"]
		if !ok || string(v) == "null" {
			return nil, true, fmt.Errorf("%w: item %d has no itemIdentifier", ErrItemFailures, i)
		}
		id, err := parseItemID(v)
		if err != nil {
			return nil, true, fmt.Errorf("%w: item %d: %v", ErrItemFailures, i, err)
		}
		ids = append(ids, id)
	}
	return ids, true, nil
}

func parseItemID(v json.RawMessage) (itemID, error) {
	var s string
	if json.Unmarshal(v, &s) == nil {
		if s == "" {
			return itemID{}, errors.New("empty itemIdentifier")
		}
		return itemID{id: s}, nil
	}
	var k struct {
		Partition *string          `json:"partition"`
		Offset    *json.RawMessage `json:"offset"`
	}
	if json.Unmarshal(v, &k) != nil || k.Partition == nil || *k.Partition == "" || k.Offset == nil {
		return itemID{}, errors.New(`itemIdentifier must be an event id or {"partition":"topic-partition","offset":N}`)
	}
	o := strings.Trim(string(*k.Offset), `"`)
	off, err := strconv.ParseInt(o, 10, 64)
	if err != nil {
		return itemID{}, fmt.Errorf("offset %s is not an integer", *k.Offset)
	}
	return itemID{partition: *k.Partition, offset: off}, nil
}

// Limits on what an error body may put in a FunctionError, so one runtime
// cannot make every log line and response huge.
const (
	maxErrorText   = 64 << 10
	maxTraceFrames = 256
)

// decodeErrorBody turns the body of /response/error or /init/error into a
// FunctionError. Lambda's shape is {errorMessage, errorType, stackTrace};
// stackTrace is a list of strings (Python, Node.js, Java) or of
// {path, line, label} frames (aws-lambda-go). typeHeader, the
// Lambda-Runtime-Function-Error-Type header, is the type when the body names
// none. A body that is not a JSON object becomes the message as text. It
// never fails and its strings are valid UTF-8.
func decodeErrorBody(body []byte, typeHeader string) *plugins.FunctionError {
	fe := &plugins.FunctionError{Type: clip(typeHeader, 256)}
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil || m == nil {
		fe.Message = clip(string(bytes.TrimSpace(body)), maxErrorText)
		if fe.Message == "" {
			fe.Message = "the runtime reported an error without a message"
		}
		return fe
	}
	fe.Message = clip(jsonText(m["errorMessage"]), maxErrorText)
	if t := jsonText(m["errorType"]); t != "" {
		fe.Type = clip(t, 256)
	}
	fe.Trace = decodeTrace(m["stackTrace"])
	return fe
}

// jsonText returns a JSON string's value, or any other JSON value as its
// compact text; "" for null or nothing.
func jsonText(v json.RawMessage) string {
	if len(v) == 0 || string(v) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	var b bytes.Buffer
	if json.Compact(&b, v) != nil {
		return string(v)
	}
	return b.String()
}

func decodeTrace(v json.RawMessage) []string {
	if len(v) == 0 || string(v) == "null" {
		return nil
	}
	var frames []json.RawMessage
	if json.Unmarshal(v, &frames) != nil {
		s := jsonText(v)
		if s == "" {
			return nil
		}
		lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
		return clipAll(lines[:min(len(lines), maxTraceFrames)])
	}
	out := make([]string, 0, min(len(frames), maxTraceFrames))
	for _, f := range frames[:min(len(frames), maxTraceFrames)] {
		var gf struct {
			Path  *string `json:"path"`
			Line  *int64  `json:"line"`
			Label *string `json:"label"`
		}
		if len(f) > 0 && f[0] == '{' && json.Unmarshal(f, &gf) == nil && gf.Path != nil && gf.Label != nil {
			line := int64(0)
			if gf.Line != nil {
				line = *gf.Line
			}
			out = append(out, fmt.Sprintf("%s (%s:%d)", *gf.Label, *gf.Path, line))
			continue
		}
		out = append(out, jsonText(f))
	}
	return clipAll(out)
}

func clipAll(ss []string) []string {
	for i, s := range ss {
		ss[i] = clip(s, 4<<10)
	}
	return ss
}

// clip returns s as valid UTF-8, cut to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
