package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// maxNodes bounds the nodes Parse visits, counting each use of an alias
// anew, so that a small file of nested aliases (a "billion laughs") cannot
// make it allocate without bound.
const maxNodes = 1 << 20

// Load reads the file at path and parses it with Parse, naming it path in
// messages. It returns a wrapped *fs.PathError when the file cannot be read,
// and otherwise what Parse returns.
func Load(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data)
}

// Parse parses and validates a configuration, expanding ${VAR} from the
// process environment; name starts every position in messages. It returns
// either a File or a *Errors listing every problem of the file. Parse is
// safe for concurrent use.
func Parse(name string, data []byte) (*File, error) {
	return ParseEnv(name, data, os.LookupEnv)
}

// ParseEnv is Parse with the environment given as a lookup function (as
// os.LookupEnv); nil is an empty environment.
func ParseEnv(name string, data []byte, lookupEnv func(string) (string, bool)) (*File, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	d := &decoder{
		file:   name,
		lookup: lookupEnv,
		budget: maxNodes,
		alias:  make(map[*ast.AliasNode]ast.Node),
		pos:    make(map[string]Pos),
		vpos:   make(map[string]Pos),
		bad:    make(map[string]bool),
	}
	f := d.decodeFile(data)
	if len(d.errs) > 0 {
		return nil, &Errors{List: sortErrors(d.errs)}
	}
	f.pos = d.pos
	return f, nil
}

// decoder walks the YAML AST against the schema, collecting every problem.
type decoder struct {
	file   string
	lookup func(string) (string, bool)
	errs   []Error
	budget int
	over   bool
	// alias maps each alias to the anchored node it refers to: the latest
	// anchor of that name before it in the file.
	alias map[*ast.AliasNode]ast.Node
	// pos and vpos hold the position of each key read, and of its value,
	// by dotted path; bad marks the paths whose value had a problem, so
	// that it is not also reported as missing.
	pos, vpos map[string]Pos
	bad       map[string]bool
	// trigPath holds the path of each trigger decoded, such as
	// "triggers[3].http", for the checks across the file.
	trigPath []string
}

func (d *decoder) errorf(p Pos, format string, args ...any) {
	if p.Line == 0 {
		p = Pos{1, 1}
	}
	d.errs = append(d.errs, Error{File: d.file, Pos: p, Msg: fmt.Sprintf(format, args...)})
}

var utf8BOM = []byte("\xef\xbb\xbf")

func (d *decoder) decodeFile(data []byte) *File {
	f := &File{Path: d.file}
	if len(data) > MaxFileSize {
		d.errorf(Pos{1, 1}, "file is larger than %d KiB; this is not a configuration", MaxFileSize>>10)
		return f
	}
	// Editors on Windows write a BOM; the YAML parser would take it for
	// part of the first key.
	data = bytes.TrimPrefix(data, utf8BOM)
	data = protectPlaceholders(data)
	doc, err := parseYAML(data)
	if err != nil {
		d.syntaxError(err, data)
		return f
	}
	var body ast.Node
	for _, dn := range doc.Docs {
		if dn == nil || dn.Body == nil {
			continue
		}
		if body != nil {
			d.errorf(pos(dn.Body), "a configuration is one YAML document; remove this one or the --- before it")
			continue
		}
		body = dn.Body
	}
	if body == nil {
		d.errorf(Pos{1, 1}, "empty configuration (want a mapping with server, kafka, log, functions and triggers)")
		return f
	}
	d.collectAnchors(body, make(map[string]ast.Node))
	d.object(kv{val: d.resolve(body)}, fields{
		"server":    func(e kv) { d.server(e, &f.Server) },
		"kafka":     func(e kv) { d.kafka(e, &f.Kafka) },
		"log":       func(e kv) { d.log(e, &f.Log) },
		"tracing":   func(e kv) { d.tracing(e, &f.Tracing) },
		"functions": func(e kv) { d.functions(e, f) },
		"triggers":  func(e kv) { d.triggers(e, f) },
	})
	d.applyDefaults(f)
	d.check(f)
	return f
}

// parseYAML parses data into an AST. go-yaml has panicked on malformed
// input in past releases; a config file must never crash sluice (a bad
// reload has to leave the old process serving), so a panic is turned into
// a syntax error.
func parseYAML(data []byte) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("cannot parse YAML: %v", r)
		}
	}()
	// Duplicate keys are reported by the decoder, with every other problem,
	// rather than as a parse error that would hide them.
	return parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
}

