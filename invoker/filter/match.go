package filter

import (
	"bytes"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/sluicehq/sluice/plugins"
)

// Match reports whether ev matches the pattern. A nil Pattern matches every
// event. Match reads ev without modifying or retaining it, never panics, and
// is safe for concurrent use.
func (p *Pattern) Match(ev *plugins.Event) bool {
	if p == nil || p.root == nil {
		return true
	}
	o := p.root
	env := envelope{ev: ev}
	var ok uint64
	// Attributes first: they are cheap, and when one that must hold does
	// not, the data is never scanned.
	var dataBits uint64
	for i := range o.cons {
		c := &o.cons[i]
		bit := uint64(1) << uint(i)
		if c.key == "data" {
			dataBits |= bit
			continue
		}
		if env.attr(c) {
			ok |= bit
		}
	}
	if need := o.expr.all &^ dataBits; ok&need != need {
		return false
	}
	for i := range o.cons {
		bit := uint64(1) << uint(i)
		if dataBits&bit != 0 && env.data(&o.cons[i]) {
			ok |= bit
		}
	}
	return o.expr.eval(ok)
}

type vkind uint8

const (
	vString vkind = iota
	vNumber
	vBool
	vNull
)

// value is a scalar of the event. s may view the event's bytes: it never
// outlives Match.
type value struct {
	kind vkind
	s    string
	f    float64
	b    bool
}

type dataKind uint8

const (
	dataUnknown dataKind = iota
	dataNone
	dataJSON
	dataText
)

type envelope struct {
	ev   *plugins.Event
	kind dataKind
	// start and end delimit the JSON value of the data, without the
	// whitespace around it.
	start, end int
}

func (e *envelope) attr(c *constraint) bool {
	v, ok := e.lookup(c.key)
	if !ok {
		return c.leaf.existsFalse
	}
	return c.leaf.matchValue(v)
}

func str(s string) (value, bool) { return value{kind: vString, s: s}, s != "" }

func (e *envelope) lookup(key string) (value, bool) {
	ev := e.ev
	switch key {
	case "specversion":
		return str(plugins.SpecVersion)
	case "id":
		return str(ev.ID)
	case "source":
		return str(ev.Source)
	case "type":
		return str(ev.Type)
	case "subject":
		return str(ev.Subject)
	case "dataschema":
		return str(ev.DataSchema)
	case "partitionkey":
		return str(ev.PartitionKey)
	case "traceparent":
		return str(ev.TraceParent)
	case "tracestate":
		return str(ev.TraceState)
	case "kafkatopic":
		return str(ev.KafkaTopic)
	case "kafkapartition":
		return value{kind: vNumber, f: float64(ev.KafkaPartition)}, ev.KafkaTopic != ""
	case "kafkaoffset":
		return value{kind: vNumber, f: float64(ev.KafkaOffset)}, ev.KafkaTopic != ""
	case "time":
		if ev.Time.IsZero() {
			return value{}, false
		}
		return str(ev.Time.UTC().Format(time.RFC3339Nano))
	case "datacontenttype":
		return str(e.contentType())
	case "kafkaheaders", "data_base64":
		return value{}, false
	}
	x, ok := ev.Extensions[key]
	if !ok {
		return value{}, false
	}
	switch x := x.(type) {
	case string:
		return value{kind: vString, s: x}, true
	case bool:
		return value{kind: vBool, b: x}, true
	case int:
		return value{kind: vNumber, f: float64(x)}, true
	case int32:
		return value{kind: vNumber, f: float64(x)}, true
	case int64:
		return value{kind: vNumber, f: float64(x)}, true
	case float64:
		return value{kind: vNumber, f: x}, true
	}
	return value{kind: vString, s: fmt.Sprint(x)}, true
}

