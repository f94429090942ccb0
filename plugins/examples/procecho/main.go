// Command procecho is a Sluice function for runtime: process, written in Go
// with the standard library only. It answers every event with the event
// itself, its CloudEvents envelope, as the builtin echo function does.
//
// It shows the protocol (see ../README.md): read one JSON line per batch on
// stdin, write one JSON line of results per batch on stdout, log to stderr,
// exit at end of input.
//
// It is also the function the benchmarks run, so it does the least work the
// protocol allows: echoing needs only each event's raw JSON and its "id", so
// rather than decoding the line with encoding/json (five passes over every
// event, counting validation) it walks it once, trusting the gateway to send
// valid JSON. It keeps its buffers from batch to batch and writes each
// answer with one write. A function that needs the envelope's fields would
// decode each event with encoding/json (or plugins.Event's UnmarshalJSON).
//
//	functions:
//	  procecho: {runtime: process, command: ["bin/functions/procecho"], instances: 2}
//
// With -v it logs one line per batch to stderr.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	verbose := flag.Bool("v", false, "log one line per batch to stderr")
	flag.Parse()
	if err := serve(os.Stdin, os.Stdout, os.Stderr, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "procecho:", err)
		os.Exit(1)
	}
}

// serve answers batches from in on out until in ends.
func serve(in io.Reader, out, logs io.Writer, verbose bool) error {
	r := bufio.NewReaderSize(in, 1<<20)
	var (
		line   []byte
		events []event
		resp   []byte
	)
	for {
		var err error
		line, err = readLine(r, line[:0])
		if err == io.EOF {
			return nil // the gateway closed stdin: time to go
		}
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var batchID []byte
		batchID, events, err = parseBatch(line, events[:0])
		if err != nil {
			return fmt.Errorf("bad batch line: %w", err)
		}
		resp = append(resp[:0], `{"batch":`...)
		resp = append(resp, batchID...)
		resp = append(resp, `,"results":[`...)
		for i, ev := range events {
			if i > 0 {
				resp = append(resp, ',')
			}
			resp = append(resp, `{"id":`...)
			resp = append(resp, ev.id...)
			resp = append(resp, `,"ok":true,"output":`...)
			resp = append(resp, ev.raw...)
			resp = append(resp, '}')
		}
		resp = append(resp, "]}\n"...)
		// One write per answer: the gateway reads a whole line at once.
		if _, err := out.Write(resp); err != nil {
			return err
		}
		if verbose {
			fmt.Fprintf(logs, "procecho: batch %s: %d events\n", batchID, len(events))
		}
	}
}

// event is one envelope of a batch line: its JSON text and its "id" as JSON
// (quotes included), both pointing into the line.
type event struct {
	raw, id []byte
}

// parseBatch finds the batch id (as JSON) and the events of a batch line,
// wherever the keys are.
func parseBatch(line []byte, events []event) (batchID []byte, _ []event, err error) {
	w := walker{b: line}
	err = w.object(func(key []byte) error {
		switch string(key) {
		case "batch":
			batchID, err = w.value()
			return err
		case "events":
			return w.array(func() error {
				start := w.pos
				var id []byte
				err := w.object(func(key []byte) error {
					v, err := w.value()
					if string(key) == "id" {
						id = v
					}
					return err
				})
				if id == nil {
					id = []byte("null") // keeps the answer JSON; the gateway reports the missing id
				}
				events = append(events, event{raw: line[start:w.pos], id: id})
				return err
			})
		default:
			_, err := w.value()
			return err
		}
	})
	if err == nil && batchID == nil {
		err = errors.New(`no "batch"`)
	}
	return batchID, events, err
}

// walker steps through JSON text it trusts to be valid: it tracks strings
// and nesting, and checks no more than it needs to find its way.
type walker struct {
	b   []byte
	pos int
}

var errSyntax = errors.New("unexpected JSON")

func (w *walker) ws() {
	for w.pos < len(w.b) && (w.b[w.pos] == ' ' || w.b[w.pos] == '\t' || w.b[w.pos] == '\n' || w.b[w.pos] == '\r') {
		w.pos++
	}
}

// expect skips whitespace and c.
func (w *walker) expect(c byte) bool {
	w.ws()
	if w.pos < len(w.b) && w.b[w.pos] == c {
		w.pos++
		return true
	}
	return false
}

// object walks an object, calling member with each key (its contents,
// escapes unresolved) with the walker at the key's value, which member
// must consume.
func (w *walker) object(member func(key []byte) error) error {
	if !w.expect('{') {
		return errSyntax
	}
	if w.expect('}') {
		return nil
	}
	for {
		w.ws()
		key, err := w.str()
		if err != nil {
			return err
		}
		if !w.expect(':') {
			return errSyntax
		}
		w.ws()
		if err := member(key[1 : len(key)-1]); err != nil {
			return err
		}
		if w.expect(',') {
			continue
		}
		if w.expect('}') {
			return nil
		}
		return errSyntax
	}
}

// array walks an array, calling elem with the walker at each element,
// which elem must consume.
func (w *walker) array(elem func() error) error {
	if !w.expect('[') {
		return errSyntax
	}
	if w.expect(']') {
		return nil
	}
	for {
		w.ws()
		if err := elem(); err != nil {
			return err
		}
		if w.expect(',') {
			continue
		}
		if w.expect(']') {
			return nil
		}
		return errSyntax
	}
}

// str returns the string at the walker, quotes included.
func (w *walker) str() ([]byte, error) {
	start := w.pos
	if w.pos >= len(w.b) || w.b[w.pos] != '"' {
		return nil, errSyntax
	}
	w.pos++
	for {
		// The next quote or backslash, found with the fast IndexByte.
		i := bytes.IndexByte(w.b[w.pos:], '"')
		if i < 0 {
			return nil, errSyntax
		}
		end := w.pos + i
		// A quote preceded by an odd number of backslashes is escaped.
		n := 0
		for j := end - 1; j >= w.pos && w.b[j] == '\\'; j-- {
			n++
		}
		w.pos = end + 1
		if n%2 == 0 {
			return w.b[start:w.pos], nil
		}
	}
}

// value returns the value at the walker.
func (w *walker) value() ([]byte, error) {
	start := w.pos
	if w.pos >= len(w.b) {
		return nil, errSyntax
	}
	switch w.b[w.pos] {
	case '"':
		return w.str()
	case '{', '[':
		depth := 0
		for w.pos < len(w.b) {
			switch w.b[w.pos] {
			case '"':
				if _, err := w.str(); err != nil {
					return nil, err
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			w.pos++
			if depth == 0 {
				return w.b[start:w.pos], nil
			}
		}
		return nil, errSyntax
	default: // a number, true, false or null
		for w.pos < len(w.b) {
			switch w.b[w.pos] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return w.b[start:w.pos], nil
			}
			w.pos++
		}
		return w.b[start:w.pos], nil
	}
}

// readLine appends the next line of r to buf, without its newline, however
// long it is.
func readLine(r *bufio.Reader, buf []byte) ([]byte, error) {
	for {
		chunk, err := r.ReadSlice('\n')
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return buf[:len(buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(buf) > 0:
			return buf, nil // a last line without a newline
		default:
			return buf, err
		}
	}
}
