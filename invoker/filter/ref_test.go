package filter

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/sluicehq/sluice/plugins"
)

// refMatch is a second, deliberately naive implementation of the matching
// semantics: it decodes the pattern and the event's encoded JSON with
// encoding/json into Go values and walks them. The fuzzers compare it with
// Match, whose byte scanner shares no code with it.
func refMatch(pattern []byte, ev *plugins.Event) bool {
	var p map[string]any
	if err := decode(pattern, &p); err != nil || p == nil {
		return true
	}
	enc, _ := ev.MarshalJSON()
	var env map[string]any
	if err := decode(enc, &env); err != nil {
		panic("BUG: envelope does not decode: " + err.Error())
	}
	delete(env, "kafkaheaders")
	delete(env, "data_base64")
	return refObject(p, env, true)
}

func decode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

func refObject(p map[string]any, obj map[string]any, present bool) bool {
	for k, pv := range p {
		if k == "$or" {
			alts := pv.([]any)
			found := false
			for _, a := range alts {
				if refObject(a.(map[string]any), obj, present) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
			continue
		}
		v, ok := obj[k]
		switch pv := pv.(type) {
		case map[string]any:
			if !refNested(pv, v, ok) {
				return false
			}
		case []any:
			if !refLeaf(pv, v, ok) {
				return false
			}
		}
	}
	return true
}

func refNested(p map[string]any, v any, present bool) bool {
	if !present {
		return refObject(p, map[string]any{}, false)
	}
	switch v := v.(type) {
	case map[string]any:
		return refObject(p, v, true)
	case []any:
		if len(v) == 0 {
			return refObject(p, map[string]any{}, false)
		}
		for _, el := range v {
			if refNested(p, el, true) {
				return true
			}
		}
		return false
	}
	return refObject(p, map[string]any{}, false)
}

func refLeaf(alts []any, v any, present bool) bool {
	if arr, ok := v.([]any); ok && len(arr) == 0 {
		present = false
	}
	for _, a := range alts {
		if m, ok := a.(map[string]any); ok {
			if e, ok := m["exists"]; ok {
				if e.(bool) == present {
					return true
				}
				continue
			}
		}
		if present && refAny(a, v) {
			return true
		}
	}
	return false
}

func refAny(alt any, v any) bool {
	switch v := v.(type) {
	case []any:
		for _, el := range v {
			if refAny(alt, el) {
				return true
			}
		}
		return false
	case map[string]any:
		return false
	}
	return refScalar(alt, v)
}

func num(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil && !strings.Contains(err.Error(), "range") {
		return 0, false
	}
	return f, true
}

func refScalar(alt any, v any) bool {
	switch a := alt.(type) {
	case nil:
		return v == nil
	case bool:
		b, ok := v.(bool)
		return ok && a == b
	case string:
		s, ok := v.(string)
		return ok && s == a
	case json.Number:
		f, ok := num(v)
		g, _ := num(a)
		return ok && f == g
	case map[string]any:
		for name, arg := range a {
			return refMatcher(name, arg, v)
		}
	}
	return false
}

func refMatcher(name string, arg any, v any) bool {
	s, isStr := v.(string)
	switch name {
	case "prefix", "suffix":
		fold := false
		want, ok := arg.(string)
		if !ok {
			want, fold = arg.(map[string]any)["equals-ignore-case"].(string), true
		}
		if !isStr {
			return false
		}
		n := utf8.RuneCountInString(want)
		runes := []rune(s)
		if len(runes) < n {
			return false
		}
		var part string
		if name == "prefix" {
			part = string(runes[:n])
		} else {
			part = string(runes[len(runes)-n:])
		}
		if !utf8.ValidString(s) || !utf8.ValidString(want) {
			// []rune rewrites invalid bytes; fall back to bytes.
			if fold {
				return false
			}
			if name == "prefix" {
				return strings.HasPrefix(s, want)
			}
			return strings.HasSuffix(s, want)
		}
		if fold {
			return strings.EqualFold(part, want)
		}
		return part == want
	case "equals-ignore-case":
		return isStr && strings.EqualFold(s, arg.(string))
	case "wildcard":
		return isStr && refWildcard(arg.(string), s)
	case "cidr":
		if !isStr {
			return false
		}
		p := netip.MustParsePrefix(arg.(string))
		a, err := netip.ParseAddr(s)
		return err == nil && p.Masked().Contains(a.Unmap())
	case "numeric":
		f, ok := num(v)
		if !ok {
			return false
		}
		ops := arg.([]any)
		for i := 0; i < len(ops); i += 2 {
			g, _ := num(ops[i+1])
			var holds bool
			switch ops[i].(string) {
			case "=":
				holds = f == g
			case "<":
				holds = f < g
			case "<=":
				holds = f <= g
			case ">":
				holds = f > g
			case ">=":
				holds = f >= g
			}
			if !holds {
				return false
			}
		}
		return true
	case "anything-but":
		var excluded bool
		switch a := arg.(type) {
		case string, json.Number:
			excluded = refScalar(a, v)
		case []any:
			for _, x := range a {
				if refScalar(x, v) {
					excluded = true
				}
			}
		case map[string]any:
			for inner, iv := range a {
				list, ok := iv.([]any)
				if !ok {
					list = []any{iv}
				}
				for _, x := range list {
					if refMatcher(inner, x, v) {
						excluded = true
					}
				}
			}
		}
		return !excluded
	}
	return false
}

func refWildcard(p, s string) bool {
	var re strings.Builder
	re.WriteString(`(?s)\A`)
	lit := []byte{}
	for i := 0; i < len(p); i++ {
		switch {
		case p[i] == '\\' && i+1 < len(p):
			lit = append(lit, p[i+1])
			i++
		case p[i] == '*':
			re.WriteString(regexp.QuoteMeta(string(lit)))
			lit = lit[:0]
			re.WriteString(`.*`)
		default:
			lit = append(lit, p[i])
		}
	}
	re.WriteString(regexp.QuoteMeta(string(lit)))
	re.WriteString(`\z`)
	rx, err := regexp.Compile(re.String())
	if err != nil {
		return false
	}
	if !utf8.ValidString(s) || !utf8.ValidString(p) {
		return wildcard(p, s) // regexp cannot see invalid bytes; out of scope here
	}
	return rx.MatchString(s)
}
