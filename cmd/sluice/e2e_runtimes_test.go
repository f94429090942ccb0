package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/sluicehq/sluice/internal/testtool"
)

// needInterpreters skips when python3 or node is missing (and fails in
// CI); .ci/run installs both.
func needInterpreters(t *testing.T) {
	t.Helper()
	testtool.Need(t, "python3", "apt-get install python3")
	testtool.Need(t, "node", "apt-get install nodejs")
}

// sdkClient is the AWS SDK's Lambda client aimed at the gateway.
func sdkClient(url string) *awslambda.Client {
	return awslambda.New(awslambda.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "x", SecretAccessKey: "x", Source: "test"}, nil
		}),
		Retryer:    aws.NopRetryer{},
		HTTPClient: &http.Client{Timeout: 30 * time.Second},
	})
}

func managedConfig(broker string) string {
	return fmt.Sprintf(`
server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0"}
kafka: {embedded: true, embedded_partitions: 2, brokers: ["%s"]}
log: {level: info}
functions:
  py:
    runtime: python3.12
    handler: lambda_function.lambda_handler
    code: plugins/examples/python-hello
    instances: 2
    timeout: 5s
    batch: {max_items: 10, max_wait: 200ms}
    retry: {attempts: 2, backoff: 10ms}
  node:
    runtime: nodejs20.x
    handler: index.handler
    code: plugins/examples/node-hello
    instances: 2
    timeout: 5s
    batch: {max_items: 10, max_wait: 200ms}
    retry: {attempts: 2, backoff: 10ms}
triggers:
  - http:  {method: POST, path: /py, function: py}
  - http:  {method: POST, path: /node, function: node}
  - kafka: {topics: [py-in], group: py, function: py, start: earliest}
  - kafka: {topics: [node-in], group: node, function: node, start: earliest}
`, broker)
}

// TestE2EManagedRuntimes runs the Python and Node.js examples, unchanged
// Lambda handlers, over HTTP, through the AWS SDK's Lambda client and from
// Kafka, on the real binary.
func TestE2EManagedRuntimes(t *testing.T) {
	t.Parallel()
	needInterpreters(t)
	broker := freeAddr(t)
	p := startSluice(t, writeConfig(t, t.TempDir(), managedConfig(broker)))
	sdk := sdkClient(p.http)
	for _, fn := range []string{"py", "node"} {
		t.Run(fn, func(t *testing.T) {
			// HTTP: an API Gateway v2 event in, {statusCode, body} out.
			r := do(t, "POST", p.http+"/"+fn, "application/json", []byte(`{"name":"ann"}`))
			var body map[string]string
			if r.code != 200 || json.Unmarshal(r.body, &body) != nil || body["hello"] != "ann" || r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("POST /%s: %d %q %s", fn, r.code, r.header.Get("Content-Type"), r.body)
			}
			id := r.header.Get("X-Sluice-Request-Id")
			// print / console.log is a log line tagged with the request id;
			// Node's carries Lambda's prefix.
			want := regexp.MustCompile(`^hello from /py$`)
			if fn == "node" {
				want = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\t` + id + "\tINFO\thello from /node$")
			}
			waitFor(t, 10*time.Second, "the function's log line", func() bool {
				for _, l := range p.functionLines(fn, id) {
					if want.MatchString(l) {
						return true
					}
				}
				return false
			})

			// The AWS SDK's Invoke: the payload as it is, the context as
			// Lambda's, the remaining time decreasing within one call.
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := sdk.Invoke(ctx, &awslambda.InvokeInput{
				FunctionName: aws.String(fn), Payload: []byte(`{"name":"sdk","wait_ms":30}`), LogType: types.LogTypeTail,
			})
			if err != nil || out.FunctionError != nil || out.StatusCode != 200 {
				t.Fatalf("Invoke: %v %+v", err, out)
			}
			var got map[string]any
			if err := json.Unmarshal(out.Payload, &got); err != nil || got["hello"] != "sdk" {
				t.Fatalf("payload %s: %v", out.Payload, err)
			}
			fields := map[string]string{"request_id": "", "function_name": fn, "function_version": "$LATEST",
				"invoked_function_arn": "arn:aws:lambda:us-east-1:000000000000:function:" + fn, "memory_limit_in_mb": "128",
				"log_group_name": "/aws/lambda/" + fn, "log_stream_name": "", "remaining_ms": ""}
			if fn == "node" {
				fields = map[string]string{"awsRequestId": "", "functionName": fn, "functionVersion": "$LATEST",
					"invokedFunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:" + fn, "memoryLimitInMB": "128",
					"logGroupName": "/aws/lambda/" + fn, "logStreamName": "", "remainingMs": ""}
			}
			if fn == "node" && got["callbackWaitsForEmptyEventLoop"] != true {
				t.Errorf("callbackWaitsForEmptyEventLoop = %v", got["callbackWaitsForEmptyEventLoop"])
			}
			for k, v := range fields {
				s, _ := got[k].(string)
				switch {
				case k == "remaining_ms" || k == "remainingMs":
					rem, _ := got[k].([]any)
					if len(rem) != 2 || !(rem[0].(float64) > rem[1].(float64)) || rem[0].(float64) > 5000 || rem[1].(float64) <= 0 {
						t.Errorf("remaining time %v: want two readings under 5000 ms, decreasing", got[k])
					}
				case v == "" && s == "", v != "" && s != v:
					t.Errorf("context %s = %v, want %q", k, got[k], v)
				}
			}

			// A thrown error: Lambda's shape, Unhandled.
			out, err = sdk.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String(fn), Payload: []byte(`{"fail":true}`)})
			if err != nil || aws.ToString(out.FunctionError) != "Unhandled" {
				t.Fatalf("Invoke fail: %v %+v", err, out)
			}
			var fe struct {
				ErrorMessage string   `json:"errorMessage"`
				ErrorType    string   `json:"errorType"`
				StackTrace   []string `json:"stackTrace"`
			}
			wantType := map[string]string{"py": "ValueError", "node": "TypeError"}[fn]
			if err := json.Unmarshal(out.Payload, &fe); err != nil || fe.ErrorMessage != "asked to fail" || fe.ErrorType != wantType || len(fe.StackTrace) == 0 {
				t.Fatalf("error payload %s: %v", out.Payload, err)
			}
			if !strings.Contains(strings.Join(fe.StackTrace, "\n"), "plugins/examples/") {
				t.Errorf("stack trace does not name the function's file: %q", fe.StackTrace)
			}

			// Kafka: five records in one topic, the third fails through
			// batchItemFailures and goes to the group's dead-letter topic
			// alone.
			var in bytes.Buffer
			for i := 1; i <= 5; i++ {
				fmt.Fprintf(&in, "{\"n\":%d,\"fail\":%t}\n", i, i == 3)
			}
			cmd := exec.Command(needKcat(t), "-b", broker, "-t", fn+"-in", "-P", "-X", "acks=all")
			cmd.Stdin = &in
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("kcat -P: %v\n%s", err, b)
			}
			var dlq []string
			waitFor(t, 60*time.Second, "the failed record in "+fn+".dlq", func() bool {
				dlq = kcatConsume(t, broker, fn+".dlq")
				return len(dlq) >= 1
			})
			waitFor(t, 30*time.Second, "every record consumed", func() bool {
				return p.metric(fmt.Sprintf(`sluice_kafka_lag_records{group=%q,topic=%q,partition="0"}`, fn, fn+"-in")) == 0 &&
					p.metric(fmt.Sprintf(`sluice_kafka_lag_records{group=%q,topic=%q,partition="1"}`, fn, fn+"-in")) == 0
			})
			dlq = kcatConsume(t, broker, fn+".dlq")
			if len(dlq) != 1 || !strings.Contains(dlq[0], `{\"n\":3,\"fail\":true}`) || !strings.Contains(dlq[0], "BatchItemFailure") {
				t.Errorf("dead letters of %s: %q", fn, dlq)
			}
		})
	}
}

