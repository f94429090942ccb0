// Command procecho is a Sluice function for runtime: process, written in Go
// with the standard library only. It answers every event with the event
// itself, its CloudEvents envelope, as the builtin echo function does.
//
// It shows the protocol (see ../README.md): read one JSON line per batch on
// stdin, write one JSON line of results per batch on stdout, log to stderr,
// exit at end of input. It keeps its buffers from batch to batch and writes
// each answer with one write, so it costs the gateway little more than the
// pipe: it is the function the benchmarks run.
//
//	functions:
//	  procecho: {runtime: process, command: ["bin/functions/procecho"], instances: 2}
//
// With -v it logs one line per batch to stderr.
package main

import (
	"bufio"
	"encoding/json"
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

// request is one batch line. Its slices are reused from batch to batch:
// encoding/json appends into the RawMessages' existing capacity.
type request struct {
	Batch  json.RawMessage `json:"batch"` // kept as JSON: it is only echoed back
	Events []event         `json:"events"`
}

// event keeps an envelope as it came, and its id.
type event struct {
	raw json.RawMessage
	id  struct {
		ID json.RawMessage `json:"id"`
	}
}

func (e *event) UnmarshalJSON(b []byte) error {
	e.raw = append(e.raw[:0], b...)
	e.id.ID = e.id.ID[:0]
	return json.Unmarshal(b, &e.id)
}

// serve answers batches from in on out until in ends.
func serve(in io.Reader, out, logs io.Writer, verbose bool) error {
	r := bufio.NewReaderSize(in, 1<<20)
	var (
		line []byte
		req  request
		resp []byte
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
		if len(line) == 0 {
			continue
		}
		req.Batch = req.Batch[:0]
		if err := json.Unmarshal(line, &req); err != nil {
			return fmt.Errorf("bad batch line: %w", err)
		}
		resp = append(resp[:0], `{"batch":`...)
		resp = append(resp, req.Batch...)
		resp = append(resp, `,"results":[`...)
		for i := range req.Events {
			ev := &req.Events[i]
			if i > 0 {
				resp = append(resp, ',')
			}
			resp = append(resp, `{"id":`...)
			if len(ev.id.ID) == 0 {
				resp = append(resp, "null"...) // keeps the line JSON; the gateway reports it
			}
			resp = append(resp, ev.id.ID...)
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
			fmt.Fprintf(logs, "procecho: batch %s: %d events\n", req.Batch, len(req.Events))
		}
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