func (d *decoder) syntaxError(err error, data []byte) {
	var ye yaml.Error
	if !errors.As(err, &ye) {
		d.errorf(Pos{1, 1}, "YAML: %v", err)
		return
	}
	msg := visible(ye.GetMessage())
	if msg == "" {
		msg = "invalid YAML"
	}
	p := tokPos(ye.GetToken())
	if braceInFlow(data, p.Line) {
		msg += ` (inside {...}, quote a value that holds braces: path: "/echo/{id}", token: "${TOKEN}")`
	}
	d.errorf(p, "YAML: %s", msg)
}

// visible escapes control characters, which the parser quotes as they are
// in its messages: a tab would be invisible in a terminal.
func visible(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\t':
			b.WriteString(`\t`)
		case r < ' ' || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// braceInFlow reports whether line n of data looks like a flow mapping with
// a plain value holding braces, such as {path: /echo/{id}}: YAML forbids
// braces in plain scalars inside flow collections, the most common way to
// trip over the syntax when writing routes or ${VAR} on one line.
func braceInFlow(data []byte, n int) bool {
	if n < 1 {
		return false
	}
	lines := bytes.Split(data, []byte("\n"))
	if n > len(lines) {
		return false
	}
	line := lines[n-1]
	return bytes.Contains(line, []byte("{")) && (bytes.Contains(line, []byte("/{")) || bytes.Contains(line, []byte("${")))
}

// collectAnchors resolves every alias under n to the anchored node it names,
// walking in file order so that a redefined anchor is seen as YAML says.
// An anchor is registered after its own value is walked, so an alias inside
// the value it names cannot refer to it: no cycles.
func (d *decoder) collectAnchors(n ast.Node, anchors map[string]ast.Node) {
	switch v := n.(type) {
	case *ast.AnchorNode:
		d.collectAnchors(v.Value, anchors)
		if v.Name != nil && v.Name.GetToken() != nil {
			anchors[v.Name.GetToken().Value] = v.Value
		}
	case *ast.AliasNode:
		if v.Value != nil && v.Value.GetToken() != nil {
			if t, ok := anchors[v.Value.GetToken().Value]; ok {
				d.alias[v] = t
			}
		}
	case *ast.TagNode:
		d.collectAnchors(v.Value, anchors)
	case *ast.MappingNode:
		for _, mv := range v.Values {
			d.collectAnchors(mv, anchors)
		}
	case *ast.MappingValueNode:
		if v.Key != nil {
			d.collectAnchors(v.Key, anchors)
		}
		d.collectAnchors(v.Value, anchors)
	case *ast.MappingKeyNode:
		d.collectAnchors(v.Value, anchors)
	case *ast.SequenceNode:
		for _, x := range v.Values {
			d.collectAnchors(x, anchors)
		}
	}
}

// resolve follows anchors, tags and aliases down to the node holding the
// value. It returns nil when the value is unusable and already reported
// (an unknown alias, the node budget spent); callers skip nil silently.
func (d *decoder) resolve(n ast.Node) ast.Node {
	for n != nil {
		d.budget--
		if d.budget < 0 {
			if !d.over {
				d.over = true
				d.errorf(Pos{1, 1}, "aliases expand to more than %d nodes; this is not a configuration", maxNodes)
			}
			return nil
		}
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			// Tags are ignored: each key has one type, and its value is
			// read as that type whatever tag it carries.
			if v.Value == nil {
				return ast.Null(v.Start)
			}
			n = v.Value
		case *ast.AliasNode:
			t, ok := d.alias[v]
			if !ok {
				name := ""
				if v.Value != nil && v.Value.GetToken() != nil {
					name = v.Value.GetToken().Value
				}
				d.errorf(pos(v), "unknown alias *%s (an alias must follow its &anchor)", name)
				return nil
			}
			n = t
		default:
			return n
		}
	}
	return nil
}