// functionLines returns the function output lines of fn tagged with id.
func (p *proc) functionLines(fn, id string) []string {
	var out []string
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.lines {
		if l != nil && l["source"] == "function" && l["function"] == fn && l["request_id"] == id {
			s, _ := l["message"].(string)
			out = append(out, s)
		}
	}
	return out
}

// kcatConsume reads every record of topic from the start, as JSON lines
// (kcat -J), without waiting for more.
func kcatConsume(t *testing.T, broker, topic string) []string {
	t.Helper()
	cmd := exec.Command(needKcat(t), "-b", broker, "-t", topic, "-C", "-o", "beginning", "-e", "-J", "-q")
	out, err := cmd.Output()
	if err != nil {
		return nil // the topic does not exist yet
	}
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

// TestE2EManagedInitErrors: a handler that cannot be loaded stops serve at
// start with Lambda's error type at the handler key's position — never a
// hang — and validate reports what it can tell without running the code.
func TestE2EManagedInitErrors(t *testing.T) {
	t.Parallel()
	needInterpreters(t)
	dir := t.TempDir()
	files := map[string]string{
		"py/boom.py":     "import no_such_module_anywhere\n\ndef handler(e, c):\n    return e\n",
		"py/nofn.py":     "def other(e, c):\n    return e\n",
		"py/broken.py":   "def handler(e, c)\n    return e\n",
		"node/nofn.mjs":  "export const other = async () => 1;\n",
		"node/throw.cjs": "require('no-such-package-anywhere');\nexports.handler = async () => 1;\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, fn, want string
	}{
		{"python import", "{runtime: python, code: %s/py, handler: boom.handler}", "Runtime.ImportModuleError: Unable to import module 'boom': No module named 'no_such_module_anywhere'"},
		{"python handler", "{runtime: python, code: %s/py, handler: nofn.handler}", "Runtime.HandlerNotFound: Handler 'handler' missing on module 'nofn'"},
		{"node handler", "{runtime: nodejs, code: %s/node, handler: nofn.handler}", "Runtime.HandlerNotFound: nofn.handler is undefined or not exported"},
		{"node import", "{runtime: nodejs, code: %s/node, handler: throw.handler}", "Runtime.ImportModuleError: Error: Cannot find module 'no-such-package-anywhere'"},
		{"python no file", "{runtime: python, code: %s/py, handler: missing.handler}", "handler: no " + dir + "/py/missing.py or"},
		{"node no file", "{runtime: nodejs, code: %s/node, handler: missing.handler}", "handler: no " + dir + "/node/missing.js or"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := "server: {listen: \"127.0.0.1:0\", admin_listen: \"127.0.0.1:0\"}\nfunctions:\n  f: " + fmt.Sprintf(tc.fn, dir) + "\n"
			cfg := filepath.Join(t.TempDir(), "sluice.yaml")
			if err := os.WriteFile(cfg, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			// The handler's column depends on the length of dir.
			col := strings.Index(strings.Split(src, "\n")[2], "handler:") + 1
			where := fmt.Sprintf("%s:3:%d: ", cfg, col)
			start := time.Now()
			cmd := exec.Command(sluiceBin(t), "serve", "-c", cfg)
			cmd.Dir = repo
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			done := make(chan error, 1)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() == 0 {
					t.Fatalf("serve: %v, want a failure", err)
				}
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("serve still running after 30s:\n%s", stderr.String())
			}
			if !strings.Contains(stderr.String(), where) || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("serve said:\n%s\nwant %s… %s", stderr.String(), where, tc.want)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Errorf("serve took %s to fail", d)
			}
		})
	}

	// validate: the handler's file and, for Python, its function and
	// syntax, at the handler key; a missing interpreter at its key.
	src := fmt.Sprintf(`functions:
  a: {runtime: python, code: %[1]s/py, handler: nofn.handler}
  b: {runtime: python, code: %[1]s/py, handler: broken.handler}
  c: {runtime: nodejs, code: %[1]s/node, handler: missing.handler}
  d: {runtime: python, code: %[1]s/nowhere, handler: x.handler}
  e: {runtime: nodejs, code: %[1]s/node, handler: nofn.handler, interpreter: no-such-node}
  f: {runtime: lambda, command: [x], env: {_HANDLER: index.handler}}
  g: {runtime: python, code: %[1]s/py, handler: boom.handler}
`, dir)
	cfg := writeConfig(t, t.TempDir(), src)
	code, out, _ := runSluice(t, nil, "validate", "-c", cfg)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	col := func(line int, key string) string {
		return fmt.Sprintf("%s:%d:%d: ", cfg, line, strings.Index(strings.Split(src, "\n")[line-1], key)+1)
	}
	// The reserved key is the loader's (a file problem): it is reported
	// alone, before the machine checks run.
	if code != 2 || len(lines) != 1 || lines[0] != col(7, "_HANDLER")+"env._HANDLER: reserved: Sluice sets it for the Lambda runtime from the function's handler: key" {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	src = strings.Replace(src, "env: {_HANDLER: index.handler}", "handler: index.handler", 1)
	cfg = writeConfig(t, t.TempDir(), src)
	code, out, _ = runSluice(t, nil, "validate", "-c", cfg)
	lines = strings.Split(strings.TrimSpace(out), "\n")
	wants := []string{
		col(2, "handler:") + "handler: Runtime.HandlerNotFound: Handler 'handler' missing on module 'nofn'",
		col(3, "handler:") + "handler: Runtime.UserCodeSyntaxError: Syntax error in module 'broken'",
		col(4, "handler:") + "handler: no " + dir + "/node/missing.js or",
		col(5, "code:") + "code: folder " + dir + "/nowhere does not exist",
		col(6, "interpreter:") + "interpreter no-such-node: ",
		col(7, "command:") + `command: "x" is not in PATH`,
	}
	if code != 2 || len(lines) != len(wants) {
		t.Fatalf("exit %d, want 2 and %d problems:\n%s", code, len(wants), out)
	}
	for i, w := range wants {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d: %s\nwant prefix %s", i+1, lines[i], w)
		}
	}
}

// TestE2ELambdaHandlerDir runs AWS's bash-bootstrap tutorial as written,
// with handler: and dir: on runtime: lambda.
func TestE2ELambdaHandlerDir(t *testing.T) {
	t.Parallel()
	testtool.Need(t, "curl", "apt-get install curl")
	testtool.Need(t, "bash", "apt-get install bash")
	dir := t.TempDir()
	cfg := writeConfig(t, dir, `
server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0"}
functions:
  tutorial: {runtime: lambda, command: [./bootstrap], handler: function.handler, dir: cmd/sluice/testdata/bash-tutorial}
`)
	if code, out, _ := runSluice(t, nil, "validate", "-c", cfg); code != 0 {
		t.Fatalf("validate: %d %s", code, out)
	}
	p := startSluice(t, cfg)
	r := do(t, "POST", p.http+"/2015-03-31/functions/tutorial/invocations", "application/json", []byte(`{"text":"Hello"}`))
	if r.code != 200 || strings.TrimSpace(string(r.body)) != `Echoing request: '{"text":"Hello"}'` {
		t.Fatalf("invoke: %d %s", r.code, r.body)
	}
}
