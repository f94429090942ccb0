package process

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

// appendBatchLine appends the stdin line of one batch, newline included.
// traceparents, when not nil, replace the events' traceparent
// (plugins.Batch.TraceParents).
func appendBatchLine(dst []byte, id string, deadline time.Time, events []*plugins.Event, traceparents []string) []byte {
	dst = append(dst, `{"batch":`...)
	dst = plugins.AppendJSONString(dst, id)
	dst = append(dst, `,"deadline_ms":`...)
	var ms int64
	if !deadline.IsZero() {
		ms = deadline.UnixMilli()
	}
	dst = strconv.AppendInt(dst, ms, 10)
	dst = append(dst, `,"events":[`...)
	for i, ev := range events {
		if i > 0 {
			dst = append(dst, ',')
		}
		start := len(dst)
		if i < len(traceparents) && traceparents[i] != "" {
			traced := *ev
			traced.TraceParent = traceparents[i]
			ev = &traced
		}
		dst = ev.AppendJSON(dst)
		// JSON data is copied as it came (a pretty-printed Kafka value): its
		// newlines would end the line early. In valid JSON a raw CR or LF can
		// only be whitespace between tokens (strings must escape them), so a
		// space is an exact substitute. CR counts too: Python's text streams
		// end lines at a lone CR.
		oneLine(dst[start:], '\n')
		oneLine(dst[start:], '\r')
	}
	return append(dst, "]}\n"...)
}

func oneLine(b []byte, c byte) {
	for {
		i := bytes.IndexByte(b, c)
		if i < 0 {
			return
		}
		b[i] = ' '
		b = b[i+1:]
	}
}

// resultLine is one decoded stdout line. Its slices point into the line it
// was decoded from and are valid until that buffer is reused.
type resultLine struct {
	batch    []byte // contents of the batch id string, escapes unresolved
	batchEsc bool
	results  []rawResult
}

// rawResult is one element of "results".
type rawResult struct {
	id      []byte // contents of the id string, escapes unresolved
	idEsc   bool
	ok      bool
	hasOK   bool
	output  []byte // the raw JSON value of "output"; nil when absent
	errMsg  []byte // the raw JSON value of "error"; nil when absent or null
	errType []byte // the raw JSON string of "error_type"; nil when absent
}

// maxDepth is encoding/json's nesting limit, kept so that a line this
// decoder accepts is one encoding/json accepts.
const maxDepth = 10000

// decode parses line. It returns isResult false, and no error, for a line
// that is not a result line: not a JSON object, or an object without a
// "batch" key (a stray print). A line that has a "batch" key but breaks the
// protocol, or is malformed JSON mentioning "batch", is an error wrapping
// ErrProtocol.
//
// The decoder validates the whole line as strictly as encoding/json (outputs
// are passed on as JSON, so they must be valid) in one pass and without
// allocating, where encoding/json would scan the line twice and allocate
// every output.
func (l *resultLine) decode(line []byte) (isResult bool, err error) {
	l.batch, l.batchEsc = nil, false
	l.results = l.results[:0]
	s := scanner{b: line}
	s.ws()
	if s.peek() != '{' {
		return false, nil
	}
	hasBatch, semErr, synErr := l.parse(&s)
	switch {
	case synErr != nil:
		if !bytes.Contains(line, []byte(`"batch"`)) {
			return false, nil
		}
		return false, fmt.Errorf("%w: malformed result line: %v", ErrProtocol, synErr)
	case !hasBatch:
		return false, nil
	case semErr != nil:
		return false, fmt.Errorf("%w: %v", ErrProtocol, semErr)
	}
	return true, nil
}