// pos returns the position where n starts in the file.
func pos(n ast.Node) Pos {
	switch v := n.(type) {
	case nil:
		return Pos{}
	case *ast.MappingNode:
		// A block mapping's own token is its first ':'; its first key is
		// where a reader sees it start.
		if v.IsFlowStyle {
			return tokPos(v.Start)
		}
		if len(v.Values) > 0 && v.Values[0] != nil && v.Values[0].Key != nil {
			return pos(v.Values[0].Key)
		}
		return tokPos(v.Start)
	case *ast.MappingValueNode:
		if v.Key != nil {
			return pos(v.Key)
		}
		return tokPos(v.Start)
	case *ast.SequenceNode:
		return tokPos(v.Start)
	case *ast.AnchorNode:
		return tokPos(v.Start)
	case *ast.AliasNode:
		return tokPos(v.Start)
	case *ast.TagNode:
		return tokPos(v.Start)
	case *ast.MappingKeyNode:
		return tokPos(v.Start)
	case *ast.DocumentNode:
		return pos(v.Body)
	case *ast.LiteralNode:
		return tokPos(v.Start)
	}
	return tokPos(n.GetToken())
}

func tokPos(tk *token.Token) Pos {
	if tk == nil || tk.Position == nil {
		return Pos{}
	}
	return Pos{tk.Position.Line, tk.Position.Column}
}

// typeName names the YAML type of a resolved node for messages.
func typeName(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode, *ast.LiteralNode, *ast.MergeKeyNode:
		return "a string"
	case *ast.IntegerNode:
		return "an integer"
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	case *ast.NullNode:
		return "null"
	}
	return "a " + n.Type().String()
}

// kv is one entry of a mapping.
type kv struct {
	key  string
	kpos Pos
	val  ast.Node // resolved; nil when unusable and already reported
	vpos Pos      // where the value is written (the alias, for an alias)
	path string   // dotted path of the key
}

// join returns the path of key under path.
func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// label names e in messages: its key, or "the top level".
func (e kv) label() string {
	switch {
	case e.path == "":
		return "the top level"
	case e.key == "":
		return `""`
	}
	return e.key
}

// typeErr reports that e's value is not of the wanted type.
func (d *decoder) typeErr(e kv, want string) {
	d.errorf(e.vpos, "%s: expected %s, got %s", e.label(), want, typeName(e.val))
}

// entries returns the entries of e's mapping, merge keys applied, and
// false when e is not a mapping (reported) or unusable. A null value is an
// empty mapping.
func (d *decoder) entries(e kv) ([]kv, bool) {
	switch v := e.val.(type) {
	case nil:
		return nil, false
	case *ast.NullNode:
		return nil, true
	case *ast.MappingNode:
		return d.mapEntries(v, e.path, make(map[string]Pos)), true
	}
	if e.path == "" {
		d.errorf(pos(e.val), "the top level must be a mapping (server, kafka, log, tracing, functions, triggers), not %s", typeName(e.val))
		return nil, false
	}
	d.typeErr(e, "a mapping")
	return nil, false
}

// mapEntries returns m's entries in file order, reporting duplicate keys and
// keys that are not scalars. Merge keys (<<) add the entries of the merged
// mappings that m does not set itself, earlier merged mappings first, as
// YAML's merge key type says.
func (d *decoder) mapEntries(m *ast.MappingNode, path string, seen map[string]Pos) []kv {
	var out []kv
	var merges []*ast.MappingValueNode
	for _, mv := range m.Values {
		if mv == nil || mv.Key == nil {
			continue
		}
		if _, ok := mv.Key.(*ast.MergeKeyNode); ok {
			merges = append(merges, mv)
			continue
		}
		kp := pos(mv.Key)
		k := d.resolve(mv.Key)
		if k == nil {
			continue
		}
		key, ok := scalarText(k)
		if !ok {
			d.errorf(kp, "a key must be a string, not %s", typeName(k))
			continue
		}
		if first, dup := seen[key]; dup {
			d.errorf(kp, "duplicate key %q (first at %s)", key, first)
			continue
		}
		seen[key] = kp
		out = append(out, kv{key: key, kpos: kp, val: d.resolve(mv.Value), vpos: valuePos(mv), path: join(path, key)})
	}
	for _, mv := range merges {
		var maps []*ast.MappingNode
		switch v := d.resolve(mv.Value).(type) {
		case nil:
		case *ast.MappingNode:
			maps = append(maps, v)
		case *ast.SequenceNode:
			for _, x := range v.Values {
				switch xm := d.resolve(x).(type) {
				case nil:
				case *ast.MappingNode:
					maps = append(maps, xm)
				default:
					d.errorf(pos(x), "<<: expected a mapping, got %s", typeName(xm))
				}
			}
		default:
			d.errorf(valuePos(mv), "<<: expected a mapping or a list of mappings, got %s", typeName(v))
		}
		for _, mm := range maps {
			// Keys already set win over merged ones: that is what a
			// merge is for, so they are not duplicates.
			for _, e := range d.mapEntries(mm, path, make(map[string]Pos)) {
				if _, dup := seen[e.key]; !dup {
					seen[e.key] = e.kpos
					out = append(out, e)
				}
			}
		}
	}
	return out
}

