package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sluicehq/sluice/cmd/sluice/internal/config"
	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/streams/formats"
)

// cmdInvoke runs one function once, without a server, like `sam local
// invoke`: the event is normalized as the named source would, the result
// goes to stdout, logs to stderr, exit 1 on a function error.
func cmdInvoke(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sluice invoke", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file (default: the embedded dev default)")
	eventFile := fs.String("e", "", "event file, or - for stdin (default: no payload)")
	as := fs.String("as", "", "normalize the event as this source would: http, storage, cdc, schedule or kafka")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return usageErr("%v", err)
	}
	if len(pos) != 1 {
		return usageErr("usage: sluice invoke [-c FILE] FUNCTION [-e EVENT.json|-] [--as http|storage|cdc|schedule|kafka]")
	}
	name := pos[0]
	cfg, err := loadConfig(*path)
	if err != nil {
		return err
	}
	fn := cfg.Function(name)
	if fn == nil {
		var names []string
		for _, f := range cfg.Functions {
			names = append(names, f.Name)
		}
		return usageErr("invoke: no function %q in %s (have %s)", name, cfg.Path, strings.Join(names, ", "))
	}
	var payload []byte
	switch *eventFile {
	case "":
	case "-":
		payload, err = io.ReadAll(stdin)
	default:
		payload, err = os.ReadFile(*eventFile)
	}
	if err != nil {
		return usageErr("invoke: %v", err)
	}
	events, err := invokeEvents(cfg, fn, *as, payload)
	if err != nil {
		return usageErr("invoke: %v", err)
	}
	if len(events) == 0 {
		fmt.Fprintf(stderr, "sluice: the %s source would skip this payload: nothing to invoke\n", *as)
		return nil
	}

	log := newLogger(cfg.Log, stderr, 0)
	f, err := buildFunction(cfg, fn, functionDeps{log: &log})
	if err != nil {
		return err
	}
	ctx := context.Background()
	if err := f.inv.Start(ctx); err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		_ = closeFunctions(cctx, []*function{f})
	}()

	outcomes := make([]invoker.Outcome, len(events))
	done := make(chan struct{}, len(events))
	items := make([]*invoker.Item, len(events))
	trigger := *as
	if trigger == "" {
		trigger = "invoke"
	}
	for i, ev := range events {
		items[i] = &invoker.Item{Event: ev, Trigger: trigger, Attempts: 1, Done: func(_ *invoker.Item, o invoker.Outcome) {
			outcomes[i] = o
			done <- struct{}{}
		}}
	}
	if err := f.inv.SubmitGroup(items); err != nil {
		return err
	}
	for range events {
		<-done
	}
	failed := false
	for _, o := range outcomes {
		if o.Err != nil {
			failed = true
			b, _ := json.Marshal(errorJSON(o.Err))
			fmt.Fprintf(stdout, "%s\n", b)
			continue
		}
		out := o.Output
		if out == nil {
			out = []byte("null")
		}
		fmt.Fprintf(stdout, "%s\n", out)
	}
	if failed {
		return &exitError{code: 1, err: errors.New("")}
	}
	return nil
}

// errorJSON is a failed invocation as Lambda reports it.
func errorJSON(err error) map[string]any {
	m := map[string]any{"errorMessage": err.Error(), "errorType": "Error"}
	var fe *plugins.FunctionError
	var te *invoker.TimeoutError
	switch {
	case errors.As(err, &fe):
		m["errorMessage"] = fe.Message
		if fe.Type != "" {
			m["errorType"] = fe.Type
		}
		if len(fe.Trace) > 0 {
			m["stackTrace"] = fe.Trace
		}
	case errors.As(err, &te):
		m["errorType"] = "Sandbox.Timedout"
	}
	return m
}

// invokeEvents builds the envelopes of a local invocation.
func invokeEvents(cfg *config.File, fn *config.Function, as string, payload []byte) ([]*plugins.Event, error) {
	switch as {
	case "":
		ev := &plugins.Event{ID: plugins.NewID(), Source: "sluice://invoke/" + fn.Name, Type: plugins.TypeInvoke, Time: time.Now().UTC()}
		if len(payload) > 0 {
			ev.Data = payload
			ev.DataContentType = "application/json"
			if !json.Valid(payload) {
				ev.DataContentType = "application/octet-stream"
			}
		}
		return []*plugins.Event{ev}, nil
	case "http":
		return httpInvokeEvent(fn, payload)
	case "kafka":
		return formats.Normalize(as, payload, formats.NormalizeOptions{Kafka: kafkaDecoder(cfg, fn)})
	case "storage", "cdc", "schedule":
		return formats.Normalize(as, payload, formats.NormalizeOptions{Schedule: fn.Name})
	default:
		return nil, fmt.Errorf("--as %q: want http, storage, cdc, schedule or kafka", as)
	}
}

// httpInvokeEvent wraps an API Gateway HTTP API (payload 2.0) request, such
// as `sam local generate-event apigateway http-api-proxy` writes, as the
// gateway would have.
func httpInvokeEvent(fn *config.Function, payload []byte) ([]*plugins.Event, error) {
	var req struct {
		RawPath        string `json:"rawPath"`
		RequestContext struct {
			RequestID string `json:"requestId"`
		} `json:"requestContext"`
	}
	if len(payload) == 0 {
		payload = []byte(`{"version":"2.0","routeKey":"$default","rawPath":"/","rawQueryString":"","headers":{},"requestContext":{"http":{"method":"GET","path":"/"}},"isBase64Encoded":false}`)
	}
	if err := json.Unmarshal(payload, &req); err != nil {
		return nil, fmt.Errorf("--as http wants an API Gateway HTTP API request (payload format 2.0) as JSON: %w", err)
	}
	id := req.RequestContext.RequestID
	if id == "" {
		id = plugins.NewID()
	}
	return []*plugins.Event{{
		ID: id, Source: "/sluice/http/" + fn.Name, Type: plugins.TypeHTTPRequest, Time: time.Now().UTC(),
		Subject: req.RawPath, DataContentType: "application/json", Data: payload,
	}}, nil
}