// parse reads the top-level object. A semantic error (a field of the wrong
// type) does not stop it: whether the line claims to be a result line at
// all is only known once every key was seen.
func (l *resultLine) parse(s *scanner) (hasBatch bool, semErr, synErr error) {
	// Errors per key: with a key given twice the last one counts, as in
	// encoding/json.
	var batchErr, resultsErr error
	sem := func(err error) {
		if resultsErr == nil {
			resultsErr = err
		}
	}
	hasResults := false
	s.pos++ // '{'
	s.ws()
	if !s.eat('}') {
		for {
			s.ws()
			key, err := s.key()
			if err != nil {
				return false, nil, err
			}
			switch key {
			case "batch":
				hasBatch = true
				batchErr = nil
				if s.peek() == '"' {
					start, end, esc, err := s.str()
					if err != nil {
						return false, nil, err
					}
					l.batch, l.batchEsc = s.b[start:end], esc
				} else {
					if _, _, err := s.value(1); err != nil {
						return false, nil, err
					}
					batchErr = errors.New(`"batch" must be a string`)
				}
			case "results":
				hasResults = true
				resultsErr = nil
				l.results = l.results[:0]
				if s.peek() != '[' {
					if _, _, err := s.value(1); err != nil {
						return false, nil, err
					}
					sem(errors.New(`"results" must be an array`))
					break
				}
				if err := l.parseResults(s, sem); err != nil {
					return false, nil, err
				}
			default:
				if _, _, err := s.value(1); err != nil {
					return false, nil, err
				}
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			if s.eat('}') {
				break
			}
			return false, nil, s.errorf("expected , or } after object member")
		}
	}
	s.ws()
	if s.pos < len(s.b) {
		return false, nil, s.errorf("data after the top-level object")
	}
	switch {
	case batchErr != nil:
		semErr = batchErr
	case !hasResults:
		semErr = errors.New(`no "results" array`)
	default:
		semErr = resultsErr
	}
	return hasBatch, semErr, nil
}

func (l *resultLine) parseResults(s *scanner, sem func(error)) error {
	s.pos++ // '['
	s.ws()
	if s.eat(']') {
		return nil
	}
	for {
		s.ws()
		i := len(l.results)
		if s.peek() != '{' {
			if _, _, err := s.value(2); err != nil {
				return err
			}
			sem(fmt.Errorf("result %d is not an object", i))
		} else {
			l.results = append(l.results, rawResult{})
			r := &l.results[i]
			if err := parseResult(s, r, i, sem); err != nil {
				return err
			}
		}
		s.ws()
		if s.eat(',') {
			continue
		}
		if s.eat(']') {
			return nil
		}
		return s.errorf("expected , or ] after array element")
	}
}

func parseResult(s *scanner, r *rawResult, i int, sem func(error)) error {
	const depth = 3 // inside the top-level object, "results" and this result
	s.pos++         // '{'
	s.ws()
	var idErr, okErr error
	hasID := false
	if !s.eat('}') {
		for {
			s.ws()
			key, err := s.key()
			if err != nil {
				return err
			}
			c := s.peek()
			switch {
			case key == "id" && c == '"':
				start, end, esc, err := s.str()
				if err != nil {
					return err
				}
				r.id, r.idEsc, hasID, idErr = s.b[start:end], esc, true, nil
			case key == "ok" && (c == 't' || c == 'f'):
				start, end, err := s.value(depth)
				if err != nil {
					return err
				}
				r.ok, r.hasOK, okErr = end-start == 4, true, nil // "true" or "false"
			case key == "output":
				start, end, err := s.value(depth)
				if err != nil {
					return err
				}
				r.output = s.b[start:end]
			case key == "error" || key == "error_type":
				start, end, err := s.value(depth)
				if err != nil {
					return err
				}
				v := s.b[start:end]
				if string(v) == "null" {
					v = nil
				}
				if key == "error" {
					r.errMsg = v
				} else if c == '"' {
					r.errType = v
				}
			default:
				if _, _, err := s.value(depth); err != nil {
					return err
				}
				switch key {
				case "id":
					hasID, idErr = true, fmt.Errorf(`result %d: "id" must be a string`, i)
				case "ok":
					r.ok, r.hasOK, okErr = false, false, nil
					if c != 'n' {
						okErr = fmt.Errorf(`result %d: "ok" must be true or false`, i)
					}
				}
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			if s.eat('}') {
				break
			}
			return s.errorf("expected , or } after object member")
		}
	}
	switch {
	case !hasID:
		sem(fmt.Errorf(`result %d has no "id"`, i))
	case idErr != nil:
		sem(idErr)
	case okErr != nil:
		sem(okErr)
	}
	return nil
}

// scanner walks JSON text.
type scanner struct {
	b   []byte
	pos int
}

func (s *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("offset %d: "+format, append([]any{s.pos}, args...)...)
}

func (s *scanner) ws() {
	for s.pos < len(s.b) {
		switch s.b[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.pos < len(s.b) {
		return s.b[s.pos]
	}
	return 0
}

func (s *scanner) eat(c byte) bool {
	if s.pos < len(s.b) && s.b[s.pos] == c {
		s.pos++
		return true
	}
	return false
}

// key reads an object key and the colon after it, and the whitespace
// before the value. A key with escapes is resolved (rare, so allocating).
func (s *scanner) key() (string, error) {
	start, end, esc, err := s.str()
	if err != nil {
		return "", err
	}
	var key string
	if esc {
		key = unquote(s.b[start-1 : end+1])
	} else {
		// The compiler compares without allocating when the conversion is
		// only compared, but a returned string escapes; the known keys are
		// interned here so the hot path does not allocate either.
		switch k := s.b[start:end]; string(k) {
		case "batch":
			key = "batch"
		case "results":
			key = "results"
		case "id":
			key = "id"
		case "ok":
			key = "ok"
		case "output":
			key = "output"
		case "error":
			key = "error"
		case "error_type":
			key = "error_type"
		default:
			key = ""
		}
	}
	s.ws()
	if !s.eat(':') {
		return "", s.errorf("expected : after object key")
	}
	s.ws()
	return key, nil
}

// str reads a string and returns the offsets of its contents.
func (s *scanner) str() (start, end int, esc bool, err error) {
	if !s.eat('"') {
		return 0, 0, false, s.errorf("expected a string")
	}
	start = s.pos
	b := s.b
	for i := s.pos; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			s.pos = i + 1
			return start, i, esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(b) {
				s.pos = i
				return 0, 0, false, s.errorf("unterminated string")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					s.pos = i
					return 0, 0, false, s.errorf(`invalid \u escape`)
				}
				i += 6
			default:
				s.pos = i
				return 0, 0, false, s.errorf("invalid escape in string")
			}
		case c < 0x20:
			s.pos = i
			return 0, 0, false, s.errorf("control character in string")
		default:
			i++
		}
	}
	s.pos = len(b)
	return 0, 0, false, s.errorf("unterminated string")
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// value validates and skips one JSON value at nesting depth depth (the
// number of arrays and objects around it), returning its offsets.
func (s *scanner) value(depth int) (start, end int, err error) {
	start = s.pos
	switch c := s.peek(); {
	case c == '"':
		if _, _, _, err := s.str(); err != nil {
			return 0, 0, err
		}
	case c == '{':
		if depth+1 > maxDepth {
			return 0, 0, s.errorf("exceeded max depth")
		}
		s.pos++
		s.ws()
		if !s.eat('}') {
			for {
				s.ws()
				if _, _, _, err := s.str(); err != nil {
					return 0, 0, err
				}
				s.ws()
				if !s.eat(':') {
					return 0, 0, s.errorf("expected : after object key")
				}
				s.ws()
				if _, _, err := s.value(depth + 1); err != nil {
					return 0, 0, err
				}
				s.ws()
				if s.eat(',') {
					continue
				}
				if s.eat('}') {
					break
				}
				return 0, 0, s.errorf("expected , or } after object member")
			}
		}
	case c == '[':
		if depth+1 > maxDepth {
			return 0, 0, s.errorf("exceeded max depth")
		}
		s.pos++
		s.ws()
		if !s.eat(']') {
			for {
				s.ws()
				if _, _, err := s.value(depth + 1); err != nil {
					return 0, 0, err
				}
				s.ws()
				if s.eat(',') {
					continue
				}
				if s.eat(']') {
					break
				}
				return 0, 0, s.errorf("expected , or ] after array element")
			}
		}
	case c == 't':
		if err := s.literal("true"); err != nil {
			return 0, 0, err
		}
	case c == 'f':
		if err := s.literal("false"); err != nil {
			return 0, 0, err
		}
	case c == 'n':
		if err := s.literal("null"); err != nil {
			return 0, 0, err
		}
	case c == '-' || '0' <= c && c <= '9':
		if err := s.number(); err != nil {
			return 0, 0, err
		}
	default:
		return 0, 0, s.errorf("expected a value")
	}
	return start, s.pos, nil
}

func (s *scanner) literal(lit string) error {
	if !bytes.HasPrefix(s.b[s.pos:], []byte(lit)) {
		return s.errorf("invalid literal")
	}
	s.pos += len(lit)
	return nil
}

func (s *scanner) number() error {
	s.eat('-')
	switch c := s.peek(); {
	case c == '0':
		s.pos++
	case '1' <= c && c <= '9':
		s.digits()
	default:
		return s.errorf("invalid number")
	}
	if s.eat('.') {
		if s.digits() == 0 {
			return s.errorf("invalid number: no digits after the decimal point")
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.pos++
		if c := s.peek(); c == '+' || c == '-' {
			s.pos++
		}
		if s.digits() == 0 {
			return s.errorf("invalid number: no digits in the exponent")
		}
	}
	return nil
}

func (s *scanner) digits() int {
	start := s.pos
	for s.pos < len(s.b) && '0' <= s.b[s.pos] && s.b[s.pos] <= '9' {
		s.pos++
	}
	return s.pos - start
}

// unquote resolves a validated JSON string literal, quotes included.
func unquote(quoted []byte) string {
	var s string
	if err := json.Unmarshal(quoted, &s); err != nil {
		panic("BUG: unquote of an unvalidated string: " + err.Error())
	}
	return s
}

// idEqual reports whether a result's id is id.
func idEqual(raw []byte, esc bool, id string) bool {
	if !esc {
		return string(raw) == id
	}
	return unquoteContents(raw) == id
}

// unquoteContents resolves the contents of a validated JSON string.
func unquoteContents(raw []byte) string {
	q := make([]byte, 0, len(raw)+2)
	q = append(q, '"')
	q = append(q, raw...)
	return unquote(append(q, '"'))
}

// fill sets b.Results from the decoded line, matching results to events by
// id: the k-th result for an id goes to the k-th event with that id, so
// duplicate ids in a batch still pair up. It reuses match and filled across
// calls and returns them, with the number of results that matched no event
// (the caller warns about them). Outputs are copied into one allocation.
func (l *resultLine) fill(b *plugins.Batch, match []int32, filled []bool) ([]int32, []bool, int) {
	n := len(b.Events)
	filled = append(filled[:0], make([]bool, n)...)
	match = match[:0]
	unmatched := 0
	total := 0
	for j := range l.results {
		r := &l.results[j]
		k := int32(-1)
		if j < n && !filled[j] && idEqual(r.id, r.idEsc, b.Events[j].ID) {
			k = int32(j) // results in event order: the common case
		} else {
			for i, ev := range b.Events {
				if !filled[i] && idEqual(r.id, r.idEsc, ev.ID) {
					k = int32(i)
					break
				}
			}
		}
		match = append(match, k)
		if k < 0 {
			unmatched++
			continue
		}
		filled[k] = true
		if r.succeeded() && string(r.output) != "null" {
			total += len(r.output)
		}
	}
	var outputs []byte
	if total > 0 {
		outputs = make([]byte, 0, total)
	}
	for j, k := range match {
		if k < 0 {
			continue
		}
		r := &l.results[j]
		if !r.succeeded() {
			b.Results[k] = plugins.Result{Err: r.functionError()}
			continue
		}
		res := plugins.Result{}
		if len(r.output) > 0 && string(r.output) != "null" {
			start := len(outputs)
			outputs = append(outputs, r.output...)
			res.Output = outputs[start:len(outputs):len(outputs)]
		}
		b.Results[k] = res
	}
	for i, ok := range filled {
		if !ok {
			b.Results[i] = plugins.Result{Err: fmt.Errorf("%w %q of batch %q: the process answered %d results for %d events",
				ErrMissingResult, b.Events[i].ID, b.ID, len(l.results), n)}
		}
	}
	return match, filled, unmatched
}

// succeeded reports whether the result is a success: "ok" when given, else
// the absence of "error".
func (r *rawResult) succeeded() bool {
	if r.hasOK {
		return r.ok
	}
	return r.errMsg == nil
}

func (r *rawResult) functionError() *plugins.FunctionError {
	fe := &plugins.FunctionError{}
	switch {
	case len(r.errMsg) > 0 && r.errMsg[0] == '"':
		fe.Message = unquote(r.errMsg)
	case len(r.errMsg) > 0:
		// Not a string (an object, say): its JSON text is the best message.
		fe.Message = string(r.errMsg)
	}
	if fe.Message == "" {
		fe.Message = "the function reported a failure without an error message"
	}
	if len(r.errType) > 0 {
		fe.Type = unquote(r.errType)
	}
	return fe
}