// valuePos is where mv's value is written, or its key when the value is
// empty.
func valuePos(mv *ast.MappingValueNode) Pos {
	if p := pos(mv.Value); p.Line != 0 {
		if _, null := mv.Value.(*ast.NullNode); !null {
			return p
		}
	}
	return pos(mv.Key)
}

// scalarText returns the text of a scalar node as written (quotes removed),
// before ${VAR} expansion, and false for a mapping or a list.
func scalarText(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return restorePlaceholders(v.Value), true
	case *ast.LiteralNode:
		if v.Value == nil {
			return "", true
		}
		return restorePlaceholders(v.Value.Value), true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.NullNode,
		*ast.InfinityNode, *ast.NanNode, *ast.MergeKeyNode:
		if tk := n.GetToken(); tk != nil {
			return tk.Value, true
		}
		return "", true
	}
	return "", false
}

// fields maps the keys of a mapping to the functions that decode their
// values; it is also the list of known keys for "unknown key" messages.
type fields map[string]func(kv)

// object decodes the mapping in e with fs, reporting unknown keys and
// recording the position of each known one. It returns false when e is not
// a mapping (reported) or unusable.
func (d *decoder) object(e kv, fs fields) bool {
	es, ok := d.entries(e)
	if !ok {
		return false
	}
	for _, x := range es {
		if e.path == "" && strings.HasPrefix(x.key, "x-") {
			continue // an extension key, to hold anchors
		}
		fn := fs[x.key]
		if fn == nil {
			d.unknownKey(x, fs)
			continue
		}
		d.pos[x.path] = x.kpos
		d.vpos[x.path] = x.vpos
		n := len(d.errs)
		fn(x)
		if len(d.errs) > n {
			d.bad[x.path] = true
		}
	}
	return true
}

func (d *decoder) unknownKey(e kv, fs fields) {
	known := make([]string, 0, len(fs))
	for k := range fs {
		known = append(known, k)
	}
	sort.Strings(known)
	if s := suggest(e.key, known); s != "" {
		d.errorf(e.kpos, "unknown key %q (did you mean %q?)", e.key, s)
		return
	}
	d.errorf(e.kpos, "unknown key %q (want %s)", e.key, oneOf(known))
}

