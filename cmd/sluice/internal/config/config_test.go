package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/configs"
	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/invoker/filter"
)

// env returns a lookup function over m.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func mustParse(t *testing.T, src string, lookup func(string) (string, bool)) *File {
	t.Helper()
	f, err := ParseEnv("t.yaml", []byte(src), lookup)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return f
}

// specExample is the reference configuration with every optional key
// written once, some values holding braces quoted (both forms are accepted).
const specExample = `
server:
  listen: ":8080"
  admin_listen: "127.0.0.1:9090"     # /metrics /healthz /readyz /debug/pprof
  admin_token: ${SLUICE_ADMIN_TOKEN}  # required for admin when admin_listen is not loopback
  max_body: 6MiB
  read_timeout: 30s
  tls: {cert: cert.pem, key: key.pem}
  pidfile: /tmp/sluice.pid
  drain_timeout: 45s
kafka:
  embedded: true
  embedded_partitions: 4
  brokers: ["127.0.0.1:9092"]
log: {level: debug, format: console}
functions:
  echo:     {runtime: go, handler: echo}
  thumbs:   {runtime: plugin, path: bin/plugins/thumbs.so}
  hello-py: {runtime: process, command: ["python3", "plugins/examples/hello.py"], instances: 4}
  lambda:   {runtime: lambda, command: ["bin/functions/lambda-echo"], instances: 2}
  tuned:
    runtime: go
    handler: sink
    env: {SINK_FILE: /tmp/sink.jsonl, N: 3}
    timeout: 3s
    memory: 128MiB
    concurrency: 64
    queue: 1024
    batch: {max_items: 100, max_bytes: 1MiB, max_wait: 10ms, sync_items: 2}
    retry: {attempts: 3, backoff: 100ms, max_backoff: 10s, bisect: true, max_age: 1h}
    dead_letter: {topic: dlq}
  filed:
    runtime: go
    handler: noop
    batch: {max_wait: 0}
    dead_letter: {file: /tmp/dlq.jsonl}
triggers:
  - http:     {method: POST, path: /echo/{id}, function: echo, mode: sync}
  - http:     {method: POST, path: /jobs, function: hello-py, mode: async, async_topic: jobs}
  - http:     {path: /any, function: echo}
  - storage:  {path: /hooks/storage, function: thumbs, token: ${HOOK_TOKEN}}
  - kafka:    {topics: [orders], group: orders, function: hello-py, start: earliest, format: raw}
  - kafka:    {topics: "a, b", group: ab, function: echo, format: cloudevents, ordering: key,
               filter: {"data": {"status": ["paid"]}}}
  - cdc:      {topics: [dbserver1.inventory.customers], group: cdc, function: echo}
  - schedule: {cron: "*/5 * * * *", function: echo, payload: {job: cleanup, n: [1, 2.5, true, null]}}
  - schedule: {cron: "@daily", function: lambda, timezone: Europe/Paris, catch_up: false}
`

