package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
)

// expand replaces ${NAME} and ${NAME:-default} in s from lookup, and "$${"
// with a literal "${". It returns a message, not an error, when a reference
// is malformed. Expanded text is not expanded again.
func expand(s string, lookup func(string) (string, bool)) (string, string) {
	if !strings.Contains(s, "${") {
		return s, ""
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 3
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			b.WriteByte(s[i])
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", fmt.Sprintf("unterminated ${ in %q", s)
		}
		ref := s[i+2 : i+2+end]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !isEnvName(name) {
			return "", fmt.Sprintf("bad variable reference ${%s} (want ${NAME} or ${NAME:-default}; $${ is a literal ${)", ref)
		}
		v, ok := lookup(name)
		if hasDef && (!ok || v == "") {
			v = def
		}
		b.WriteString(v)
		i += 3 + end
	}
	return b.String(), ""
}

func isEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

var sizeUnits = map[string]int64{
	"":    1,
	"b":   1,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
	"tib": 1 << 40,
	"kb":  1e3,
	"mb":  1e6,
	"gb":  1e9,
	"tb":  1e12,
}

var errSize = errors.New("config: invalid size")

// parseSize reads "123", "6MiB", "6 MiB", "-1KB" (negative sizes parse, for
// the caller to refuse with a clearer message).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	i := 0
	if i < len(s) && (s[i] == '-' || s[i] == '+') {
		i++
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i == start {
		return 0, errSize
	}
	n, err := strconv.ParseInt(s[:i], 10, 64)
	if err != nil {
		return 0, errSize
	}
	mul, ok := sizeUnits[strings.ToLower(strings.TrimSpace(s[i:]))]
	if !ok {
		return 0, errSize
	}
	if n > math.MaxInt64/mul || n < math.MinInt64/mul {
		return 0, errSize
	}
	return n * mul, nil
}

// suggest returns the word of known closest to w, or "" when none is close
// enough to be a likely typo.
func suggest(w string, known []string) string {
	best, bestD := "", math.MaxInt
	for _, k := range known {
		if dist := editDistance(strings.ToLower(w), strings.ToLower(k)); dist < bestD {
			best, bestD = k, dist
		}
	}
	// One or two edits, or a third of the word: "timout", "admin_lisen",
	// "concurency" are typos; "foo" for "log" is not.
	if best == "" || bestD*2 >= len(best) || (bestD > 2 && bestD*3 > len(best)) {
		return ""
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b,
// in bytes: Levenshtein's, with a swap of two neighbours ("ecoh") as one
// edit, the commonest typo.
func editDistance(a, b string) int {
	rows := make([][]int, len(a)+1)
	for i := range rows {
		rows[i] = make([]int, len(b)+1)
		rows[i][0] = i
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			rows[i][j] = min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				rows[i][j] = min(rows[i][j], rows[i-2][j-2]+1)
			}
		}
	}
	return rows[len(a)][len(b)]
}

// routePattern checks an HTTP or storage path and returns its pattern, the
// path with every parameter name blanked ("/a/{}"), so that /a/{x} and
// /a/{y} compare equal. It returns a message when the path is invalid.
func routePattern(p string) (string, string) {
	if !strings.HasPrefix(p, "/") {
		return "", `must start with "/"`
	}
	for _, c := range p {
		if c <= ' ' || c == 0x7f {
			return "", "must not contain spaces or control characters"
		}
		if c == '?' || c == '#' {
			return "", "must not contain a query (?) or a fragment (#)"
		}
	}
	segs := strings.Split(p[1:], "/")
	names := make(map[string]bool)
	for i, s := range segs {
		if s == "" && i < len(segs)-1 {
			return "", `must not contain an empty segment ("//")`
		}
		if !strings.ContainsAny(s, "{}") {
			continue
		}
		if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' || strings.ContainsAny(s[1:len(s)-1], "{}") {
			return "", fmt.Sprintf("segment %q: a parameter is a whole segment, like {id}", s)
		}
		name := s[1 : len(s)-1]
		if !isParamName(name) {
			return "", fmt.Sprintf("bad parameter name %q (want letters, digits and _)", name)
		}
		if names[name] {
			return "", fmt.Sprintf("duplicate parameter {%s}", name)
		}
		names[name] = true
		segs[i] = "{}"
	}
	return "/" + strings.Join(segs, "/"), ""
}

func isParamName(s string) bool {
	// Same alphabet as an environment variable name.
	return isEnvName(s)
}

// checkAddr checks a host:port listen or broker address; the port may be 0
// (any free port) as tests listen on 127.0.0.1:0.
func checkAddr(s string) string {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Sprintf("invalid address %q (want host:port, like \":8080\" or \"127.0.0.1:9092\")", s)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Sprintf("invalid port %q in %q (want 0 to 65535)", port, s)
	}
	return ""
}

// isLoopback reports whether the listen address s only accepts local
// connections. An empty host listens on every interface.
func isLoopback(s string) bool {
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkTopic checks a Kafka topic name as the broker would.
func checkTopic(s string) string {
	if s == "" {
		return "a topic name must not be empty"
	}
	if s == "." || s == ".." {
		return fmt.Sprintf("invalid topic name %q", s)
	}
	if len(s) > 249 {
		return "a topic name is at most 249 characters"
	}
	for _, c := range s {
		if !(c == '.' || c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return fmt.Sprintf("invalid topic name %q (want letters, digits, '.', '_' and '-')", s)
		}
	}
	return ""
}

// isFunctionName reports whether s is a valid function name: the alphabet
// and length of AWS Lambda's, as names appear in the invoke API's URLs and
// in metric labels.
func isFunctionName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c == '-' || c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