// andList lists words as "a, b and c".
func andList(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

// oneOf lists words as "a, b or c".
func oneOf(words []string) string {
	switch len(words) {
	case 0:
		return "nothing"
	case 1:
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}

// text returns the text of e's scalar value with ${VAR} expanded in
// strings, null as "" with null true, and ok false when the value is not a
// scalar (not reported: the caller knows what it wanted) or a reference is
// malformed (reported).
func (d *decoder) text(e kv) (s string, null, ok bool) {
	switch v := e.val.(type) {
	case nil:
		return "", false, false
	case *ast.NullNode:
		return "", true, true
	case *ast.StringNode, *ast.LiteralNode:
		raw, _ := scalarText(v)
		s, msg := expand(raw, d.lookup)
		if msg != "" {
			d.errorf(e.vpos, "%s: %s", e.label(), msg)
			return "", false, false
		}
		return s, false, true
	}
	s, ok = scalarText(e.val)
	return s, false, ok
}

// str returns e's value as a string; null is "". ok is false when a problem
// was reported.
func (d *decoder) str(e kv) (string, bool) {
	s, _, ok := d.text(e)
	if !ok {
		if e.val != nil && !isScalar(e.val) {
			d.typeErr(e, "a string")
		}
		return "", false
	}
	return s, true
}

func isScalar(n ast.Node) bool {
	_, ok := scalarText(n)
	return ok
}

// integer returns e's value as an int. set is false for null (an unset
// key) and when a problem was reported.
func (d *decoder) integer(e kv) (n int, set bool) {
	if v, ok := e.val.(*ast.IntegerNode); ok {
		switch x := v.Value.(type) {
		case int64:
			return int(x), true
		case uint64:
			if x <= 1<<62 {
				return int(x), true
			}
		}
		d.errorf(e.vpos, "%s: %s is out of range", e.label(), v.GetToken().Value)
		return 0, false
	}
	s, null, ok := d.text(e)
	if null {
		return 0, false
	}
	if ok {
		if _, isStr := e.val.(*ast.StringNode); isStr {
			x, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
			if err == nil {
				return int(x), true
			}
			if errors.Is(err, strconv.ErrRange) {
				d.errorf(e.vpos, "%s: %s is out of range", e.label(), s)
				return 0, false
			}
			d.errorf(e.vpos, "%s: expected an integer, got %q", e.label(), s)
			return 0, false
		}
	}
	if e.val != nil {
		d.typeErr(e, "an integer")
	}
	return 0, false
}

// atLeast returns e's integer value, reporting one below min.
func (d *decoder) atLeast(e kv, min int) (int, bool) {
	n, ok := d.integer(e)
	if ok && n < min {
		d.errorf(e.vpos, "%s: must be at least %d, got %d", e.label(), min, n)
		return 0, false
	}
	return n, ok
}

// boolean returns e's value as a bool: true or false, or a string that
// expands to one of them.
func (d *decoder) boolean(e kv) (b, set bool) {
	if v, ok := e.val.(*ast.BoolNode); ok {
		return v.Value, true
	}
	s, null, ok := d.text(e)
	if null {
		return false, false
	}
	if ok {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
		d.errorf(e.vpos, "%s: expected true or false, got %q", e.label(), s)
		return false, false
	}
	if e.val != nil {
		d.typeErr(e, "true or false")
	}
	return false, false
}

// duration returns e's value as a positive duration (0 allowed when zeroOK).
func (d *decoder) duration(e kv, zeroOK bool) (time.Duration, bool) {
	s, null, ok := d.text(e)
	if null {
		return 0, false
	}
	if !ok {
		if e.val != nil && !isScalar(e.val) {
			d.typeErr(e, "a duration")
		}
		return 0, false
	}
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		d.errorf(e.vpos, "%s: invalid duration %q (want Go syntax like 300ms, 3s or 1h30m)", e.label(), s)
		return 0, false
	}
	if v < 0 && zeroOK {
		d.errorf(e.vpos, "%s: must not be negative, got %s", e.label(), s)
		return 0, false
	}
	if v < 0 || (v == 0 && !zeroOK) {
		d.errorf(e.vpos, "%s: must be positive, got %s", e.label(), s)
		return 0, false
	}
	return v, true
}

// size returns e's value as a positive number of bytes.
func (d *decoder) size(e kv) (int64, bool) {
	s, null, ok := d.text(e)
	if null {
		return 0, false
	}
	if !ok {
		if e.val != nil && !isScalar(e.val) {
			d.typeErr(e, "a size")
		}
		return 0, false
	}
	v, err := parseSize(s)
	if err != nil {
		d.errorf(e.vpos, "%s: invalid size %q (want bytes, or a number with KiB, MiB, GiB, TiB, KB, MB, GB or TB)", e.label(), s)
		return 0, false
	}
	if v <= 0 {
		d.errorf(e.vpos, "%s: must be positive, got %s", e.label(), s)
		return 0, false
	}
	return v, true
}

// strList returns e's value as a list of non-empty strings. When commas is
// true a string is also taken, as comma-separated items.
func (d *decoder) strList(e kv, commas bool) ([]string, bool) {
	switch v := e.val.(type) {
	case nil:
		return nil, false
	case *ast.NullNode:
		return nil, true
	case *ast.SequenceNode:
		out := make([]string, 0, len(v.Values))
		ok := true
		for i, x := range v.Values {
			xe := kv{key: e.key, val: d.resolve(x), vpos: pos(x), path: fmt.Sprintf("%s[%d]", e.path, i)}
			if xe.val == nil {
				ok = false
				continue
			}
			if !isScalar(xe.val) {
				d.errorf(xe.vpos, "%s: expected a list of strings, got %s in it", e.label(), typeName(xe.val))
				ok = false
				continue
			}
			s, null, sok := d.text(xe)
			if !sok {
				ok = false
				continue
			}
			if null || s == "" {
				d.errorf(xe.vpos, "%s: an item is empty", e.label())
				ok = false
				continue
			}
			out = append(out, s)
		}
		return out, ok
	}
	if commas && isScalar(e.val) {
		s, _, ok := d.text(e)
		if !ok {
			return nil, false
		}
		var out []string
		for item := range strings.SplitSeq(s, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
		return out, true
	}
	if commas {
		d.typeErr(e, "a list (or a comma-separated string)")
	} else {
		d.typeErr(e, "a list of strings")
	}
	return nil, false
}

// appendJSON appends e's value converted to JSON: mappings keep their key
// order, strings are expanded, and NaN and infinities are refused.
func (d *decoder) appendJSON(b []byte, e kv) ([]byte, bool) {
	switch v := e.val.(type) {
	case nil:
		return b, false
	case *ast.NullNode:
		return append(b, "null"...), true
	case *ast.BoolNode:
		return strconv.AppendBool(b, v.Value), true
	case *ast.IntegerNode:
		switch x := v.Value.(type) {
		case int64:
			return strconv.AppendInt(b, x, 10), true
		case uint64:
			return strconv.AppendUint(b, x, 10), true
		}
		return append(b, "null"...), true
	case *ast.FloatNode:
		return strconv.AppendFloat(b, v.Value, 'g', -1, 64), true
	case *ast.InfinityNode, *ast.NanNode:
		d.errorf(e.vpos, "%s: %s has no JSON form", e.label(), v.GetToken().Value)
		return b, false
	case *ast.StringNode, *ast.LiteralNode, *ast.MergeKeyNode:
		s, _, ok := d.text(e)
		if !ok {
			return b, false
		}
		q, _ := json.Marshal(s) // a string always marshals
		return append(b, q...), true
	case *ast.SequenceNode:
		b = append(b, '[')
		ok := true
		for i, x := range v.Values {
			if i > 0 {
				b = append(b, ',')
			}
			var xok bool
			b, xok = d.appendJSON(b, kv{key: e.key, val: d.resolve(x), vpos: pos(x), path: e.path})
			ok = ok && xok
		}
		return append(b, ']'), ok
	case *ast.MappingNode:
		es, _ := d.entries(e)
		b = append(b, '{')
		ok := true
		for i, x := range es {
			if i > 0 {
				b = append(b, ',')
			}
			q, _ := json.Marshal(x.key)
			b = append(append(b, q...), ':')
			var xok bool
			b, xok = d.appendJSON(b, x)
			ok = ok && xok
		}
		return append(b, '}'), ok
	}
	d.errorf(e.vpos, "%s: %s has no JSON form", e.label(), typeName(e.val))
	return b, false
}

// Braces of placeholders inside plain scalars — route parameters such as
// /echo/{id} and ${VAR} — are what people write, and what the documented
// examples show, even inside flow mappings ({path: /echo/{id}, function: echo}),
// where YAML reserves { and } as indicators and refuses them. Before
// parsing, a brace that opens right after '/' or '$' (where YAML could never
// begin a flow mapping) and its closing brace are swapped for two
// private-use characters, and swapped back in every scalar read. Each swap
// replaces one character by one, so line:column positions stay exact.
const (
	openMark  = '\uE000'
	closeMark = '\uE001'
)

func protectPlaceholders(data []byte) []byte {
	if !bytes.Contains(data, []byte("/{")) && !bytes.Contains(data, []byte("${")) {
		return data
	}
	out := make([]byte, 0, len(data)+64)
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c == '{' && i > 0 && (data[i-1] == '/' || data[i-1] == '$') {
			// Find the closing brace before anything that ends a plain scalar.
			j := i + 1
			for j < len(data) && data[j] != '}' && data[j] != '{' && data[j] != ',' && data[j] != ' ' && data[j] != '\t' && data[j] != '\n' && data[j] != '\r' && data[j] != '#' && data[j] != '"' && data[j] != '\'' {
				j++
			}
			if j < len(data) && data[j] == '}' && j > i+1 {
				out = utf8.AppendRune(out, openMark)
				out = append(out, data[i+1:j]...)
				out = utf8.AppendRune(out, closeMark)
				i = j
				continue
			}
		}
		out = append(out, c)
	}
	return out
}

var placeholderRestorer = strings.NewReplacer(string(openMark), "{", string(closeMark), "}")

func restorePlaceholders(s string) string {
	if !strings.ContainsRune(s, openMark) && !strings.ContainsRune(s, closeMark) {
		return s
	}
	return placeholderRestorer.Replace(s)
}
