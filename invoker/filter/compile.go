package filter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every error Compile returns.
var ErrInvalid = errors.New("filter: invalid pattern")

// Error is a mistake in a pattern, located by its path.
type Error struct {
	// Path leads from the pattern's root to the bad part: object keys
	// (string) and array indices (int). Empty for the root itself.
	Path []any
	// Msg says what is wrong.
	Msg string
}

// Error returns "PATH: MSG", for example
// "data.status[0]: numeric needs an operator and a number".
func (e *Error) Error() string {
	if len(e.Path) == 0 {
		return "pattern: " + e.Msg
	}
	return e.PathString() + ": " + e.Msg
}

// Unwrap returns ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

// PathString renders Path as dotted keys with [i] indices; keys that are not
// plain identifiers are quoted: data["a.b"][2].
func (e *Error) PathString() string {
	var sb strings.Builder
	for i, p := range e.Path {
		switch p := p.(type) {
		case int:
			sb.WriteByte('[')
			sb.WriteString(strconv.Itoa(p))
			sb.WriteByte(']')
		case string:
			if plainKey(p) {
				if i > 0 {
					sb.WriteByte('.')
				}
				sb.WriteString(p)
			} else {
				sb.WriteByte('[')
				sb.WriteString(strconv.Quote(p))
				sb.WriteByte(']')
			}
		}
	}
	return sb.String()
}

func plainKey(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '$') {
			return false
		}
	}
	return true
}

const (
	// maxFields bounds the constraints of one object level (its keys and
	// those of its $or alternatives): Match tracks them in a uint64.
	maxFields = 64
	// maxDepth bounds the nesting of a pattern; real patterns are shallow,
	// and the bound keeps a hostile one from exhausting the stack.
	maxDepth = 32
)

// Pattern is a compiled filter. A nil *Pattern matches every event. A Pattern
// is immutable and safe for concurrent use.
type Pattern struct {
	root *object
}

// object is the pattern of one JSON object level.
type object struct {
	index map[string][]int // key -> constraints on it
	cons  []constraint
	expr  expr
	// missingOK is whether the level matches an absent or non-object value,
	// where every field is missing: decided once here.
	missingOK bool
}

type constraint struct {
	key    string
	leaf   *leaf   // an array of alternatives
	nested *object // a nested object (below data only)
}

// expr is the boolean shape of one object level: every constraint in all
// must hold, and in each group of ors at least one alternative.
type expr struct {
	all uint64
	ors [][]expr
}

