package plugins

import (
	"encoding/binary"
	"math/bits"
)

// maxJSONDepth is encoding/json's nesting limit, kept so that validJSON
// and json.Valid agree on every input.
const maxJSONDepth = 10000

// ValidJSON reports whether b is one valid JSON value, exactly as
// json.Valid does, several times faster: for decoders that check bytes
// from outside before marking them Event.DataValidJSON. It is safe for
// concurrent use.
func ValidJSON(b []byte) bool { return validJSON(b) }

// JSONValueEnd returns the length of the valid JSON value at the start of
// b (no space before it; what follows it is not looked at), or -1 if b
// does not start with one. It validates exactly as ValidJSON does, so a
// decoder can walk an object's members and validate it in the same pass.
// It is safe for concurrent use.
func JSONValueEnd(b []byte) int { return scanJSONValue(b, 0) }

// validJSON reports whether b is one valid JSON value, exactly as
// json.Valid does (its tests fuzz the two against each other), several
// times faster: every event with JSON data is validated when it is encoded,
// which made json.Valid the largest cost of a small invocation. Like
// json.Valid it does not check that strings are valid UTF-8.
func validJSON(b []byte) bool {
	i := scanJSONValue(b, skipJSONSpace(b, 0))
	return i >= 0 && skipJSONSpace(b, i) == len(b)
}

// scanJSONValue validates the JSON value at b[i] and returns the index
// after it, or -1.
func scanJSONValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '{', '[':
		return scanJSONContainer(b, i)
	case '"':
		return scanJSONString(b, i)
	case 't':
		return scanJSONLiteral(b, i, "true")
	case 'f':
		return scanJSONLiteral(b, i, "false")
	case 'n':
		return scanJSONLiteral(b, i, "null")
	}
	return scanJSONNumber(b, i)
}

// scanJSONContainer is scanJSONValue for an object or an array, kept apart
// so that a scalar costs no zeroing of the nesting stack.
func scanJSONContainer(b []byte, i int) int {
	// One bit per open container: set for an object, clear for an array.
	var stack [maxJSONDepth/64 + 1]uint64
	depth := 0
	for {
		// A value is expected at b[i].
		if i >= len(b) {
			return -1
		}
		switch c := b[i]; c {
		case '{', '[':
			if depth == maxJSONDepth {
				return -1
			}
			if c == '{' {
				stack[depth/64] |= 1 << (depth % 64)
			} else {
				stack[depth/64] &^= 1 << (depth % 64)
			}
			depth++
			i = skipJSONSpace(b, i+1)
			if i < len(b) && (b[i] == '}' && c == '{' || b[i] == ']' && c == '[') {
				depth--
				i++
				break
			}
			if c == '{' {
				if i = scanJSONKey(b, i); i < 0 {
					return -1
				}
			}
			continue
		case '"':
			if i = scanJSONString(b, i); i < 0 {
				return -1
			}
		case 't':
			if i = scanJSONLiteral(b, i, "true"); i < 0 {
				return -1
			}
		case 'f':
			if i = scanJSONLiteral(b, i, "false"); i < 0 {
				return -1
			}
		case 'n':
			if i = scanJSONLiteral(b, i, "null"); i < 0 {
				return -1
			}
		default:
			if i = scanJSONNumber(b, i); i < 0 {
				return -1
			}
		}
		// After a value: close containers, or move to the next element.
		for {
			if depth == 0 {
				return i
			}
			i = skipJSONSpace(b, i)
			if i >= len(b) {
				return -1
			}
			inObject := stack[(depth-1)/64]&(1<<((depth-1)%64)) != 0
			c := b[i]
			if c == ',' {
				i = skipJSONSpace(b, i+1)
				if inObject {
					if i = scanJSONKey(b, i); i < 0 {
						return -1
					}
				}
				break
			}
			if inObject && c == '}' || !inObject && c == ']' {
				depth--
				i++
				continue
			}
			return -1
		}
	}
}

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
			continue
		}
		break
	}
	return i
}

// scanJSONKey scans `"key" :` and the space after it, returning the index
// of the value, or -1.
func scanJSONKey(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = scanJSONString(b, i); i < 0 {
		return -1
	}
	i = skipJSONSpace(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return skipJSONSpace(b, i+1)
}

const (
	swarOnes  = 0x0101010101010101
	swarHighs = 0x8080808080808080
)

// scanJSONString scans the string starting at b[i] == '"' and returns the
// index after its closing quote, or -1.
func scanJSONString(b []byte, i int) int {
	i++
	for {
		// Eight bytes at a time while none is a quote, a backslash or a
		// control character: strings are most of an event's bytes.
		for i+8 <= len(b) {
			w := binary.LittleEndian.Uint64(b[i:])
			q := w ^ ('"' * swarOnes)
			s := w ^ ('\\' * swarOnes)
			m := ((q - swarOnes) &^ q) | ((s - swarOnes) &^ s) | ((w - 0x20*swarOnes) &^ w)
			m &= swarHighs
			if m != 0 {
				i += bits.TrailingZeros64(m) / 8
				break
			}
			i += 8
		}
		if i >= len(b) {
			return -1
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			if i+1 >= len(b) {
				return -1
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return -1
				}
				for _, h := range b[i+2 : i+6] {
					if !isHex(h) {
						return -1
					}
				}
				i += 6
			default:
				return -1
			}
		case c < 0x20:
			return -1
		default:
			i++
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func scanJSONLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// scanJSONNumber scans -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanJSONNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = scanDigits(b, i)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := scanDigits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := scanDigits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func scanDigits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}