func TestParseSpecExample(t *testing.T) {
	t.Parallel()
	f := mustParse(t, specExample, env(map[string]string{"SLUICE_ADMIN_TOKEN": "s3cret", "HOOK_TOKEN": "h"}))
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	want := &File{
		Path: "t.yaml",
		Server: Server{
			Listen: ":8080", AdminListen: "127.0.0.1:9090", AdminToken: "s3cret",
			MaxBody: 6 << 20, MaxHeaders: 100, ReadTimeout: 30 * time.Second, DrainTimeout: 45 * time.Second,
			TLS: &TLS{Cert: "cert.pem", Key: "key.pem"}, Pidfile: "/tmp/sluice.pid",
			// Not written, on a listener that is not loopback: off.
			InvokeAPI: InvokeAPI{Enabled: false, Auth: AuthNone},
		},
		Kafka:   Kafka{Embedded: true, EmbeddedPartitions: 4, Brokers: []string{"127.0.0.1:9092"}},
		Log:     Log{Level: "debug", Format: "console"},
		Tracing: Tracing{SampleRatio: 1, ServiceName: "sluice"},
		Functions: []Function{
			{Name: "echo", Runtime: "go", Handler: "echo", Pos: Pos{17, 3}},
			{Name: "thumbs", Runtime: "plugin", Path: "bin/plugins/thumbs.so", Pos: Pos{18, 3}},
			{Name: "hello-py", Runtime: "process", Command: []string{"python3", "plugins/examples/hello.py"}, Instances: 4, Scaling: Scaling{Min: 4, Max: 4}, Pos: Pos{19, 3}},
			{Name: "lambda", Runtime: "lambda", Command: []string{"bin/functions/lambda-echo"}, Instances: 2, Scaling: Scaling{Min: 2, Max: 2}, Pos: Pos{20, 3}},
			{
				Name: "tuned", Runtime: "go", Handler: "sink",
				Env:     map[string]string{"SINK_FILE": "/tmp/sink.jsonl", "N": "3"},
				Timeout: 3 * time.Second, Memory: 128 << 20, Concurrency: 64, Queue: 1024,
				Batch:      Batch{MaxItems: 100, MaxBytes: 1 << 20, MaxWait: durPtr(10 * time.Millisecond), SyncItems: 2},
				Retry:      Retry{Attempts: 3, Backoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second, Bisect: true, MaxAge: time.Hour},
				DeadLetter: DeadLetter{Topic: "dlq"},
				Pos:        Pos{21, 3},
			},
			{Name: "filed", Runtime: "go", Handler: "noop", Batch: Batch{MaxWait: durPtr(0)}, DeadLetter: DeadLetter{File: "/tmp/dlq.jsonl"}, Pos: Pos{32, 3}},
		},
		Triggers: []Trigger{
			{Kind: "http", Function: "echo", HTTP: &HTTP{Method: "POST", Path: "/echo/{id}", Mode: "sync"}, Pos: Pos{38, 5}},
			{Kind: "http", Function: "hello-py", HTTP: &HTTP{Method: "POST", Path: "/jobs", Mode: "async", AsyncTopic: "jobs"}, Pos: Pos{39, 5}},
			{Kind: "http", Function: "echo", HTTP: &HTTP{Method: "ANY", Path: "/any", Mode: "sync"}, Pos: Pos{40, 5}},
			{Kind: "storage", Function: "thumbs", Storage: &Storage{Path: "/hooks/storage", Token: "h", Mode: "sync"}, Pos: Pos{41, 5}},
			{Kind: "kafka", Function: "hello-py", Kafka: &KafkaTrigger{Topics: []string{"orders"}, Group: "orders", Start: "earliest", Format: "raw", Ordering: "partition"}, Pos: Pos{42, 5}},
			{
				Kind: "kafka", Function: "echo",
				Kafka:     &KafkaTrigger{Topics: []string{"a", "b"}, Group: "ab", Start: "latest", Format: "cloudevents", Ordering: "key"},
				Filter:    json.RawMessage(`{"data":{"status":["paid"]}}`),
				FilterPos: Pos{44, 16},
				Pos:       Pos{43, 5},
			},
			{Kind: "cdc", Function: "echo", CDC: &CDC{Topics: []string{"dbserver1.inventory.customers"}, Group: "cdc", Start: "latest", Ordering: "key"}, Pos: Pos{45, 5}},
			{
				Kind: "schedule", Function: "echo",
				Schedule: &Schedule{Cron: "*/5 * * * *", Timezone: "UTC", Location: time.UTC, Payload: json.RawMessage(`{"job":"cleanup","n":[1,2.5,true,null]}`), CatchUp: true},
				Pos:      Pos{46, 5},
			},
			{Kind: "schedule", Function: "lambda", Schedule: &Schedule{Cron: "@daily", Timezone: "Europe/Paris", Location: paris}, Pos: Pos{47, 5}},
		},
	}
	f.pos = nil
	if !reflect.DeepEqual(f, want) {
		got, _ := json.MarshalIndent(f, "", "  ")
		exp, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("got:\n%s\nwant:\n%s", got, exp)
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	f := mustParse(t, "log: {}\nfunctions:\n  p: {runtime: process, command: [p]}\n  e: {runtime: go, handler: echo}\n", noEnv)
	want := File{
		Path: "t.yaml",
		Server: Server{
			Listen: "127.0.0.1:8080", AdminListen: "127.0.0.1:9090", MaxBody: 6 << 20, MaxHeaders: 100,
			ReadTimeout: 30 * time.Second, DrainTimeout: 30 * time.Second,
			InvokeAPI: InvokeAPI{Enabled: true, Auth: AuthNone}, // on: the default listen is loopback
		},
		Kafka:   Kafka{EmbeddedPartitions: 8},
		Log:     Log{Level: "info", Format: "json"},
		Tracing: Tracing{SampleRatio: 1, ServiceName: "sluice"},
		Functions: []Function{
			{Name: "p", Runtime: "process", Command: []string{"p"}, Instances: 1, Scaling: Scaling{Min: 1, Max: 1}, Pos: Pos{3, 3}},
			{Name: "e", Runtime: "go", Handler: "echo", Pos: Pos{4, 3}},
		},
	}
	f.pos = nil
	if !reflect.DeepEqual(*f, want) {
		t.Errorf("got %+v\nwant %+v", *f, want)
	}

	scaling := []struct {
		name, fn string
		want     Scaling
	}{
		{"instances", "{runtime: process, command: [p], instances: 3}", Scaling{Min: 3, Max: 3}},
		{"empty scaling", "{runtime: lambda, command: [p], scaling: {}}", Scaling{Min: 0, Max: DefaultScalingMax, Idle: DefaultScalingIdle, Set: true}},
		{"scaling", "{runtime: process, command: [p], scaling: {min: 1, max: 4, idle: 30s}}", Scaling{Min: 1, Max: 4, Idle: 30 * time.Second, Set: true}},
	}
	for _, tt := range scaling {
		f := mustParse(t, "functions:\n  p: "+tt.fn+"\n", noEnv)
		if got := f.Functions[0].Scaling; got != tt.want {
			t.Errorf("%s: scaling %+v, want %+v", tt.name, got, tt.want)
		}
	}

	f = mustParse(t, "kafka: {embedded: true}\n", noEnv)
	if !reflect.DeepEqual(f.Kafka.Brokers, []string{"127.0.0.1:9092"}) {
		t.Errorf("embedded brokers default to %q", f.Kafka.Brokers)
	}
}

// TestEnv checks ${VAR} expansion in values of every type.
func TestEnv(t *testing.T) {
	t.Parallel()
	lookup := env(map[string]string{
		"N": "3", "ON": "true", "WAIT": "250ms", "SIZE": "2 MiB", "BROKERS": "a:1, b:2", "EMPTY": "",
		"HOST": "127.0.0.1", "TOKEN": "t0k",
	})
	f := mustParse(t, `
server:
  listen: ${HOST}:${PORT:-8081}
  admin_token: "${TOKEN}-$${LITERAL}-${EMPTY:-dflt}-${UNSET}-end"
  max_body: ${SIZE}
  pidfile: '${UNSET:-/run/sluice.pid}'
kafka: {embedded: "${ON}", brokers: "${BROKERS}"}
functions:
  p:
    runtime: process
    command: ["${HOST}", "$HOME", "a$${b}"]
    instances: ${N}
    timeout: ${WAIT}
    env:
      A: "${N}${N}"
      B: ${UNSET:-x y}
`, lookup)
	s := f.Server
	if s.Listen != "127.0.0.1:8081" || s.AdminToken != "t0k-${LITERAL}-dflt--end" || s.MaxBody != 2<<20 || s.Pidfile != "/run/sluice.pid" {
		t.Errorf("server: %+v", s)
	}
	if !f.Kafka.Embedded || !reflect.DeepEqual(f.Kafka.Brokers, []string{"a:1", "b:2"}) {
		t.Errorf("kafka: %+v", f.Kafka)
	}
	fn := f.Functions[0]
	if !reflect.DeepEqual(fn.Command, []string{"127.0.0.1", "$HOME", "a${b}"}) || fn.Instances != 3 || fn.Timeout != 250*time.Millisecond {
		t.Errorf("function: %+v", fn)
	}
	if !reflect.DeepEqual(fn.Env, map[string]string{"A": "33", "B": "x y"}) {
		t.Errorf("env: %v", fn.Env)
	}
	// Keys are not expanded.
	equalLines(t, problems(t, "server:\n  ${KEY}: 1\n", lookup), []string{
		`t.yaml:2:3: unknown key "${KEY}" (want admin_listen, admin_token, drain_timeout, invoke_api, listen, max_body, max_headers, pidfile, read_timeout or tls)`,
	})
	// An expanded value is checked like a written one.
	equalLines(t, problems(t, "functions:\n  p: {runtime: process, command: [p], instances: \"${TOKEN}\"}\n", lookup), []string{
		`t.yaml:2:50: instances: expected an integer, got "t0k"`,
	})
}

func TestExpand(t *testing.T) {
	t.Parallel()
	lookup := env(map[string]string{"A": "a", "E": "", "B_1": "b"})
	for _, tc := range []struct{ in, out, msg string }{
		{"plain $A text", "plain $A text", ""},
		{"${A}", "a", ""},
		{"${A}${B_1}", "ab", ""},
		{"x${NOPE}y", "xy", ""},
		{"${NOPE:-d}", "d", ""},
		{"${E:-d}", "d", ""},
		{"${A:-d}", "a", ""},
		{"${A:-}", "a", ""},
		{"${NOPE:-a:-b}", "a:-b", ""},
		{"$${A}", "${A}", ""},
		{"$$${A}", "$${A}", ""}, // left to right: "$", then "$${" for "${"
		{"${A", "", `unterminated ${ in "${A"`},
		{"${}", "", "bad variable reference ${} (want ${NAME} or ${NAME:-default}; $${ is a literal ${)"},
		{"${A-b}", "", "bad variable reference ${A-b} (want ${NAME} or ${NAME:-default}; $${ is a literal ${)"},
		{"${9}", "", "bad variable reference ${9} (want ${NAME} or ${NAME:-default}; $${ is a literal ${)"},
	} {
		out, msg := expand(tc.in, lookup)
		if out != tc.out || msg != tc.msg {
			t.Errorf("expand(%q) = %q, %q; want %q, %q", tc.in, out, msg, tc.out, tc.msg)
		}
	}
}

func TestParseSize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1048576", 1 << 20, true},
		{"512B", 512, true},
		{"6MiB", 6 << 20, true},
		{"6 MiB", 6 << 20, true},
		{"6mib", 6 << 20, true},
		{"1KiB", 1024, true},
		{"2GiB", 2 << 30, true},
		{"1TiB", 1 << 40, true},
		{"1KB", 1000, true},
		{"3MB", 3_000_000, true},
		{"1GB", 1_000_000_000, true},
		{"1TB", 1_000_000_000_000, true},
		{"-1MiB", -1 << 20, true},
		{"", 0, false},
		{"MiB", 0, false},
		{"1.5MiB", 0, false},
		{"6M", 0, false},
		{"6 megabytes", 0, false},
		{"0x10", 0, false},
		{"9223372036854775807", 1<<63 - 1, true},
		{"9223372036854775808", 0, false},
		{"9000000TiB", 0, false},
	} {
		got, err := parseSize(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestSuggest(t *testing.T) {
	t.Parallel()
	known := []string{"timeout", "concurrency", "queue", "dead_letter", "log", "server"}
	for _, tc := range []struct{ in, want string }{
		{"timout", "timeout"},
		{"tiemout", "timeout"},
		{"concurency", "concurrency"},
		{"Queue", "queue"},
		{"deadletter", "dead_letter"},
		{"serve", "server"},
		{"lgo", "log"},
		{"foo", ""},
		{"x", ""},
		{"memory", ""},
	} {
		if got := suggest(tc.in, known); got != tc.want {
			t.Errorf("suggest(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestAnchors checks anchors, aliases and merge keys, a way to share
// settings between functions.
func TestAnchors(t *testing.T) {
	t.Parallel()
	f := mustParse(t, `
x-defaults: &defaults
  runtime: process
  timeout: 5s
  retry: {attempts: 5}
x-other: {anything: [goes, here]}
functions:
  a:
    <<: *defaults
    command: [a]
  b:
    <<: [{timeout: 1s}, *defaults]
    command: &cmd [b, --flag]
    retry: {attempts: 2}
  c: {runtime: lambda, command: *cmd}
`, noEnv)
	want := []Function{
		{Name: "a", Runtime: "process", Command: []string{"a"}, Instances: 1, Scaling: Scaling{Min: 1, Max: 1}, Timeout: 5 * time.Second, Retry: Retry{Attempts: 5}, Pos: Pos{8, 3}},
		{Name: "b", Runtime: "process", Command: []string{"b", "--flag"}, Instances: 1, Scaling: Scaling{Min: 1, Max: 1}, Timeout: time.Second, Retry: Retry{Attempts: 2}, Pos: Pos{11, 3}},
		{Name: "c", Runtime: "lambda", Command: []string{"b", "--flag"}, Instances: 1, Scaling: Scaling{Min: 1, Max: 1}, Pos: Pos{15, 3}},
	}
	if !reflect.DeepEqual(f.Functions, want) {
		t.Errorf("got %+v\nwant %+v", f.Functions, want)
	}
	// A problem in an anchored value used twice is reported once, where it
	// is written.
	equalLines(t, problems(t, `
x-d: &d {runtime: go, handler: echo, timeout: soon}
functions:
  a: *d
  b: {<<: *d, bogus: 1}
  c: {<<: [*d, 3]}
  d: {<<: text}
`, noEnv), []string{
		`t.yaml:2:47: timeout: invalid duration "soon" (want Go syntax like 300ms, 3s or 1h30m)`,
		`t.yaml:5:15: unknown key "bogus" (want batch, code, command, concurrency, dead_letter, dir, env, handler, instances, interpreter, memory, path, queue, retry, runtime, scaling or timeout)`,
		`t.yaml:6:16: <<: expected a mapping, got an integer`,
		`t.yaml:7:3: function "d" needs runtime (go, plugin, process, lambda, python, nodejs or java)`,
		`t.yaml:7:11: <<: expected a mapping or a list of mappings, got a string`,
	})
}

// TestWhere checks the positions kept for reporting problems found after
// Parse.
func TestWhere(t *testing.T) {
	t.Parallel()
	f := mustParse(t, `server:
  listen: ":8080"
functions:
  thumbs:
    runtime: plugin
    path: bin/plugins/thumbs.so
    retry: {attempts: 2}
triggers:
  - http: {path: /a, function: thumbs}
  -   kafka:
        topics: [a]
        group: g
        function: thumbs
kafka: {embedded: true}
`, noEnv)
	for _, tc := range []struct{ path, want string }{
		{"server", "t.yaml:1:1"},
		{"server.listen", "t.yaml:2:3"},
		{"server.admin_listen", "t.yaml:1:1"}, // not written: its section
		{"kafka.brokers", "t.yaml:14:1"},
		{"log.level", "t.yaml"},
		{"functions.thumbs", "t.yaml:4:3"},
		{"functions.thumbs.path", "t.yaml:6:5"},
		{"functions.thumbs.retry.attempts", "t.yaml:7:13"},
		{"functions.thumbs.retry.backoff", "t.yaml:7:5"},
		{"triggers[0]", "t.yaml:9:5"},
		{"triggers[0].http.path", "t.yaml:9:12"},
		{"triggers[1].kafka", "t.yaml:10:7"},
		{"triggers[1].kafka.group", "t.yaml:12:9"},
		{"triggers[7].http", "t.yaml:8:1"},
		{"", "t.yaml"},
	} {
		if got := f.Where(tc.path); got != tc.want {
			t.Errorf("Where(%q) = %q, want %q", tc.path, got, tc.want)
		}
	}
	if p, ok := f.Pos("functions.thumbs.path"); !ok || p != (Pos{6, 5}) {
		t.Errorf("Pos = %v, %v", p, ok)
	}
	if _, ok := f.Pos("log"); ok {
		t.Error("Pos of an unwritten key is known")
	}
	if fn := f.Function("thumbs"); fn == nil || f.At(fn.Pos) != "t.yaml:4:3" {
		t.Errorf("Function(thumbs) = %+v", fn)
	}
	if f.Function("nope") != nil {
		t.Error("Function(nope) is not nil")
	}
	if got := f.At(f.Triggers[1].Pos); got != "t.yaml:10:7" {
		t.Errorf("trigger At = %q", got)
	}
}

// TestManyProblems checks that problems of every section are all reported
// in one run, sorted by position, though found in another order (the
// checks across the file run last).
func TestManyProblems(t *testing.T) {
	t.Parallel()
	equalLines(t, problems(t, `triggers:
  - http: {path: /a, function: nope}
  - kafka: {topics: [t], group: g, function: f}
functions:
  f: {runtime: go, handler: echo, queue: -1}
server: {max_body: lots, listen: ":80"}
log: {format: xml}
`, noEnv), []string{
		`t.yaml:2:32: function: no function "nope" in functions`,
		`t.yaml:3:5: this kafka trigger needs a Kafka cluster: set kafka.brokers, or kafka.embedded: true`,
		`t.yaml:5:42: queue: must be at least 1, got -1`,
		`t.yaml:6:20: max_body: invalid size "lots" (want bytes, or a number with KiB, MiB, GiB, TiB, KB, MB, GB or TB)`,
		`t.yaml:7:15: format: unknown log format "xml" (want json or console)`,
	})
}

var update = os.Getenv("SLUICE_UPDATE_GOLDEN") != ""

// TestTestdata checks the example files the end-to-end tests of `sluice
// validate` use: broken.yaml gives exactly broken.golden (regenerate with
// SLUICE_UPDATE_GOLDEN=1), ok.yaml parses, syntax.yaml is a syntax error.
func TestTestdata(t *testing.T) {
	t.Parallel()
	_, err := Load("testdata/broken.yaml")
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("broken.yaml: %v", err)
	}
	got := err.Error() + "\n"
	if update {
		if err := os.WriteFile("testdata/broken.golden", []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/broken.golden")
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("broken.yaml:\n%s\nwant (broken.golden):\n%s", got, want)
	}
	if len(errs.List) < 3 {
		t.Errorf("broken.yaml has %d problems, want several", len(errs.List))
	}

	if _, err := Load("testdata/ok.yaml"); err != nil {
		t.Errorf("ok.yaml: %v", err)
	}
	_, err = Load("testdata/syntax.yaml")
	if err == nil || !strings.HasPrefix(err.Error(), "testdata/syntax.yaml:") {
		t.Errorf("syntax.yaml: %v", err)
	}
}

// TestRepoConfigs checks that every example deployment in configs/ and the
// embedded default parse cleanly.
func TestRepoConfigs(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("../../../../configs/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no configs/*.yaml found")
	}
	for _, p := range files {
		if _, err := Load(p); err != nil {
			t.Errorf("%v", err)
		}
	}
	f, err := ParseEnv("configs/sluice.yaml", configs.Default, noEnv)
	if err != nil {
		t.Fatalf("embedded default: %v", err)
	}
	if len(f.Functions) == 0 || len(f.Triggers) == 0 {
		t.Errorf("embedded default has %d functions and %d triggers", len(f.Functions), len(f.Triggers))
	}
}

func TestLoad(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file: %v", err)
	}
	var errs *Errors
	if errors.As(err, &errs) {
		t.Error("an I/O error is reported as a config problem")
	}
}

// TestLimits checks that a file built to exhaust the decoder is refused
// quickly: nested aliases (a "billion laughs") and an oversized file.
func TestLimits(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("x-0: &a0 [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n")
	for i := 1; i < 12; i++ {
		fmt.Fprintf(&b, "x-%d: &a%d [*a%[3]d, *a%[3]d, *a%[3]d, *a%[3]d, *a%[3]d, *a%[3]d, *a%[3]d, *a%[3]d, *a%[3]d, *a%[3]d]\n", i, i, i-1)
	}
	b.WriteString("functions:\n  f: {runtime: go, handler: echo}\ntriggers:\n  - schedule: {rate: 1m, function: f, payload: *a11}\n")
	equalLines(t, problems(t, b.String(), noEnv), []string{
		`t.yaml:1:1: aliases expand to more than 1048576 nodes; this is not a configuration`,
	})

	big := "x-pad: \"" + strings.Repeat("a", MaxFileSize) + "\"\n"
	equalLines(t, problems(t, big, noEnv), []string{
		`t.yaml:1:1: file is larger than 512 KiB; this is not a configuration`,
	})
}

// TestValidateFilter checks that the loader compiles a trigger's filter
// pattern as the trigger will, passing a good one and reporting a bad one
// at the filter's position.
func TestValidateFilter(t *testing.T) {
	t.Parallel()
	src := `kafka: {embedded: true}
functions:
  f: {runtime: go, handler: echo}
triggers:
  - kafka: {topics: [a], group: a, function: f, filter: {data: {status: [paid]}}}
  - cdc:
      topics: [b]
      group: b
      function: f
      filter:
        data: {n: [{bad: 1}]}
`
	_, want := filter.Compile(json.RawMessage(`{"data":{"n":[{"bad":1}]}}`))
	if want == nil {
		t.Fatal("filter.Compile accepts the bad pattern")
	}
	equalLines(t, problems(t, src, noEnv), []string{
		`t.yaml:11:9: filter: ` + want.Error(),
	})
}

func TestInvokerConfig(t *testing.T) {
	t.Parallel()
	f := mustParse(t, specExample, env(map[string]string{"SLUICE_ADMIN_TOKEN": "x", "HOOK_TOKEN": "h"}))
	got := f.Function("tuned").Invoker()
	want := invoker.Config{
		Timeout: 3 * time.Second, Concurrency: 64, Queue: 1024, Memory: 128 << 20,
		Batch: invoker.BatchConfig{MaxItems: 100, MaxBytes: 1 << 20, MaxWait: 10 * time.Millisecond, SyncItems: 2},
		Retry: invoker.RetryConfig{Attempts: 3, Backoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second, Bisect: true, MaxAge: time.Hour},
	}
	if got != want {
		t.Errorf("tuned: %+v\nwant %+v", got, want)
	}
	if got := f.Function("echo").Invoker(); got != (invoker.Config{}) {
		t.Errorf("echo: %+v, want the zero Config", got)
	}
	if got := f.Function("filed").Invoker(); got.Batch.MaxWait >= 0 {
		t.Errorf("max_wait: 0 gives MaxWait %v, want negative", got.Batch.MaxWait)
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{
		"127.0.0.1:9090": true,
		"127.1.2.3:0":    true,
		"localhost:9090": true,
		"[::1]:9090":     true,
		":9090":          false,
		"0.0.0.0:9090":   false,
		"[::]:9090":      false,
		"10.0.0.1:9090":  false,
		"admin:9090":     false,
		"nonsense":       false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v", addr, got)
		}
	}
}

func durPtr(d time.Duration) *time.Duration { return &d }
