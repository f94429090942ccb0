package runtimes_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testtool"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/plugins/lambda"
	"github.com/sluicehq/sluice/plugins/runtimes"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, kind, version string
		ok                  bool
	}{
		{"python", runtimes.Python, "", true},
		{"python3", runtimes.Python, "", true},
		{"python3.12", runtimes.Python, "3.12", true},
		{"python3.9", runtimes.Python, "3.9", true},
		{"nodejs", runtimes.Node, "", true},
		{"node", runtimes.Node, "", true},
		{"nodejs20.x", runtimes.Node, "20", true},
		{"nodejs18.x", runtimes.Node, "18", true},
		{"python2.7", "", "", false},
		{"python3.", "", "", false},
		{"python3.x", "", "", false},
		{"nodejs20", "", "", false},
		{"nodejs.x", "", "", false},
		{"java", runtimes.Java, "", true},
		{"java21", runtimes.Java, "21", true},
		{"java8.al2", runtimes.Java, "8.al2", true},
		{"java8.al", "", "", false},
		{"javax", "", "", false},
		{"java.al2", "", "", false},
		{"", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, version, ok := runtimes.Parse(tt.name)
			if kind != tt.kind || version != tt.version || ok != tt.ok {
				t.Errorf("Parse(%q) = %q, %q, %v; want %q, %q, %v", tt.name, kind, version, ok, tt.kind, tt.version, tt.ok)
			}
		})
	}
}

func TestCheckHandler(t *testing.T) {
	tests := []struct {
		handler, err string
	}{
		{"lambda_function.lambda_handler", ""},
		{"index.handler", ""},
		{"src/app.handler", ""},
		{"src/app.obj.method", ""},
		{"", "must not be empty"},
		{"index", "not FILE.FUNCTION"},
		{"index.", "not FILE.FUNCTION"},
		{".handler", "not FILE.FUNCTION"},
		{"src/.handler", "not FILE.FUNCTION"},
		{"/abs/index.handler", "not absolute"},
		{"../up/index.handler", "inside the code folder"},
		{"a/../../index.handler", "inside the code folder"},
	}
	for _, tt := range tests {
		t.Run(tt.handler, func(t *testing.T) {
			err := runtimes.CheckHandler(tt.handler)
			if (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
				t.Errorf("CheckHandler(%q) = %v, want %q", tt.handler, err, tt.err)
			}
		})
	}
}