func (e *expr) eval(ok uint64) bool {
	if ok&e.all != e.all {
		return false
	}
	for _, group := range e.ors {
		found := false
		for i := range group {
			if group[i].eval(ok) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// leaf is an array of alternatives for one field.
type leaf struct {
	existsTrue  bool
	existsFalse bool
	ms          []matcher
}

type kind uint8

const (
	kString kind = iota
	kNumber
	kBool
	kNull
	kPrefix
	kPrefixFold
	kSuffix
	kSuffixFold
	kEqualsFold
	kWildcard
	kAnythingBut
	kNumeric
	kCIDR
)

type matcher struct {
	kind kind
	s    string
	f    float64
	b    bool
	num  numeric
	but  *anythingBut
	cidr netip.Prefix
}

type numeric struct {
	hasLo, loIncl bool
	lo            float64
	hasHi, hiIncl bool
	hi            float64
}

type anythingBut struct {
	strs []string
	nums []float64
	ms   []matcher // prefix, suffix, equals-ignore-case or wildcard
}

// Compile checks pattern and compiles it. An empty pattern, JSON null or {}
// compiles to a pattern that matches every event (nil for the first two).
// Errors wrap ErrInvalid and are *Error values naming the path of the
// mistake.
func Compile(pattern json.RawMessage) (*Pattern, error) {
	// JSON's whitespace only: bytes.TrimSpace would also take \v, \f and
	// Unicode spaces, which no JSON parser accepts around a value.
	trimmed := bytes.Trim(pattern, " \t\n\r")
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil, nil
	}
	root, err := parse(trimmed)
	if err != nil {
		return nil, err
	}
	if root.kind != jObject {
		return nil, &Error{Msg: "want a JSON object"}
	}
	c := compiler{}
	o, err := c.object(root, true)
	if err != nil {
		return nil, err
	}
	return &Pattern{root: o}, nil
}

// MustCompile is Compile for patterns known to be valid (tests, examples);
// it panics on an error.
func MustCompile(pattern string) *Pattern {
	p, err := Compile(json.RawMessage(pattern))
	if err != nil {
		panic("filter: MustCompile: " + err.Error())
	}
	return p
}

type compiler struct {
	path []any
}

func (c *compiler) errf(format string, args ...any) error {
	return &Error{Path: append([]any(nil), c.path...), Msg: fmt.Sprintf(format, args...)}
}

func (c *compiler) push(p any) { c.path = append(c.path, p) }
func (c *compiler) pop()       { c.path = c.path[:len(c.path)-1] }

func (c *compiler) object(j *jvalue, root bool) (*object, error) {
	if len(c.path) > maxDepth {
		return nil, c.errf("pattern nested deeper than %d levels", maxDepth)
	}
	if len(j.keys) == 0 && !root {
		return nil, c.errf("empty object: name at least one field")
	}
	o := &object{index: map[string][]int{}}
	e, err := c.fields(o, j, root)
	if err != nil {
		return nil, err
	}
	o.expr = e
	var missing uint64
	for i, con := range o.cons {
		if con.leaf != nil && con.leaf.existsFalse || con.nested != nil && con.nested.missingOK {
			missing |= 1 << uint(i)
		}
	}
	o.missingOK = o.expr.eval(missing)
	return o, nil
}

// fields compiles the keys of j into o's constraints and returns the
// expression over them.
func (c *compiler) fields(o *object, j *jvalue, root bool) (expr, error) {
	var e expr
	for i, key := range j.keys {
		v := j.vals[i]
		c.push(key)
		if key == "$or" {
			group, err := c.or(o, v, root)
			if err != nil {
				return e, err
			}
			e.ors = append(e.ors, group)
			c.pop()
			continue
		}
		if root && !attrName(key) {
			return e, c.errf("not a CloudEvents attribute name (lowercase letters and digits)")
		}
		con := constraint{key: key}
		switch v.kind {
		case jArray:
			l, err := c.leaf(v)
			if err != nil {
				return e, err
			}
			con.leaf = l
		case jObject:
			if root && key != "data" {
				return e, c.errf("only data has nested fields; %s takes an array of values", key)
			}
			n, err := c.object(v, false)
			if err != nil {
				return e, err
			}
			con.nested = n
		default:
			return e, c.errf("want an array of values or an object of fields, got %s", v.describe())
		}
		if len(o.cons) == maxFields {
			return e, c.errf("more than %d fields at one level", maxFields)
		}
		idx := len(o.cons)
		o.cons = append(o.cons, con)
		o.index[key] = append(o.index[key], idx)
		e.all |= 1 << uint(idx)
		c.pop()
	}
	return e, nil
}

func (c *compiler) or(o *object, v *jvalue, root bool) ([]expr, error) {
	if v.kind != jArray || len(v.elems) == 0 {
		return nil, c.errf("$or takes a non-empty array of patterns")
	}
	var group []expr
	for i, alt := range v.elems {
		c.push(i)
		if alt.kind != jObject || len(alt.keys) == 0 {
			return nil, c.errf("want a non-empty pattern object, got %s", alt.describe())
		}
		if len(c.path) > maxDepth {
			return nil, c.errf("pattern nested deeper than %d levels", maxDepth)
		}
		e, err := c.fields(o, alt, root)
		if err != nil {
			return nil, err
		}
		group = append(group, e)
		c.pop()
	}
	return group, nil
}

// attrName reports whether s is a valid CloudEvents attribute name.
func attrName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

var matcherNames = "prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, exists or cidr"

func (c *compiler) leaf(v *jvalue) (*leaf, error) {
	if len(v.elems) == 0 {
		return nil, c.errf("empty array: give at least one value")
	}
	l := &leaf{}
	for i, el := range v.elems {
		c.push(i)
		switch el.kind {
		case jString:
			l.ms = append(l.ms, matcher{kind: kString, s: el.s})
		case jNumber:
			f, err := c.number(el)
			if err != nil {
				return nil, err
			}
			l.ms = append(l.ms, matcher{kind: kNumber, f: f})
		case jBool:
			l.ms = append(l.ms, matcher{kind: kBool, b: el.b})
		case jNull:
			l.ms = append(l.ms, matcher{kind: kNull})
		case jArray:
			return nil, c.errf("nested arrays are not allowed")
		case jObject:
			if len(el.keys) != 1 {
				return nil, c.errf("a matcher object has exactly one key (%s)", matcherNames)
			}
			name, arg := el.keys[0], el.vals[0]
			if name == "exists" {
				if arg.kind != jBool {
					return nil, c.errf("exists takes true or false")
				}
				if arg.b {
					l.existsTrue = true
				} else {
					l.existsFalse = true
				}
			} else {
				m, err := c.matcher(name, arg)
				if err != nil {
					return nil, err
				}
				l.ms = append(l.ms, m)
			}
		}
		c.pop()
	}
	return l, nil
}

func (c *compiler) number(v *jvalue) (float64, error) {
	f, err := strconv.ParseFloat(v.s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, c.errf("number %s is out of range", v.s)
	}
	return f, nil
}

func (c *compiler) matcher(name string, arg *jvalue) (matcher, error) {
	switch name {
	case "prefix", "suffix":
		k, fold := kPrefix, kPrefixFold
		if name == "suffix" {
			k, fold = kSuffix, kSuffixFold
		}
		switch {
		case arg.kind == jString:
			return matcher{kind: k, s: arg.s}, nil
		case arg.kind == jObject && len(arg.keys) == 1 && arg.keys[0] == "equals-ignore-case" && arg.vals[0].kind == jString:
			return matcher{kind: fold, s: arg.vals[0].s}, nil
		}
		return matcher{}, c.errf("%s takes a string or {\"equals-ignore-case\": string}", name)
	case "equals-ignore-case":
		if arg.kind != jString {
			return matcher{}, c.errf("equals-ignore-case takes a string")
		}
		return matcher{kind: kEqualsFold, s: arg.s}, nil
	case "wildcard":
		if arg.kind != jString {
			return matcher{}, c.errf("wildcard takes a string")
		}
		if err := checkWildcard(arg.s); err != nil {
			return matcher{}, c.errf("wildcard %q: %s", arg.s, err)
		}
		return matcher{kind: kWildcard, s: arg.s}, nil
	case "cidr":
		if arg.kind != jString {
			return matcher{}, c.errf("cidr takes a string such as \"10.0.0.0/24\"")
		}
		p, err := netip.ParsePrefix(arg.s)
		if err != nil {
			return matcher{}, c.errf("cidr %q is not an IP prefix such as \"10.0.0.0/24\"", arg.s)
		}
		return matcher{kind: kCIDR, cidr: p.Masked()}, nil
	case "numeric":
		n, err := c.numeric(arg)
		if err != nil {
			return matcher{}, err
		}
		return matcher{kind: kNumeric, num: n}, nil
	case "anything-but":
		b, err := c.anythingBut(arg)
		if err != nil {
			return matcher{}, err
		}
		return matcher{kind: kAnythingBut, but: b}, nil
	}
	return matcher{}, c.errf("unknown matcher %q (want %s)", name, matcherNames)
}

func (c *compiler) numeric(arg *jvalue) (numeric, error) {
	var n numeric
	bad := func() (numeric, error) {
		return numeric{}, c.errf(`numeric needs an operator and a number, or a lower and an upper bound: ["=", 5], [">", 0, "<=", 5]`)
	}
	if arg.kind != jArray || (len(arg.elems) != 2 && len(arg.elems) != 4) {
		return bad()
	}
	for i := 0; i < len(arg.elems); i += 2 {
		op, num := arg.elems[i], arg.elems[i+1]
		if op.kind != jString || num.kind != jNumber {
			return bad()
		}
		f, err := c.number(num)
		if err != nil {
			return numeric{}, err
		}
		switch op.s {
		case "=":
			if len(arg.elems) != 2 {
				return numeric{}, c.errf(`numeric "=" stands alone: ["=", 5]`)
			}
			n = numeric{hasLo: true, loIncl: true, lo: f, hasHi: true, hiIncl: true, hi: f}
		case ">", ">=":
			if n.hasLo {
				return numeric{}, c.errf("numeric has two lower bounds")
			}
			n.hasLo, n.loIncl, n.lo = true, op.s == ">=", f
		case "<", "<=":
			if n.hasHi {
				return numeric{}, c.errf("numeric has two upper bounds")
			}
			n.hasHi, n.hiIncl, n.hi = true, op.s == "<=", f
		default:
			return numeric{}, c.errf("numeric operator %q is not one of =, <, <=, >, >=", op.s)
		}
	}
	if n.hasLo && n.hasHi && (n.lo > n.hi || n.lo == n.hi && !(n.loIncl && n.hiIncl)) {
		return numeric{}, c.errf("numeric range is empty")
	}
	return n, nil
}

func (c *compiler) anythingBut(arg *jvalue) (*anythingBut, error) {
	b := &anythingBut{}
	switch arg.kind {
	case jString:
		b.strs = append(b.strs, arg.s)
	case jNumber:
		f, err := c.number(arg)
		if err != nil {
			return nil, err
		}
		b.nums = append(b.nums, f)
	case jArray:
		if len(arg.elems) == 0 {
			return nil, c.errf("anything-but takes a non-empty array")
		}
		for i, el := range arg.elems {
			switch el.kind {
			case jString:
				b.strs = append(b.strs, el.s)
			case jNumber:
				f, err := c.number(el)
				if err != nil {
					return nil, err
				}
				b.nums = append(b.nums, f)
			default:
				return nil, c.errf("anything-but lists strings and numbers, got %s at index %d", el.describe(), i)
			}
		}
	case jObject:
		if len(arg.keys) != 1 {
			return nil, c.errf("anything-but takes one of prefix, suffix, equals-ignore-case or wildcard")
		}
		name, v := arg.keys[0], arg.vals[0]
		var vals []*jvalue
		switch v.kind {
		case jString:
			vals = []*jvalue{v}
		case jArray:
			vals = v.elems
		}
		if len(vals) == 0 {
			return nil, c.errf("anything-but %s takes a string or a non-empty array of strings", name)
		}
		for _, s := range vals {
			if s.kind != jString {
				return nil, c.errf("anything-but %s takes a string or a non-empty array of strings", name)
			}
			var m matcher
			switch name {
			case "prefix":
				m = matcher{kind: kPrefix, s: s.s}
			case "suffix":
				m = matcher{kind: kSuffix, s: s.s}
			case "equals-ignore-case":
				m = matcher{kind: kEqualsFold, s: s.s}
			case "wildcard":
				if err := checkWildcard(s.s); err != nil {
					return nil, c.errf("wildcard %q: %s", s.s, err)
				}
				m = matcher{kind: kWildcard, s: s.s}
			default:
				return nil, c.errf("anything-but takes one of prefix, suffix, equals-ignore-case or wildcard, not %q", name)
			}
			b.ms = append(b.ms, m)
		}
	default:
		return nil, c.errf("anything-but takes a string, a number, an array of them or a matcher object")
	}
	return b, nil
}

// checkWildcard rejects consecutive stars, as EventBridge does: they add
// nothing and make matching needlessly expensive.
func checkWildcard(s string) error {
	for i := 0; i+1 < len(s); i++ {
		if s[i] == '\\' {
			i++
			continue
		}
		if s[i] == '*' && s[i+1] == '*' {
			return errors.New("consecutive * are not allowed")
		}
	}
	return nil
}

// jvalue is a JSON value of a pattern, keeping key order and spotting
// duplicate keys, which a map would hide.
type jvalue struct {
	kind  jkind
	s     string // string, or number text
	b     bool
	keys  []string
	vals  []*jvalue
	elems []*jvalue
}

type jkind uint8

const (
	jNull jkind = iota
	jBool
	jNumber
	jString
	jArray
	jObject
)

func (v *jvalue) describe() string {
	switch v.kind {
	case jNull:
		return "null"
	case jBool:
		return "a boolean"
	case jNumber:
		return "a number"
	case jString:
		return "a string"
	case jArray:
		return "an array"
	}
	return "an object"
}

func parse(b []byte) (*jvalue, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	p := parser{dec: dec}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &Error{Msg: "unexpected data after the pattern object"}
	}
	return v, nil
}

type parser struct {
	dec  *json.Decoder
	path []any
}

func (p *parser) errf(format string, args ...any) error {
	return &Error{Path: append([]any(nil), p.path...), Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) value(depth int) (*jvalue, error) {
	if depth > 2*maxDepth+8 {
		return nil, p.errf("pattern nested too deep")
	}
	tok, err := p.dec.Token()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, p.errf("not valid JSON: %v", err)
	}
	switch t := tok.(type) {
	case nil:
		return &jvalue{kind: jNull}, nil
	case bool:
		return &jvalue{kind: jBool, b: t}, nil
	case json.Number:
		return &jvalue{kind: jNumber, s: t.String()}, nil
	case string:
		return &jvalue{kind: jString, s: t}, nil
	case json.Delim:
		switch t {
		case '{':
			v := &jvalue{kind: jObject}
			seen := map[string]bool{}
			for p.dec.More() {
				kt, err := p.dec.Token()
				if err != nil {
					return nil, p.errf("not valid JSON: %v", err)
				}
				key, ok := kt.(string)
				if !ok {
					return nil, p.errf("not valid JSON: object key")
				}
				p.path = append(p.path, key)
				if seen[key] {
					return nil, p.errf("duplicate key")
				}
				seen[key] = true
				val, err := p.value(depth + 1)
				if err != nil {
					return nil, err
				}
				p.path = p.path[:len(p.path)-1]
				v.keys = append(v.keys, key)
				v.vals = append(v.vals, val)
			}
			if _, err := p.dec.Token(); err != nil {
				return nil, p.errf("not valid JSON: %v", err)
			}
			return v, nil
		case '[':
			v := &jvalue{kind: jArray}
			for i := 0; p.dec.More(); i++ {
				p.path = append(p.path, i)
				el, err := p.value(depth + 1)
				if err != nil {
					return nil, err
				}
				p.path = p.path[:len(p.path)-1]
				v.elems = append(v.elems, el)
			}
			if _, err := p.dec.Token(); err != nil {
				return nil, p.errf("not valid JSON: %v", err)
			}
			return v, nil
		}
	}
	return nil, p.errf("not valid JSON: unexpected %v", tok)
}
