package config

import (
	"errors"
	"strings"
	"testing"
)

// noEnv is an environment where nothing is set.
func noEnv(string) (string, bool) { return "", false }

// problems parses src as "t.yaml" and returns its problem lines, nil when
// it parses.
func problems(t *testing.T, src string, env func(string) (string, bool)) []string {
	t.Helper()
	f, err := ParseEnv("t.yaml", []byte(src), env)
	if err == nil {
		if f == nil {
			t.Fatal("Parse returned neither a File nor an error")
		}
		return nil
	}
	if f != nil {
		t.Fatal("Parse returned a File with an error")
	}
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error is %T, not *Errors: %v", err, err)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(errs.List) {
		t.Fatalf("Error() has %d lines for %d problems", len(lines), len(errs.List))
	}
	for i, e := range errs.List {
		if e.Error() != lines[i] {
			t.Fatalf("line %d of Error() is %q, the problem says %q", i, lines[i], e.Error())
		}
	}
	return lines
}

func equalLines(t *testing.T, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n\t%s\nwant:\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// TestProblems checks the exact message of each kind of problem, with its
// position.
func TestProblems(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		src  string
		want []string
	}{
		{"admin_token_empty", `server:
  admin_listen: 0.0.0.0:9090
  admin_token: ${SLUICE_ADMIN_TOKEN}
`, []string{
			`t.yaml:3:16: admin_token: ${SLUICE_ADMIN_TOKEN} is unset or empty, which would turn authentication off: set SLUICE_ADMIN_TOKEN, or write ${SLUICE_ADMIN_TOKEN:-} to run without one`,
		}},
		{"admin_token_opted_empty", `server:
  admin_listen: 0.0.0.0:9090
  admin_token: ${SLUICE_ADMIN_TOKEN:-}
`, []string{
			`t.yaml:3:16: admin_token: is empty, but admin_listen "0.0.0.0:9090" is not a loopback address`,
		}},
		{"admin_token_missing", `server:
  admin_listen: ":9090"
`, []string{
			`t.yaml:2:17: admin_listen: ":9090" is not a loopback address: set server.admin_token`,
		}},
		{"any_route_collides", `functions:
  echo: {runtime: go, handler: echo}
triggers:
  - http: {method: GET, path: /a, function: echo}
  - http: {path: /a, function: echo}
`, []string{
			`t.yaml:5:18: path: route ANY /a collides with route GET /a at 4:31`,
		}},
		{"async_topic_sync", `kafka: {brokers: ["k:9092"]}
functions:
  echo: {runtime: go, handler: echo}
triggers:
  - http: {path: /a, function: echo, async_topic: jobs}
  - storage: {path: /s, function: echo, mode: sync, async_topic: jobs}
`, []string{
			`t.yaml:5:38: async_topic: only used with mode async`,
			`t.yaml:6:53: async_topic: only used with mode async`,
		}},
		{"backoff_over_max", `functions:
  e:
    runtime: go
    handler: echo
    retry: {backoff: 10s, max_backoff: 1s}
`, []string{
			`t.yaml:5:22: backoff: 10s is more than max_backoff 1s at 5:40`,
		}},
		{"bad_brokers", `kafka:
  brokers: [localhost]
  embedded_partitions: 0
`, []string{
			`t.yaml:2:12: brokers: invalid address "localhost" (want host:port, like ":8080" or "127.0.0.1:9092")`,
			`t.yaml:3:24: embedded_partitions: must be at least 1, got 0`,
		}},
		{"bad_duration", `functions:
  e: {runtime: go, handler: echo, timeout: 3}
`, []string{
			`t.yaml:2:44: timeout: invalid duration "3" (want Go syntax like 300ms, 3s or 1h30m)`,
		}},
		{"bad_duration_unit", `server:
  read_timeout: 30 seconds
`, []string{
			`t.yaml:2:17: read_timeout: invalid duration "30 seconds" (want Go syntax like 300ms, 3s or 1h30m)`,
		}},
		{"bad_env_ref", `server:
  pidfile: ${1PID}
  admin_token: "${TOKEN"
`, []string{
			`t.yaml:2:12: pidfile: bad variable reference ${1PID} (want ${NAME} or ${NAME:-default}; $${ is a literal ${)`,
			`t.yaml:3:16: admin_token: unterminated ${ in "${TOKEN"`,
		}},
		{"bad_size", `server:
  max_body: 6 megabytes
`, []string{
			`t.yaml:2:13: max_body: invalid size "6 megabytes" (want bytes, or a number with KiB, MiB, GiB, TiB, KB, MB, GB or TB)`,
		}},
		{"comments_only", `# nothing here

`, []string{
			`t.yaml:1:1: empty configuration (want a mapping with server, kafka, log, functions and triggers)`,
		}},
		{"dead_letter_both", `functions:
  echo:
    runtime: go
    handler: echo
    dead_letter: {topic: dlq, file: /tmp/dlq.jsonl}
  e2: {runtime: go, handler: echo, dead_letter: {}}
`, []string{
			`t.yaml:5:5: dead_letter: set topic or file, not both`,
			`t.yaml:5:26: this dead_letter topic needs a Kafka cluster: set kafka.brokers, or kafka.embedded: true`,
			`t.yaml:6:36: dead_letter: set topic or file`,
		}},
		{"duplicate_function", `functions:
  echo: {runtime: go, handler: echo}
  echo: {runtime: go, handler: noop}
`, []string{
			`t.yaml:3:3: duplicate key "echo" (first at 2:3)`,
		}},
		{"duplicate_key", `server:
  listen: ":8080"
  listen: ":8081"
`, []string{
			`t.yaml:3:3: duplicate key "listen" (first at 2:3)`,
		}},
		{"duplicate_route", `functions:
  echo: {runtime: go, handler: echo}
triggers:
  - http: {method: POST, path: "/a/{x}", function: echo}
  - http: {method: post, path: "/a/{y}", function: echo}
  - http: {method: GET, path: "/a/{y}", function: echo}
`, []string{
			`t.yaml:5:32: path: route POST /a/{y} collides with route POST /a/{x} at 4:32`,
		}},
		{"empty", ``, []string{
			`t.yaml:1:1: empty configuration (want a mapping with server, kafka, log, functions and triggers)`,
		}},
		{"env_names", `functions:
  e:
    runtime: go
    handler: echo
    env: {"A=B": x}
`, []string{
			`t.yaml:5:11: env: invalid variable name "A=B"`,
		}},
		{"timezone_with_rate", `functions:
  echo: {runtime: go, handler: echo}
triggers:
  - schedule: {rate: 30s, function: echo, timezone: Europe/Paris}
`, []string{
			`t.yaml:4:53: timezone: applies to cron only; a rate is the same in every zone`,
		}},
		{"filter_not_mapping", `kafka: {embedded: true}
functions:
  echo: {runtime: go, handler: echo}
triggers:
  - kafka: {topics: [a], group: g, function: echo, filter: paid}
  - http: {path: /a, function: echo, filter: {a: [1]}}
  - http: {path: /b, function: echo, filter: [1]}
`, []string{
			`t.yaml:5:60: filter: expected a mapping (an EventBridge pattern), got a string`,
			`t.yaml:7:46: filter: expected a mapping (an EventBridge pattern), got a list`,
		}},
		{"function_name", `functions:
  "hello world": {runtime: go, handler: echo}
`, []string{
			`t.yaml:2:3: function name "hello world": want 1 to 64 letters, digits, '-' or '_'`,
		}},
		{"go_empty_handler", `functions:
  e: {runtime: go, handler: ""}
`, []string{
			`t.yaml:2:29: handler: must not be empty`,
		}},
		{"go_no_handler", `functions:
  e: {runtime: go}
`, []string{
			`t.yaml:2:3: function "e": runtime go needs handler, the name of a builtin function (echo, fail, noop, sink or sleep)`,
		}},
		{"go_unknown_handler", `functions:
  e: {runtime: go, handler: ecko}
`, []string{
			`t.yaml:2:29: handler: no builtin function "ecko" (did you mean "echo"?)`,
		}},
		{"go_unknown_handler_far", `functions:
  e: {runtime: go, handler: resize}
`, []string{
			`t.yaml:2:29: handler: no builtin function "resize" (want echo, fail, noop, sink or sleep)`,
		}},
		{"http_missing", `triggers:
  - http: {method: GET}
  - http:
  - storage: {function: ""}
`, []string{
			`t.yaml:2:5: http trigger needs path and function`,
			`t.yaml:3:5: http trigger needs path and function`,
			`t.yaml:4:5: storage trigger needs path`,
			`t.yaml:4:25: function: must not be empty`,
		}},
		{"instances_on_go", `functions:
  e: {runtime: go, handler: echo, instances: 2}
`, []string{
			`t.yaml:2:35: instances: only used by runtime process, lambda, python, nodejs and java, not go`,
		}},
		{"scaling_problems", `functions:
  a: {runtime: process, command: [p], instances: 2, scaling: {max: 4}}
  b: {runtime: lambda, command: [p], scaling: {min: 5, max: 2, idle: soon}}
  c: {runtime: go, handler: echo, scaling: {mni: 1}}
  d: {runtime: process, command: [p], scaling: {min: 17}}
`, []string{
			`t.yaml:2:53: scaling: set instances (a fixed count) or scaling, not both (instances at 2:39)`,
			`t.yaml:3:53: min: 5 is more than max 2 at 3:61`,
			`t.yaml:3:70: idle: invalid duration "soon" (want Go syntax like 300ms, 3s or 1h30m)`,
			`t.yaml:4:35: scaling: only used by runtime process, lambda, python, nodejs and java, not go`,
			`t.yaml:4:45: unknown key "mni" (did you mean "min"?)`,
			`t.yaml:5:54: min: 17 is more than the default max 16; set max`,
		}},
		{"int_overflow", `functions:
  e: {runtime: go, handler: echo, queue: 99999999999999999999}
`, []string{
			`t.yaml:2:42: queue: 99999999999999999999 is out of range`,
		}},
		{"kafka_bad_values", `kafka: {brokers: ["k:9092"]}
functions:
  echo: {runtime: go, handler: echo}
triggers:
  - kafka: {topics: ["a b"], group: g, function: echo, start: beginning, format: avro, ordering: total}
  - cdc: {topics: x, group: h, function: echo, ordering: key, start: earliest, format: raw}
`, []string{
			`t.yaml:5:21: topics: invalid topic name "a b" (want letters, digits, '.', '_' and '-')`,
			`t.yaml:5:63: start: unknown start "beginning" (want earliest or latest)`,
			`t.yaml:5:82: format: unknown format "avro" (want raw, cloudevents, s3 or cdc)`,
			`t.yaml:5:98: ordering: unknown ordering "total" (want partition, key or none)`,
			`t.yaml:6:80: unknown key "format" (want filter, function, group, ordering, start or topics)`,
		}},
		{"kafka_missing", `kafka: {brokers: ["k:9092"]}
functions:
  echo: {runtime: go, handler: echo}
triggers:
  - kafka: {function: echo}
  - cdc: {topics: [], group: "", function: echo}
`, []string{
			`t.yaml:5:5: kafka trigger needs topics and group`,
			`t.yaml:6:19: topics: must not be empty`,
			`t.yaml:6:30: group: must not be empty`,
		}},
		{"kafka_needed_trigger", `functions:
  echo: {runtime: go, handler: echo, dead_letter: {topic: dlq}}
triggers:
  - http: {path: /a, function: echo, mode: async, async_topic: jobs}
  - kafka: {topics: [a], group: g, function: echo}
`, []string{
			`t.yaml:2:59: this dead_letter topic needs a Kafka cluster: set kafka.brokers, or kafka.embedded: true (and 2 more uses)`,
		}},
		{"keys_of_other_runtime", `functions:
  p:
    runtime: process
    command: [p]
    handler: echo
    path: x.so
`, []string{
			`t.yaml:5:5: handler: only used by runtime go, lambda, python, nodejs and java, not process`,
			`t.yaml:6:5: path: only used by runtime plugin, not process`,
		}},
		{"lambda_empty_command", `functions:
  l: {runtime: lambda, command: []}
`, []string{
			`t.yaml:2:33: command: must not be empty`,
		}},
		{"log_bad", `log: {level: verbose, format: text}
`, []string{
			`t.yaml:1:14: level: unknown log level "verbose" (want debug, info, warn or error)`,
			`t.yaml:1:31: format: unknown log format "text" (want json or console)`,
		}},
		{"missing_runtime", `functions:
  e: {handler: echo}
`, []string{
			`t.yaml:2:3: function "e" needs runtime (go, plugin, process, lambda, python, nodejs or java)`,
		}},
		{"negative_duration", `functions:
  e: {runtime: go, handler: echo, timeout: -3s}
`, []string{
			`t.yaml:2:44: timeout: must be positive, got -3s`,
		}},
		{"negative_int", `functions:
  e: {runtime: go, handler: echo, concurrency: -1}
`, []string{
			`t.yaml:2:48: concurrency: must be at least 1, got -1`,
		}},
		{"negative_size", `server:
  max_body: -1MiB
`, []string{
			`t.yaml:2:13: max_body: must be positive, got -1MiB`,
		}},
		{"max_headers_zero", `server:
  max_headers: 0
`, []string{
			`t.yaml:2:16: max_headers: must be at least 1, got 0`,
		}},
		{"max_headers_not_a_number", `server: {max_headers: many}
`, []string{
			`t.yaml:1:23: max_headers: expected an integer, got "many"`,
		}},
		{"plugin_no_path", `functions:
  t: {runtime: plugin}
`, []string{
			`t.yaml:2:3: function "t": runtime plugin needs path, the plugin's .so file`,
		}},
		{"process_no_command", `functions:
  p: {runtime: process, instances: 2}
`, []string{
			`t.yaml:2:3: function "p": runtime process needs command, a list: the program and its arguments`,
		}},
		{"route_paths", `functions:
  echo: {runtime: go, handler: echo}
triggers:
  - http: {path: a, function: echo}
  - http: {path: "/a/{x", function: echo}
  - http: {path: "/a/x{y}", function: echo}
  - http: {path: "/a/{1x}", function: echo}
  - http: {path: "/a/{x}/{x}", function: echo}
  - http: {path: //a, function: echo}
  - http: {path: "/a?b=1", function: echo}
  - http: {path: "/a b", function: echo}
  - http: {path: "/a/{proxy+}", function: echo}
  - http: {path: /2015-03-31/functions/x/invocations, function: echo}
`, []string{
			`t.yaml:4:18: path: must start with "/"`,
			`t.yaml:5:18: path: segment "{x": a parameter is a whole segment, like {id}`,
			`t.yaml:6:18: path: segment "x{y}": a parameter is a whole segment, like {id}`,
			`t.yaml:7:18: path: bad parameter name "1x" (want letters, digits and _)`,
			`t.yaml:8:18: path: duplicate parameter {x}`,
			`t.yaml:9:18: path: must not contain an empty segment ("//")`,
			`t.yaml:10:18: path: must not contain a query (?) or a fragment (#)`,
			`t.yaml:11:18: path: must not contain spaces or control characters`,
			`t.yaml:12:18: path: bad parameter name "proxy+" (want letters, digits and _)`,
			`t.yaml:13:18: path: /2015-03-31/ is the Lambda invoke API's`,
		}},
		{"schedule_bad", `functions:
  echo: {runtime: go, handler: echo}
triggers:
  - schedule: {cron: "61 * * * *", function: echo}
  - schedule: {cron: "TZ=UTC", function: echo}
  - schedule: {cron: "@every 5m", function: echo, timezone: Mars/Olympus}
  - schedule: {rate: 100ms, function: echo, catch_up: maybe}
  - schedule: {cron: "@yearly", function: echo, payload: {n: .inf}}
`, []string{
			`t.yaml:4:22: cron: invalid cron expression "61 * * * *": end of range (61) above maximum (59): 61`,
			`t.yaml:5:22: cron: set the time zone with the timezone key, not in the expression`,
			`t.yaml:6:61: timezone: unknown time zone "Mars/Olympus" (want an IANA name like Europe/Paris)`,
			`t.yaml:7:22: rate: must be at least 1s, got 100ms`,
			`t.yaml:7:55: catch_up: expected true or false, got "maybe"`,
			`t.yaml:8:62: n: .inf has no JSON form`,
		}},
		{"schedule_both", `functions:
  echo: {runtime: go, handler: echo}
triggers:
  - schedule: {cron: "@hourly", rate: 1h, function: echo}
  - schedule: {function: echo}
`, []string{
			`t.yaml:4:33: schedule takes cron or rate, not both`,
			`t.yaml:5:5: schedule needs cron or rate`,
		}},
		{"shared_group", `kafka: {brokers: ["k:9092"]}
functions:
  echo: {runtime: go, handler: echo}
triggers:
  - kafka: {topics: [a], group: g, function: echo}
  - cdc: {topics: [b], group: g, function: echo}
`, []string{
			`t.yaml:6:31: group: consumer group "g" is already used by the trigger at 5:33`,
		}},
		{"storage_collides", `functions:
  echo: {runtime: go, handler: echo}
triggers:
  - storage: {path: /hooks, function: echo}
  - storage: {path: /hooks, function: echo}
  - http: {method: GET, path: /hooks, function: echo}
`, []string{
			`t.yaml:5:21: path: storage webhook /hooks collides with storage webhook /hooks at 4:21`,
			`t.yaml:6:31: path: route GET /hooks collides with storage webhook /hooks at 4:21`,
		}},
		{"tls_missing", `server:
  tls: {key: k.pem}
`, []string{
			`t.yaml:2:3: tls needs cert`,
		}},
		{"trigger_empty", `triggers:
  - {}
  -
`, []string{
			`t.yaml:2:5: trigger needs one of http, storage, kafka, cdc or schedule`,
			`t.yaml:3:5: trigger needs one of http, storage, kafka, cdc or schedule`,
		}},
		{"trigger_no_kind", `triggers:
  - function: echo
`, []string{
			`t.yaml:2:5: function goes inside the trigger's kind, as in - http: {path: /x, function: f}`,
		}},
		{"trigger_not_mapping", `triggers:
  - http
`, []string{
			`t.yaml:2:5: trigger: expected a mapping, got a string`,
		}},
		{"trigger_several_kinds", `functions:
  echo: {runtime: go, handler: echo}
triggers:
  - http: {path: /a, function: echo}
    schedule: {rate: 1m, function: echo}
`, []string{
			`t.yaml:5:5: trigger has several kinds (http, schedule); write one list item per trigger`,
		}},
		{"trigger_unknown_function", `functions:
  echo: {runtime: go, handler: echo}
triggers:
  - http: {path: /a, function: ecoh}
  - http: {path: /b, function: resize}
`, []string{
			`t.yaml:4:32: function: no function "ecoh" in functions (did you mean "echo"?)`,
			`t.yaml:5:32: function: no function "resize" in functions`,
		}},
		{"two_documents", `server: {}
---
log: {}
`, []string{
			`t.yaml:3:1: a configuration is one YAML document; remove this one or the --- before it`,
		}},
		{"type_bool", `kafka:
  embedded: yes
`, []string{
			`t.yaml:2:13: embedded: expected true or false, got "yes"`,
		}},
		{"type_command_item", `functions:
  p:
    runtime: process
    command: [python3, [a]]
`, []string{
			`t.yaml:4:24: command: expected a list of strings, got a list in it`,
		}},
		{"type_command_string", `functions:
  p:
    runtime: process
    command: "python3 hello.py"
`, []string{
			`t.yaml:4:14: command: expected a list of strings, got a string`,
		}},
		{"type_env_value", `functions:
  e:
    runtime: go
    handler: echo
    env: {A: [1]}
`, []string{
			`t.yaml:5:14: A: expected a string, got a list`,
		}},
		{"type_float", `functions:
  p:
    runtime: process
    command: [p]
    instances: 1.5
`, []string{
			`t.yaml:5:16: instances: expected an integer, got a number`,
		}},
		{"type_functions", `functions: [echo]
`, []string{
			`t.yaml:1:12: functions: expected a mapping, got a list`,
		}},
		{"type_integer", `functions:
  p:
    runtime: process
    command: [p]
    instances: four
`, []string{
			`t.yaml:5:16: instances: expected an integer, got "four"`,
		}},
		{"type_listen_map", `server:
  listen: {port: 80}
`, []string{
			`t.yaml:2:11: listen: expected a string, got a mapping`,
		}},
		{"type_server", `server: 8080
`, []string{
			`t.yaml:1:9: server: expected a mapping, got an integer`,
		}},
		{"type_string_for_map", `functions:
  echo: go
`, []string{
			`t.yaml:2:9: echo: expected a mapping, got a string`,
		}},
		{"type_top", `- server
`, []string{
			`t.yaml:1:1: the top level must be a mapping (server, kafka, log, tracing, functions, triggers), not a list`,
		}},
		{"type_triggers", `triggers: {http: {path: /a}}
`, []string{
			`t.yaml:1:11: triggers: expected a list, got a mapping`,
		}},
		{"unknown_alias", `server:
  listen: *addr
`, []string{
			`t.yaml:2:11: unknown alias *addr (an alias must follow its &anchor)`,
		}},
		{"unknown_function_key", `functions:
  echo:
    runtime: go
    handler: echo
    timout: 3s
`, []string{
			`t.yaml:5:5: unknown key "timout" (did you mean "timeout"?)`,
		}},
		{"unknown_method", `functions:
  echo: {runtime: go, handler: echo}
triggers:
  - http: {method: FETCH, path: /a, function: echo}
`, []string{
			`t.yaml:4:20: method: unknown method "FETCH" (want GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS or ANY)`,
		}},
		{"unknown_mode", `functions:
  echo: {runtime: go, handler: echo}
triggers:
  - http: {path: /a, function: echo, mode: asink}
  - storage: {path: /s, function: echo, mode: Sync}
`, []string{
			`t.yaml:4:44: mode: unknown mode "asink" (want sync or async)`,
			`t.yaml:5:47: mode: unknown mode "Sync" (want sync or async)`,
		}},
		{"unknown_no_suggestion", `server:
  bogus: 1
`, []string{
			`t.yaml:2:3: unknown key "bogus" (want admin_listen, admin_token, drain_timeout, invoke_api, listen, max_body, max_headers, pidfile, read_timeout or tls)`,
		}},
		{"unknown_runtime", `functions:
  e: {runtime: pyhton}
`, []string{
			`t.yaml:2:16: runtime: unknown runtime "pyhton" (want go, plugin, process, lambda, python, nodejs or java; python3.12, nodejs20.x and java21 are read as python, nodejs and java)`,
		}},
		{"unknown_top", `serve:
  listen: ":8080"
`, []string{
			`t.yaml:1:1: unknown key "serve" (did you mean "server"?)`,
		}},
		{"yaml_brace_hint", `triggers:
  - http: {path: /echo/{i d}, function: echo}
`, []string{
			`t.yaml:2:24: YAML: ',' or '}' must be specified (inside {...}, quote a value that holds braces: path: "/echo/{id}", token: "${TOKEN}")`,
		}},
		{"yaml_syntax", `server:
  listen: [":8080"
`, []string{
			`t.yaml:2:11: YAML: sequence end token ']' not found`,
		}},
		{"yaml_tab", `server:
	listen: ":8080"
`, []string{
			`t.yaml:2:1: YAML: found character '\t' that cannot start any token`,
		}},
		{"zero_duration", `server:
  drain_timeout: 0s
`, []string{
			`t.yaml:2:18: drain_timeout: must be positive, got 0s`,
		}},
		{"zero_queue", `functions:
  e: {runtime: go, handler: echo, queue: 0}
`, []string{
			`t.yaml:2:42: queue: must be at least 1, got 0`,
		}},
		{"empty_values", `functions:
  e: {runtime: }
  f: {runtime: go, handler: echo, dead_letter: {topic: ""}}
  "": {runtime: go, handler: echo}
triggers:
  - schedule: {cron: "", function: f}
  - schedule: {rate: , function: f}
  - schedule: {cron: " ", rate: 1s, function: f}
`, []string{
			`t.yaml:2:7: runtime: must not be empty (want go, plugin, process, lambda, python, nodejs or java)`,
			`t.yaml:3:35: dead_letter: set topic or file`,
			`t.yaml:4:3: function name "": want 1 to 64 letters, digits, '-' or '_'`,
			`t.yaml:6:22: cron: must not be empty`,
			`t.yaml:7:16: rate: must not be empty`,
			`t.yaml:8:22: cron: must not be empty`,
			`t.yaml:8:27: schedule takes cron or rate, not both`,
		}},
		{"sync_items", `functions:
  e: {runtime: process, command: [x], batch: {sync_items: 0}}
  f: {runtime: process, command: [x], batch: {max_items: 4, sync_items: 5}}
  g: {runtime: process, command: [x], batch: {sync_items: 101}}
  h: {runtime: process, command: [x], batch: {sync_items: 100}}
`, []string{
			`t.yaml:2:59: sync_items: must be at least 1, got 0`,
			`t.yaml:3:73: sync_items: 5 is more than max_items 4 at 3:58`,
			`t.yaml:4:59: sync_items: 101 is more than max_items 100 by default`,
		}},
		{"negative_max_wait", `functions:
  e: {runtime: go, handler: echo, batch: {max_wait: -1ms}}
`, []string{
			`t.yaml:2:53: max_wait: must not be negative, got -1ms`,
		}},
		{"addresses_and_topics", `server:
  listen: ":99999"
  admin_listen: "[::1]:9090"
  tls: [cert.pem]
kafka:
  brokers: {a: 1}
  embedded: [true]
functions:
  e: {runtime: go, handler: echo, dead_letter: {topic: ".."}, memory: [1]}
  f: {runtime: go, handler: echo, dead_letter: {topic: "a/b"}, timeout: {s: 1}}
triggers:
  - http: {path: /a, function: e, mode: async, async_topic: ""}
  - kafka: {topics: [ok, "", [x]], group: g, function: e}
`, []string{
			`t.yaml:2:11: listen: invalid port "99999" in ":99999" (want 0 to 65535)`,
			`t.yaml:4:8: tls: expected a mapping, got a list`,
			`t.yaml:6:12: brokers: expected a list (or a comma-separated string), got a mapping`,
			`t.yaml:7:13: embedded: expected true or false, got a list`,
			`t.yaml:9:56: topic: invalid topic name ".."`,
			`t.yaml:9:71: memory: expected a size, got a list`,
			`t.yaml:10:56: topic: invalid topic name "a/b" (want letters, digits, '.', '_' and '-')`,
			`t.yaml:10:73: timeout: expected a duration, got a mapping`,
			`t.yaml:13:5: this kafka trigger needs a Kafka cluster: set kafka.brokers, or kafka.embedded: true`,
			`t.yaml:13:26: topics: an item is empty`,
			`t.yaml:13:30: topics: expected a list of strings, got a list in it`,
		}},
		{"line_endings", "\xef\xbb\xbfserver:\r\n  listen: \":8080\"\r\n  bogus: 1\r\nlog: {level: x}\r\n", []string{
			`t.yaml:3:3: unknown key "bogus" (want admin_listen, admin_token, drain_timeout, invoke_api, listen, max_body, max_headers, pidfile, read_timeout or tls)`,
			`t.yaml:4:14: level: unknown log level "x" (want debug, info, warn or error)`,
		}},
		{"columns_count_characters", "log: {format: \"é\", level: x}\n", []string{
			`t.yaml:1:15: format: unknown log format "é" (want json or console)`,
			`t.yaml:1:27: level: unknown log level "x" (want debug, info, warn or error)`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			equalLines(t, problems(t, tc.src, noEnv), tc.want)
		})
	}
}