func interpreter(t testing.TB, kind string) string {
	t.Helper()
	p, err := runtimes.Interpreter(kind, "", "")
	if err != nil {
		if testtool.InCI() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return p
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestCheck(t *testing.T) {
	py, node := interpreter(t, runtimes.Python), interpreter(t, runtimes.Node)
	code := writeFiles(t, map[string]string{
		"ok.py":           "import json\n\ndef handler(event, context):\n    return event\n",
		"alias.py":        "from ok import handler as h\n",
		"broken.py":       "def handler(event, context)\n    return 1\n",
		"src/app.py":      "async def handler(e, c): pass\n",
		"cond.py":         "try:\n    def handler(e, c): pass\nexcept Exception:\n    pass\n",
		"pkg/__init__.py": "handler = lambda e, c: e\n",
		"index.mjs":       "export const handler = async () => 1;\n",
		"bad.js":          "exports.handler = (;\n",
		"lib/cjs.cjs":     "exports.handler = async () => 1;\n",
	})
	tests := []struct {
		kind, handler, err string
	}{
		{runtimes.Python, "ok.handler", ""},
		{runtimes.Python, "alias.h", ""},
		{runtimes.Python, "src/app.handler", ""},
		{runtimes.Python, "cond.handler", ""},
		{runtimes.Python, "pkg.handler", ""},
		{runtimes.Python, "ok.lambda_handler", "Runtime.HandlerNotFound: Handler 'lambda_handler' missing on module 'ok'"},
		{runtimes.Python, "broken.handler", "Runtime.UserCodeSyntaxError: Syntax error in module 'broken'"},
		{runtimes.Python, "missing.handler", "missing.py"},
		{runtimes.Node, "index.handler", ""},
		{runtimes.Node, "lib/cjs.handler", ""},
		{runtimes.Node, "bad.handler", "Runtime.UserCodeSyntaxError"},
		{runtimes.Node, "nope.handler", "nope.js"},
	}
	for _, tt := range tests {
		t.Run(tt.kind+"/"+tt.handler, func(t *testing.T) {
			interp := py
			if tt.kind == runtimes.Node {
				interp = node
			}
			err := runtimes.Check(context.Background(), tt.kind, interp, code, tt.handler)
			if (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Check = %v, want %q", err, tt.err)
			}
		})
	}
}

type logs struct {
	mu    sync.Mutex
	lines []string
}

func (l *logs) log(req string, line []byte) {
	l.mu.Lock()
	l.lines = append(l.lines, req+" "+string(line))
	l.mu.Unlock()
}

func (l *logs) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// startPool runs handler from code on a managed runtime of kind, its
// Runtime API also on a Unix socket, as sluice serve runs it.
func startPool(t *testing.T, kind, code, handler string, l *logs) (*lambda.Pool, error) {
	return startPoolTB(t, kind, code, handler, l, true)
}

func startPoolB(b *testing.B, kind, code, handler string) (*lambda.Pool, error) {
	return startPoolTB(b, kind, code, handler, &logs{}, true)
}

func startPoolTB(t testing.TB, kind, code, handler string, l *logs, unix bool) (*lambda.Pool, error) {
	t.Helper()
	interp := interpreter(t, kind)
	c := install(t)
	return start(t, lambda.Config{
		Command: c.Command(kind, interp), Dir: code, Handler: handler, Timeout: 5 * time.Second, UnixSocket: unix,
	}, l)
}

// install writes the clients into a folder removed when t ends.
func install(t testing.TB) *runtimes.Clients {
	t.Helper()
	c, err := runtimes.Install()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// start starts a pool of cfg, closed when t ends; the error is Start's.
func start(t testing.TB, cfg lambda.Config, l *logs) (*lambda.Pool, error) {
	t.Helper()
	p, err := lambda.New("fn", cfg, l.log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = p.Start(ctx)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return p, err
}

func invoke(t *testing.T, p *lambda.Pool, payload string) plugins.Result {
	return invokeB(t, p, payload)
}

func invokeB(t testing.TB, p *lambda.Pool, payload string) plugins.Result {
	t.Helper()
	ev := &plugins.Event{ID: plugins.NewID(), Type: plugins.TypeInvoke, Source: "test", Data: []byte(payload)}
	b := &plugins.Batch{ID: plugins.NewID(), Function: "fn", Deadline: time.Now().Add(5 * time.Second),
		Events: []*plugins.Event{ev}, Results: make([]plugins.Result, 1)}
	ctx, cancel := context.WithDeadline(context.Background(), b.Deadline)
	defer cancel()
	if err := p.Invoke(ctx, b); err != nil {
		t.Fatal(err)
	}
	return b.Results[0]
}

// invokeTwice invokes p twice with the same event, checks that the
// handler's module (or class) state counted both (init ran once), and
// returns the second answer.
func invokeTwice(t *testing.T, p *lambda.Pool) map[string]any {
	t.Helper()
	var last map[string]any
	for i := 1; i <= 2; i++ {
		r := invoke(t, p, `{"name":"ann","wait_ms":20}`)
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		if err := json.Unmarshal(r.Output, &last); err != nil {
			t.Fatalf("%s: %v", r.Output, err)
		}
		if last["invocations"] != float64(i) {
			t.Errorf("invocation %d: module state says %v: init ran again?", i, last["invocations"])
		}
	}
	return last
}

// TestManaged runs each example on its managed runtime, its client on the
// Unix socket and on loopback TCP: the context as Lambda's, an error's
// shape, init once per instance, log lines.
func TestManaged(t *testing.T) {
	examples, _ := filepath.Abs("../examples")
	for _, tc := range []struct {
		kind, dir, handler, errType string
		unix                        bool
		fields                      []string
	}{
		{runtimes.Python, "python-hello", "lambda_function.lambda_handler", "ValueError", true,
			[]string{"request_id", "function_name", "function_version", "invoked_function_arn", "memory_limit_in_mb", "log_group_name", "log_stream_name"}},
		{runtimes.Python, "python-hello", "lambda_function.lambda_handler", "ValueError", false,
			[]string{"request_id", "function_name", "function_version", "invoked_function_arn", "memory_limit_in_mb", "log_group_name", "log_stream_name"}},
		{runtimes.Node, "node-hello", "index.handler", "TypeError", true,
			[]string{"awsRequestId", "functionName", "functionVersion", "invokedFunctionArn", "memoryLimitInMB", "logGroupName", "logStreamName"}},
		{runtimes.Node, "node-hello", "index.handler", "TypeError", false,
			[]string{"awsRequestId", "functionName", "functionVersion", "invokedFunctionArn", "memoryLimitInMB", "logGroupName", "logStreamName"}},
	} {
		name := tc.kind + "/tcp"
		if tc.unix {
			name = tc.kind + "/unix"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			l := &logs{}
			p, err := startPoolTB(t, tc.kind, filepath.Join(examples, tc.dir), tc.handler, l, tc.unix)
			if err != nil {
				t.Fatal(err)
			}
			last := invokeTwice(t, p)
			for _, f := range tc.fields {
				if v, _ := last[f].(string); v == "" {
					t.Errorf("context field %s empty: %s", f, last)
				}
			}
			rem, _ := last["remaining_ms"].([]any)
			if rem == nil {
				rem, _ = last["remainingMs"].([]any)
			}
			if len(rem) != 2 || !(rem[0].(float64) > rem[1].(float64)) || rem[0].(float64) > 5000 {
				t.Errorf("remaining time not decreasing: %v", rem)
			}
			r := invoke(t, p, `{"fail":true}`)
			var fe *plugins.FunctionError
			if !errors.As(r.Err, &fe) || fe.Type != tc.errType || fe.Message != "asked to fail" || len(fe.Trace) == 0 {
				t.Fatalf("error %#v", r.Err)
			}
			if !strings.Contains(strings.Join(fe.Trace, "\n"), "asked to fail") && !strings.Contains(strings.Join(fe.Trace, "\n"), filepath.Join(examples, tc.dir)) {
				t.Errorf("trace does not point at the function: %q", fe.Trace)
			}
			if strings.Contains(strings.Join(fe.Trace, "\n"), "bootstrap") {
				t.Errorf("trace shows the client: %q", fe.Trace)
			}
		})
	}
}

// TestManagedInitError: a handler that cannot be loaded fails Start at
// once with Lambda's error type, not a hang.
func TestManagedInitError(t *testing.T) {
	code := writeFiles(t, map[string]string{
		"nofn.py":   "x = 1\n",
		"raise.py":  "raise RuntimeError('boom at import')\n",
		"nofn.mjs":  "export const other = 1;\n",
		"throw.cjs": "throw new Error('boom at require');\n",
	})
	for _, tc := range []struct {
		kind, handler, typ, msg string
	}{
		{runtimes.Python, "nofn.handler", "Runtime.HandlerNotFound", "Handler 'handler' missing on module 'nofn'"},
		{runtimes.Python, "missing.handler", "Runtime.ImportModuleError", "Unable to import module 'missing'"},
		{runtimes.Python, "raise.handler", "Runtime.ImportModuleError", "boom at import"},
		{runtimes.Node, "nofn.handler", "Runtime.HandlerNotFound", "nofn.handler is undefined or not exported"},
		{runtimes.Node, "missing.handler", "Runtime.ImportModuleError", "Cannot find module 'missing'"},
		{runtimes.Node, "throw.handler", "Runtime.ImportModuleError", "boom at require"},
	} {
		t.Run(tc.kind+"/"+tc.handler, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			_, err := startPool(t, tc.kind, code, tc.handler, &logs{})
			var ie *lambda.InitError
			if !errors.As(err, &ie) || ie.Err.Type != tc.typ || !strings.Contains(ie.Err.Message, tc.msg) {
				t.Fatalf("Start = %v, want %s: %s", err, tc.typ, tc.msg)
			}
			if d := time.Since(start); d > 8*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

// TestNodeStyles: callback handlers, CommonJS, nested handler files and
// Lambda's console line format.
func TestNodeStyles(t *testing.T) {
	code := writeFiles(t, map[string]string{
		"cb.js":          "exports.handler = function (event, context, callback) { console.log('got', event); console.error('oops'); setTimeout(() => callback(null, {cb: event.n}), 5); };\n",
		"src/nested.mjs": "export async function handler(e) { console.warn('multi\\nline'); return {nested: e.n}; }\n",
		"sync.cjs":       "module.exports.handler = (e) => ({sync: e.n});\n",
	})
	for _, tc := range []struct{ handler, want string }{
		{"cb.handler", `{"cb":1}`},
		{"src/nested.handler", `{"nested":1}`},
		{"sync.handler", `{"sync":1}`},
	} {
		t.Run(tc.handler, func(t *testing.T) {
			t.Parallel()
			l := &logs{}
			p, err := startPool(t, runtimes.Node, code, tc.handler, l)
			if err != nil {
				t.Fatal(err)
			}
			r := invoke(t, p, `{"n":1}`)
			if r.Err != nil || string(r.Output) != tc.want {
				t.Fatalf("got %s, %v; want %s", r.Output, r.Err, tc.want)
			}
		})
	}
	l := &logs{}
	p, err := startPool(t, runtimes.Node, code, "cb.handler", l)
	if err != nil {
		t.Fatal(err)
	}
	ev := invoke(t, p, `{"n":2}`)
	_ = ev
	all := l.all()
	for _, want := range []string{"\tINFO\tgot { n: 2 }", "\tERROR\toops"} {
		if !strings.Contains(all, want) {
			t.Errorf("no %q in logs:\n%s", want, all)
		}
	}
	for _, line := range l.lines {
		req, rest, _ := strings.Cut(line, " ")
		if strings.Contains(rest, "\tINFO\tgot") {
			f := strings.Split(rest, "\t")
			if len(f) < 4 || f[1] != req || req == "" {
				t.Errorf("line %q not tagged with its request id %q", rest, req)
			}
			if _, err := time.Parse(time.RFC3339Nano, f[0]); err != nil {
				t.Errorf("line %q: timestamp: %v", rest, err)
			}
		}
	}
}

// TestPythonLogs: print lines as written, the logging module's in Lambda's
// format, a partial last line kept with its invocation, all tagged with
// the request id.
func TestPythonLogs(t *testing.T) {
	code := writeFiles(t, map[string]string{
		"app.py": "import logging\nlog = logging.getLogger()\nlog.setLevel(logging.INFO)\n\ndef handler(e, c):\n    print('plain', e['n'])\n    log.info('via logging')\n    print('no newline', end='')\n    return e\n",
	})
	l := &logs{}
	p, err := startPool(t, runtimes.Python, code, "app.handler", l)
	if err != nil {
		t.Fatal(err)
	}
	ev := &plugins.Event{ID: plugins.NewID(), Type: plugins.TypeInvoke, Source: "test", Data: []byte(`{"n":1}`)}
	b := &plugins.Batch{ID: plugins.NewID(), Function: "fn", Deadline: time.Now().Add(5 * time.Second),
		Events: []*plugins.Event{ev}, Results: make([]plugins.Result, 1)}
	ctx, cancel := context.WithDeadline(context.Background(), b.Deadline)
	defer cancel()
	if err := p.Invoke(ctx, b); err != nil || b.Results[0].Err != nil {
		t.Fatal(err, b.Results[0].Err)
	}
	all := l.all()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^` + ev.ID + ` plain 1$`),
		regexp.MustCompile(`(?m)^` + ev.ID + ` \[INFO\]\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t` + ev.ID + `\tvia logging$`),
		regexp.MustCompile(`(?m)^` + ev.ID + ` no newline$`),
	} {
		if !want.MatchString(all) {
			t.Errorf("no line matching %s in:\n%s", want, all)
		}
	}
}

// TestInterpreterBehindShim: a script in front of the interpreter (as a
// version manager's shim) resolves to the interpreter it runs; a real
// interpreter, and a script that does not answer, stay as they are.
func TestInterpreterBehindShim(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{runtimes.Python, runtimes.Node} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			real := interpreter(t, kind)
			dir := t.TempDir()
			shim := filepath.Join(dir, "shim")
			broken := filepath.Join(dir, "broken")
			if err := os.WriteFile(shim, []byte("#!/bin/sh\nexec "+real+" \"$@\"\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(broken, []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			for _, tt := range []struct{ override, want string }{
				{shim, real},
				{real, real},
				{broken, broken},
			} {
				got, err := runtimes.Interpreter(kind, "", tt.override)
				if err != nil || got != tt.want {
					t.Errorf("Interpreter(%s) = %q, %v; want %q", tt.override, got, err, tt.want)
				}
			}
		})
	}
}
