package plugins

import (
	"unicode/utf16"
	"unicode/utf8"
)

// AppendUnquotedJSON appends the text of the JSON string literal s (quotes
// included), which ValidJSON or JSONValueEnd accepted, to dst exactly as
// encoding/json decodes it: escapes decoded, a surrogate pair joined, a
// lone surrogate and invalid UTF-8 replaced by U+FFFD. It allocates only
// when dst must grow. Given a broken escape (input no validator passed) it
// copies the rest as it is rather than fail.
func AppendUnquotedJSON(dst, s []byte) []byte {
	if len(s) < 2 {
		return dst
	}
	in := s[1 : len(s)-1]
	for len(in) > 0 {
		// Runs of plain ASCII are copied whole.
		i := 0
		for i < len(in) && in[i] != '\\' && in[i] < utf8.RuneSelf {
			i++
		}
		dst = append(dst, in[:i]...)
		if in = in[i:]; len(in) == 0 {
			break
		}
		if in[0] != '\\' {
			r, n := utf8.DecodeRune(in)
			dst = utf8.AppendRune(dst, r) // RuneError for invalid UTF-8, as encoding/json
			in = in[n:]
			continue
		}
		if len(in) < 2 {
			return append(dst, in...)
		}
		switch c := in[1]; c {
		case '"', '\\', '/':
			dst = append(dst, c)
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(in[2:])
			if r < 0 {
				return append(dst, in...)
			}
			in = in[6:]
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if len(in) >= 6 && in[0] == '\\' && in[1] == 'u' {
					r2 = hex4(in[2:])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					dst = utf8.AppendRune(dst, dec)
					in = in[6:]
					continue
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default:
			return append(dst, in...)
		}
		in = in[2:]
	}
	return dst
}

// hex4 decodes the four hex digits at the start of b, or returns -1.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}