// classify decides how the event's data appears in its JSON encoding, the
// way (*plugins.Event).AppendJSON decides it: the pattern matches what the
// function receives.
func (e *envelope) classify() dataKind {
	if e.kind != dataUnknown {
		return e.kind
	}
	ev := e.ev
	switch {
	case ev.Data == nil:
		e.kind = dataNone
	case plugins.IsJSONContentType(ev.DataContentType) && e.validData():
		e.kind = dataJSON
	case strings.HasPrefix(ev.DataContentType, "text/") && utf8.Valid(ev.Data):
		e.kind = dataText
	default:
		e.kind = dataNone
	}
	return e.kind
}

// validData reports whether the data is one valid JSON value
// (plugins.ValidJSON) and keeps the bounds of the value without the
// whitespace around it.
func (e *envelope) validData() bool {
	b := e.ev.Data
	if !plugins.ValidJSON(b) {
		e.start, e.end = 0, -1
		return false
	}
	e.start, e.end = skipWS(b, 0), len(b)
	for e.end > e.start && isWS(b[e.end-1]) {
		e.end--
	}
	return true
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (e *envelope) contentType() string {
	ct := e.ev.DataContentType
	switch e.classify() {
	case dataJSON:
		if ct == "" {
			return "application/json"
		}
	case dataNone:
		if e.ev.Data != nil && (ct == "" || plugins.IsJSONContentType(ct)) {
			return "application/octet-stream"
		}
	}
	return ct
}

func (e *envelope) data(c *constraint) bool {
	switch e.classify() {
	case dataJSON:
		return evalCons(c, e.ev.Data[e.start:e.end])
	case dataText:
		if c.nested != nil {
			return c.nested.missingOK
		}
		return c.leaf.matchValue(value{kind: vString, s: bytesView(e.ev.Data)})
	}
	if c.nested != nil {
		return c.nested.missingOK
	}
	return c.leaf.existsFalse
}

// bytesView views b as a string without copying. The matchers never retain
// a string, so the view cannot outlive the event's bytes; it spares an
// allocation per string compared, the bulk of Match's work.
func bytesView(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func evalCons(c *constraint, v []byte) bool {
	if c.nested != nil {
		return c.nested.evalValue(v)
	}
	return c.leaf.evalValue(v)
}

// evalValue matches the nested pattern o against the JSON value v: an
// object field by field, an array by any of its elements (an empty one as a
// missing value), a scalar as an object whose fields are all missing.
func (o *object) evalValue(v []byte) bool {
	switch v[0] {
	case '{':
		return o.evalObject(v)
	case '[':
		it := elems{b: v, i: 1}
		empty := true
		for el, ok := it.next(); ok; el, ok = it.next() {
			empty = false
			if o.evalValue(el) {
				return true
			}
		}
		return empty && o.missingOK
	}
	return o.missingOK
}

func (o *object) evalObject(b []byte) bool {
	var seen, ok uint64
	i := 1
	for {
		i = skipWS(b, i)
		if i >= len(b) {
			return false
		}
		if b[i] == '}' {
			break
		}
		if b[i] != '"' {
			return false
		}
		ke, special := stringEnd(b, i)
		if ke < 0 {
			return false
		}
		var idxs []int
		if special {
			var buf [64]byte
			idxs = o.index[string(plugins.AppendUnquotedJSON(buf[:0], b[i:ke]))]
		} else {
			// The compiler turns a map index by string(bytes) into a
			// lookup without a copy.
			idxs = o.index[string(b[i+1:ke-1])]
		}
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipWS(b, i+1)
		ve := valueEnd(b, i)
		if ve < 0 {
			return false
		}
		for _, ci := range idxs {
			bit := uint64(1) << uint(ci)
			seen |= bit
			// A repeated key overrides the earlier one, as in encoding/json.
			if evalCons(&o.cons[ci], b[i:ve]) {
				ok |= bit
			} else {
				ok &^= bit
			}
		}
		i = skipWS(b, ve)
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if i < len(b) && b[i] == '}' {
			break
		}
		return false
	}
	for ci := range o.cons {
		bit := uint64(1) << uint(ci)
		if seen&bit != 0 {
			continue
		}
		if c := &o.cons[ci]; c.leaf != nil && c.leaf.existsFalse || c.nested != nil && c.nested.missingOK {
			ok |= bit
		}
	}
	return o.expr.eval(ok)
}

// evalValue matches the alternatives of l against the JSON value v.
func (l *leaf) evalValue(v []byte) bool {
	if v[0] == '[' {
		it := elems{b: v, i: 1}
		if _, ok := it.next(); !ok {
			return l.existsFalse // an empty array is a missing value
		}
	}
	if l.existsTrue {
		return true
	}
	return len(l.ms) > 0 && l.anyScalar(v)
}

func (l *leaf) anyScalar(v []byte) bool {
	switch v[0] {
	case '{':
		return false
	case '[':
		it := elems{b: v, i: 1}
		for el, ok := it.next(); ok; el, ok = it.next() {
			if l.anyScalar(el) {
				return true
			}
		}
		return false
	}
	var buf [128]byte
	s, ok := scalar(v, buf[:0])
	if !ok {
		return false
	}
	for i := range l.ms {
		if l.ms[i].match(s) {
			return true
		}
	}
	return false
}

// matchValue matches the alternatives of l against a present scalar.
func (l *leaf) matchValue(v value) bool {
	if l.existsTrue {
		return true
	}
	for i := range l.ms {
		if l.ms[i].match(v) {
			return true
		}
	}
	return false
}

func (m *matcher) match(v value) bool {
	switch m.kind {
	case kString:
		return v.kind == vString && v.s == m.s
	case kNumber:
		return v.kind == vNumber && v.f == m.f
	case kBool:
		return v.kind == vBool && v.b == m.b
	case kNull:
		return v.kind == vNull
	case kNumeric:
		return v.kind == vNumber && m.num.contains(v.f)
	case kAnythingBut:
		return !m.but.excludes(v)
	}
	if v.kind != vString {
		return false
	}
	switch m.kind {
	case kPrefix:
		return strings.HasPrefix(v.s, m.s)
	case kPrefixFold:
		return hasPrefixFold(v.s, m.s)
	case kSuffix:
		return strings.HasSuffix(v.s, m.s)
	case kSuffixFold:
		return hasSuffixFold(v.s, m.s)
	case kEqualsFold:
		return strings.EqualFold(v.s, m.s)
	case kWildcard:
		return wildcard(m.s, v.s)
	case kCIDR:
		// ParseAddr keeps a zone's text: a clone lets v.s stay on the stack.
		a, err := netip.ParseAddr(strings.Clone(v.s))
		return err == nil && m.cidr.Contains(a.Unmap())
	}
	return false
}

func (n *numeric) contains(f float64) bool {
	if n.hasLo && (f < n.lo || f == n.lo && !n.loIncl) {
		return false
	}
	if n.hasHi && (f > n.hi || f == n.hi && !n.hiIncl) {
		return false
	}
	return true
}

func (b *anythingBut) excludes(v value) bool {
	switch v.kind {
	case vString:
		for _, s := range b.strs {
			if v.s == s {
				return true
			}
		}
		for i := range b.ms {
			if b.ms[i].match(v) {
				return true
			}
		}
	case vNumber:
		for _, f := range b.nums {
			if v.f == f {
				return true
			}
		}
	}
	return false
}

// hasPrefixFold is strings.HasPrefix under Unicode simple case folding. It
// walks runes, not bytes: folded runes may differ in encoded length (K and
// the Kelvin sign).
func hasPrefixFold(s, prefix string) bool {
	for prefix != "" {
		if s == "" {
			return false
		}
		r1, n1 := utf8.DecodeRuneInString(s)
		r2, n2 := utf8.DecodeRuneInString(prefix)
		if !strings.EqualFold(s[:n1], prefix[:n2]) && r1 != r2 {
			return false
		}
		s, prefix = s[n1:], prefix[n2:]
	}
	return true
}

func hasSuffixFold(s, suffix string) bool {
	for suffix != "" {
		if s == "" {
			return false
		}
		r1, n1 := utf8.DecodeLastRuneInString(s)
		r2, n2 := utf8.DecodeLastRuneInString(suffix)
		if !strings.EqualFold(s[len(s)-n1:], suffix[len(suffix)-n2:]) && r1 != r2 {
			return false
		}
		s, suffix = s[:len(s)-n1], suffix[:len(suffix)-n2]
	}
	return true
}

// wildcard matches s against pattern p, where * stands for any run of
// characters and \* for a literal star. The classic greedy algorithm with
// one backtrack point is linear for patterns without consecutive stars.
func wildcard(p, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		if pi < len(p) {
			c := p[pi]
			if c == '*' {
				star, mark = pi, si
				pi++
				continue
			}
			lit, w := c, 1
			if c == '\\' && pi+1 < len(p) {
				lit, w = p[pi+1], 2
			}
			if lit == s[si] {
				pi += w
				si++
				continue
			}
		}
		if star < 0 {
			return false
		}
		pi = star + 1
		mark++
		si = mark
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// scalar decodes the JSON scalar v; a string with escapes or non-ASCII
// bytes is decoded into buf, which the value then views.
func scalar(v, buf []byte) (value, bool) {
	switch v[0] {
	case '"':
		end, special := stringEnd(v, 0)
		if end != len(v) {
			return value{}, false
		}
		if !special {
			return value{kind: vString, s: bytesView(v[1 : len(v)-1])}, true
		}
		return value{kind: vString, s: bytesView(plugins.AppendUnquotedJSON(buf, v))}, true
	case 't':
		return value{kind: vBool, b: true}, true
	case 'f':
		return value{kind: vBool}, true
	case 'n':
		return value{kind: vNull}, true
	}
	// Out-of-range numbers become ±Inf or 0, as they would in any float64
	// decoder that accepts them; the error adds nothing here.
	f, err := strconv.ParseFloat(bytesView(v), 64)
	if err != nil && !isRangeErr(err) {
		return value{}, false
	}
	return value{kind: vNumber, f: f}, true
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the closing quote of the string that
// starts at b[i], or -1; special reports escapes or non-ASCII bytes.
func stringEnd(b []byte, i int) (end int, special bool) {
	for i++; i < len(b); {
		switch c := b[i]; {
		case c == '"':
			return i + 1, special
		case c == '\\':
			special = true
			i += 2
		case c >= utf8.RuneSelf:
			special = true
			i++
		default:
			i++
		}
	}
	return -1, special
}

// skipString returns the index after the closing quote of the string that
// starts at b[i], or -1. IndexByte jumps to each quote with SIMD; a quote
// is the closing one when an even number of backslashes precede it.
func skipString(b []byte, i int) int {
	for i++; ; {
		q := bytes.IndexByte(b[i:], '"')
		if q < 0 {
			return -1
		}
		i += q
		n := 0
		for j := i - 1; j >= 0 && b[j] == '\\'; j-- {
			n++
		}
		i++
		if n%2 == 0 {
			return i
		}
	}
}

// valueEnd returns the index after the JSON value that starts at b[i], or
// -1. The event's data passed json.Valid, so it only needs to find the end.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end := skipString(b, i)
				if end < 0 {
					return -1
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	}
	start := i
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			if i == start {
				return -1
			}
			return i
		}
		i++
	}
	return i
}

// elems iterates over the elements of a JSON array.
type elems struct {
	b []byte
	i int
}

func (it *elems) next() ([]byte, bool) {
	b := it.b
	i := skipWS(b, it.i)
	if i >= len(b) || b[i] == ']' {
		return nil, false
	}
	if b[i] == ',' {
		i = skipWS(b, i+1)
	}
	end := valueEnd(b, i)
	if end < 0 || end == i {
		return nil, false
	}
	it.i = end
	return b[i:end], true
}
