package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/sluicehq/sluice/internal/testtool"
	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/plugins/builtin"
	lambdaworker "github.com/sluicehq/sluice/plugins/lambda"
	"github.com/sluicehq/sluice/plugins/process"
)

// The Lambda functions these tests run: the shipped lambda-echo example and
// test functions of the lambda worker, all real aws-lambda-go programs,
// built once per test binary.
var (
	lambdaOnce sync.Once
	lambdaDir  string
	lambdaErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if lambdaDir != "" {
		os.RemoveAll(lambdaDir)
	}
	os.Exit(code)
}

func lambdaBinary(t testing.TB, name string) string {
	t.Helper()
	lambdaOnce.Do(func() {
		lambdaDir, lambdaErr = os.MkdirTemp("", "sluice-gateway-fn-")
		if lambdaErr != nil {
			return
		}
		args := []string{"build", "-o", lambdaDir + string(filepath.Separator), "../plugins/examples/lambda-echo"}
		for _, n := range []string{"env", "panic", "crash", "sleep"} {
			args = append(args, "../plugins/lambda/testdata/fn/"+n)
		}
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			lambdaErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if lambdaErr != nil {
		t.Fatal(lambdaErr)
	}
	return filepath.Join(lambdaDir, name)
}

// startWorkerFunction starts a real invoker over w.
func startWorkerFunction(t testing.TB, name string, w plugins.Worker, cfg invoker.Config) *invoker.Function {
	t.Helper()
	f, err := invoker.New(name, cfg, w, invoker.Deps{Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = f.Close(ctx)
	})
	return f
}

// startLambdaFunction runs a built Lambda function under runtime: lambda,
// its log lines going to tap as cmd/sluice's LogFunc sends them.
func startLambdaFunction(t testing.TB, name, binary string, timeout time.Duration, env map[string]string, logs plugins.LogFunc) *invoker.Function {
	t.Helper()
	pool, err := lambdaworker.New(name, lambdaworker.Config{
		Command: []string{lambdaBinary(t, binary)}, Timeout: timeout, Env: env,
	}, logs)
	if err != nil {
		t.Fatal(err)
	}
	return startWorkerFunction(t, name, pool, invoker.Config{Timeout: timeout, Concurrency: 1})
}

// startServerWith starts a server after setup registered its handlers.
func startServerWith(t testing.TB, cfg Config, routes []Route, setup func(*Server)) *testServer {
	t.Helper()
	ts := &testServer{set: metrics.NewSet(), logs: &syncBuffer{}}
	log := zerolog.New(ts.logs)
	s, err := New(cfg, routes, Deps{Logger: &log, Metrics: ts.set})
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(s)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.s, ts.addr, ts.url = s, ln.Addr().String(), "http://"+ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ts
}

func startLambdaAPI(t testing.TB, cfg Config, fns map[string]*invoker.Function, acfg LambdaAPIConfig, tap *LogTap) *testServer {
	t.Helper()
	api, err := NewLambdaAPI(fns, acfg, tap)
	if err != nil {
		t.Fatal(err)
	}
	return startServerWith(t, cfg, nil, func(s *Server) {
		if err := api.Register(s); err != nil {
			t.Fatal(err)
		}
	})
}

// sdkClient is the AWS SDK for Go v2 Lambda client pointed at url, with
// static credentials and no retries (a retried 429 would hide the 429).
func sdkClient(t testing.TB, url string) *awslambda.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return awslambda.New(awslambda.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "x", SecretAccessKey: "x", Source: "test"}, nil
		}),
		Retryer:    aws.NopRetryer{},
		HTTPClient: &http.Client{Transport: tr, Timeout: 30 * time.Second},
	})
}

func invoke(t testing.TB, c *awslambda.Client, in *awslambda.InvokeInput) (*awslambda.InvokeOutput, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Invoke(ctx, in)
}

func mustInvoke(t testing.TB, c *awslambda.Client, in *awslambda.InvokeInput) *awslambda.InvokeOutput {
	t.Helper()
	out, err := invoke(t, c, in)
	if err != nil {
		t.Fatalf("Invoke %s: %v", aws.ToString(in.FunctionName), err)
	}
	return out
}

func requestIDOf(t testing.TB, out *awslambda.InvokeOutput) string {
	t.Helper()
	id, ok := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata)
	if !ok || !uuidRE.MatchString(id) {
		t.Fatalf("x-amzn-RequestId = %q, want a UUID", id)
	}
	return id
}

type lambdaErrorPayload struct {
	ErrorMessage string   `json:"errorMessage"`
	ErrorType    string   `json:"errorType"`
	StackTrace   []string `json:"stackTrace"`
}

func functionError(t testing.TB, out *awslambda.InvokeOutput) lambdaErrorPayload {
	t.Helper()
	if out.StatusCode != 200 || aws.ToString(out.FunctionError) != "Unhandled" {
		t.Fatalf("status %d, FunctionError %q, want 200 and Unhandled (payload %s)", out.StatusCode, aws.ToString(out.FunctionError), out.Payload)
	}
	var e lambdaErrorPayload
	if err := json.Unmarshal(out.Payload, &e); err != nil {
		t.Fatalf("error payload %s: %v", out.Payload, err)
	}
	return e
}

func decodeLogResult(t testing.TB, out *awslambda.InvokeOutput) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(aws.ToString(out.LogResult))
	if err != nil {
		t.Fatalf("LogResult %q: %v", aws.ToString(out.LogResult), err)
	}
	if len(b) > TailSize {
		t.Fatalf("LogResult holds %d bytes, more than %d", len(b), TailSize)
	}
	return string(b)
}

// reportLine is Lambda's REPORT line, Init Duration after a cold start.
var reportLine = regexp.MustCompile(`(?m)^REPORT RequestId: \S+ Duration: \d+\.\d\d ms Billed Duration: \d+ ms Memory Size: \d+ MB Max Memory Used: \d+ MB( Init Duration: \d+\.\d\d ms)?$`)

// checkTailFrame checks Lambda's START, END and REPORT lines of id.
func checkTailFrame(t testing.TB, log, id string) {
	t.Helper()
	for _, want := range []string{
		"START RequestId: " + id + " Version: $LATEST\n",
		"END RequestId: " + id + "\n",
		"REPORT RequestId: " + id + " Duration: ",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log tail lacks %q:\n%s", want, log)
		}
	}
	if !reportLine.MatchString(log) || strings.Contains(log, "\t") {
		t.Errorf("log tail has no REPORT line as Lambda writes it:\n%q", log)
	}
}

func TestLambdaAPIBuiltin(t *testing.T) {
	sinkFile := filepath.Join(t.TempDir(), "sink.jsonl")
	fns := map[string]*invoker.Function{
		"echo":  startFunction(t, "echo", builtinHandler(t, "echo"), invoker.Config{}, nil),
		"noop":  startFunction(t, "noop", builtinHandler(t, "noop"), invoker.Config{}, nil),
		"fail":  startFunction(t, "fail", builtinHandler(t, "fail"), invoker.Config{}, nil),
		"sink":  startFunction(t, "sink", builtinHandler(t, "sink"), invoker.Config{}, map[string]string{"SINK_FILE": sinkFile}),
		"sleep": startFunction(t, "sleep", builtinHandler(t, "sleep"), invoker.Config{Timeout: 50 * time.Millisecond}, nil),
		"plain": startFunction(t, "plain", func(context.Context, *plugins.Event) ([]byte, error) {
			return nil, errors.New("plain failure")
		}, invoker.Config{}, nil),
		"panics": startFunction(t, "panics", func(context.Context, *plugins.Event) ([]byte, error) {
			panic("handler panicked")
		}, invoker.Config{}, nil),
	}
	ts := startLambdaAPI(t, Config{}, fns, LambdaAPIConfig{}, NewLogTap())
	c := sdkClient(t, ts.url)

	t.Run("RequestResponse echo", func(t *testing.T) {
		cc := base64.StdEncoding.EncodeToString([]byte(`{"custom":{"k":"v"}}`))
		payload := []byte(`{"a": [1, 2.50, "x"], "b": null}`)
		out := mustInvoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("echo"), Payload: payload, ClientContext: aws.String(cc)})
		id := requestIDOf(t, out)
		if out.StatusCode != 200 || out.FunctionError != nil || aws.ToString(out.ExecutedVersion) != "$LATEST" {
			t.Fatalf("status %d, FunctionError %v, ExecutedVersion %q", out.StatusCode, out.FunctionError, aws.ToString(out.ExecutedVersion))
		}
		var ev plugins.Event
		if err := json.Unmarshal(out.Payload, &ev); err != nil {
			t.Fatalf("echo payload %s: %v", out.Payload, err)
		}
		if ev.Type != plugins.TypeInvoke || ev.ID != id || ev.Source != "/sluice/invoke/echo" || ev.Time.IsZero() {
			t.Errorf("envelope = %+v, want type %s, id %s, source /sluice/invoke/echo", ev, plugins.TypeInvoke, id)
		}
		if !bytes.Equal(ev.Data, payload) {
			t.Errorf("data = %s, want the payload exactly: %s", ev.Data, payload)
		}
		if got := ev.Extensions[ClientContextExtension]; got != cc {
			t.Errorf("client context extension = %v, want %q", got, cc)
		}
	})

	t.Run("names", func(t *testing.T) {
		for _, tt := range []struct {
			name, qualifier string
		}{
			{"echo", ""},
			{"echo", "$LATEST"},
			{"echo:$LATEST", ""},
			{"echo:$LATEST", "$LATEST"},
			{"123456789012:function:echo", ""},
			{"arn:aws:lambda:eu-west-1:123456789012:function:echo", ""},
			{"arn:aws:lambda:us-east-1:000000000000:function:echo:$LATEST", ""},
		} {
			in := &awslambda.InvokeInput{FunctionName: aws.String(tt.name), Payload: []byte(`{}`)}
			if tt.qualifier != "" {
				in.Qualifier = aws.String(tt.qualifier)
			}
			if out := mustInvoke(t, c, in); out.StatusCode != 200 || out.FunctionError != nil {
				t.Errorf("%s (qualifier %q): status %d, %v", tt.name, tt.qualifier, out.StatusCode, out.FunctionError)
			}
		}
	})

	t.Run("null output", func(t *testing.T) {
		out := mustInvoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("noop")})
		if out.StatusCode != 200 || string(out.Payload) != "null" {
			t.Fatalf("status %d, payload %q, want 200 null", out.StatusCode, out.Payload)
		}
	})

	t.Run("function errors", func(t *testing.T) {
		e := functionError(t, mustInvoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("fail"), Payload: []byte(`{"error":"custom"}`)}))
		if e.ErrorMessage != "custom" || e.ErrorType != "RequestedFailure" {
			t.Errorf("fail: %+v", e)
		}
		e = functionError(t, mustInvoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("plain")}))
		if e.ErrorMessage != "plain failure" || e.ErrorType != "errorString" {
			t.Errorf("plain error: %+v, want errorType errorString as aws-lambda-go names it", e)
		}
		e = functionError(t, mustInvoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("panics")}))
		if e.ErrorMessage != "handler panicked" || e.ErrorType != "Panic" || len(e.StackTrace) == 0 {
			t.Errorf("panic: %+v", e)
		}
		out := mustInvoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("sleep"), Payload: []byte(`{"ms":5000}`)})
		id := requestIDOf(t, out)
		e = functionError(t, out)
		if e.ErrorType != "Sandbox.Timedout" || e.ErrorMessage != "RequestId: "+id+" Error: Task timed out after 0.05 seconds" {
			t.Errorf("timeout: %+v", e)
		}
	})

	t.Run("Event", func(t *testing.T) {
		out := mustInvoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("sink"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"n":7}`)})
		id := requestIDOf(t, out)
		if out.StatusCode != 202 || len(out.Payload) != 0 {
			t.Fatalf("status %d, payload %q, want 202 and nothing", out.StatusCode, out.Payload)
		}
		var got plugins.Event
		pollUntil(t, func() bool {
			b, _ := os.ReadFile(sinkFile)
			for line := range bytes.Lines(b) {
				var ev plugins.Event
				if json.Unmarshal(line, &ev) == nil && ev.ID == id {
					got = ev
					return true
				}
			}
			return false
		})
		if got.Type != plugins.TypeInvoke || string(got.Data) != `{"n":7}` {
			t.Fatalf("sink got %+v", got)
		}
	})

	t.Run("DryRun", func(t *testing.T) {
		out := mustInvoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: types.InvocationTypeDryRun})
		if out.StatusCode != 204 {
			t.Fatalf("status %d, want 204", out.StatusCode)
		}
		_, err := invoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("nope"), InvocationType: types.InvocationTypeDryRun})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Fatalf("DryRun of an unknown function: %v, want ResourceNotFoundException", err)
		}
	})

	t.Run("Tail", func(t *testing.T) {
		out := mustInvoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("echo"), LogType: types.LogTypeTail, Payload: []byte(`{}`)})
		checkTailFrame(t, decodeLogResult(t, out), requestIDOf(t, out))
		out = mustInvoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{}`)})
		if out.LogResult != nil {
			t.Errorf("LogResult without Tail: %q", aws.ToString(out.LogResult))
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			in   *awslambda.InvokeInput
			code string
			typ  any
			msg  string
		}{
			{"unknown function", &awslambda.InvokeInput{FunctionName: aws.String("nope")},
				"ResourceNotFoundException", new(*types.ResourceNotFoundException),
				"Function not found: arn:aws:lambda:us-east-1:000000000000:function:nope"},
			{"unknown qualifier", &awslambda.InvokeInput{FunctionName: aws.String("echo"), Qualifier: aws.String("7")},
				"ResourceNotFoundException", new(*types.ResourceNotFoundException),
				"Function not found: arn:aws:lambda:us-east-1:000000000000:function:echo:7"},
			{"unknown qualifier in ARN", &awslambda.InvokeInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:1:function:echo:live")},
				"ResourceNotFoundException", new(*types.ResourceNotFoundException), "function:echo:live"},
			{"qualifiers disagree", &awslambda.InvokeInput{FunctionName: aws.String("echo:$LATEST"), Qualifier: aws.String("1")},
				"InvalidParameterValueException", new(*types.InvalidParameterValueException), "does not match"},
			{"not JSON", &awslambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"a":`)},
				"InvalidRequestContentException", new(*types.InvalidRequestContentException), "Could not parse request body into json"},
			{"Event not JSON", &awslambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`hello`)},
				"InvalidRequestContentException", new(*types.InvalidRequestContentException), "Could not parse request body into json"},
			{"bad client context", &awslambda.InvokeInput{FunctionName: aws.String("echo"), ClientContext: aws.String("not base64!")},
				"InvalidRequestContentException", new(*types.InvalidRequestContentException), "Client context"},
			{"client context not an object", &awslambda.InvokeInput{FunctionName: aws.String("echo"), ClientContext: aws.String(base64.StdEncoding.EncodeToString([]byte(`[1]`)))},
				"InvalidRequestContentException", new(*types.InvalidRequestContentException), "Client context"},
			{"bad invocation type", &awslambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: "Later"},
				"ValidationException", nil, "invocationType"},
			{"bad log type", &awslambda.InvokeInput{FunctionName: aws.String("echo"), LogType: "All"},
				"ValidationException", nil, "logType"},
			{"bad name", &awslambda.InvokeInput{FunctionName: aws.String("a:b:c")},
				"ValidationException", nil, "functionName"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := invoke(t, c, tt.in)
				var ae smithy.APIError
				if !errors.As(err, &ae) || ae.ErrorCode() != tt.code || !strings.Contains(ae.ErrorMessage(), tt.msg) {
					t.Fatalf("err = %v, want %s with a message containing %q", err, tt.code, tt.msg)
				}
				if tt.typ != nil && !errors.As(err, tt.typ) {
					t.Fatalf("err = %T %v, want the SDK's %T", err, err, tt.typ)
				}
				var re interface{ ServiceRequestID() string }
				if !errors.As(err, &re) || !uuidRE.MatchString(re.ServiceRequestID()) {
					t.Errorf("error without an x-amzn-RequestId: %v", err)
				}
			})
		}
	})

	t.Run("other operations", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := c.ListAliases(ctx, &awslambda.ListAliasesInput{FunctionName: aws.String("echo")})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != "UnknownOperationException" {
			t.Fatalf("ListAliases: %v, want UnknownOperationException", err)
		}
	})
}

// blocker is a function that holds every event until released.
type blocker struct {
	started chan string
	release chan struct{}
	once    sync.Once
}

func newBlocker(t testing.TB) *blocker {
	b := &blocker{started: make(chan string, 64), release: make(chan struct{})}
	t.Cleanup(b.open)
	return b
}

func (b *blocker) open() { b.once.Do(func() { close(b.release) }) }

func (b *blocker) handle(ctx context.Context, ev *plugins.Event) ([]byte, error) {
	b.started <- ev.ID
	select {
	case <-b.release:
		return []byte(`"done"`), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func TestLambdaAPIThrottle(t *testing.T) {
	b := newBlocker(t)
	fn := startFunction(t, "busy", b.handle, invoker.Config{
		Concurrency: 1, Queue: 1, Timeout: 20 * time.Second, Batch: invoker.BatchConfig{MaxItems: 1},
	}, nil)
	ts := startLambdaAPI(t, Config{RetryAfter: 2 * time.Second}, map[string]*invoker.Function{"busy": fn}, LambdaAPIConfig{}, nil)
	c := sdkClient(t, ts.url)

	event := func() (*awslambda.InvokeOutput, error) {
		return invoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("busy"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{}`)})
	}
	if out, err := event(); err != nil || out.StatusCode != 202 {
		t.Fatalf("first event: %v", err)
	}
	<-b.started // it runs, holding the only slot
	if out, err := event(); err != nil || out.StatusCode != 202 {
		t.Fatalf("second event: %v", err)
	}
	// The queue of one is full now.
	check := func(what string, err error) {
		t.Helper()
		var tm *types.TooManyRequestsException
		if !errors.As(err, &tm) {
			t.Fatalf("%s: %v, want TooManyRequestsException", what, err)
		}
		if aws.ToString(tm.RetryAfterSeconds) != "2" || tm.Reason != types.ThrottleReasonReservedFunctionConcurrentInvocationLimitExceeded ||
			aws.ToString(tm.Type) != "User" || tm.ErrorMessage() != "Rate Exceeded." {
			t.Fatalf("%s: %+v", what, tm)
		}
	}
	_, err := event()
	check("third event", err)
	_, err = invoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("busy"), Payload: []byte(`{}`)})
	check("RequestResponse", err)

	b.open()
	<-b.started
	pollUntil(t, func() bool { d, _ := fn.Load(); return d == 0 })
	out := mustInvoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("busy"), Payload: []byte(`{}`)})
	if string(out.Payload) != `"done"` {
		t.Fatalf("after the release: %s", out.Payload)
	}
}

func TestLambdaAPIPayloadLimits(t *testing.T) {
	echo := startFunction(t, "echo", builtinHandler(t, "echo"), invoker.Config{}, nil)
	ts := startLambdaAPI(t, Config{MaxBody: 8 << 10}, map[string]*invoker.Function{"echo": echo},
		LambdaAPIConfig{MaxPayload: 4 << 10, MaxEventPayload: 1 << 10}, nil)
	c := sdkClient(t, ts.url)
	payload := func(n int) []byte { return []byte(`"` + strings.Repeat("x", n-2) + `"`) }

	for _, tt := range []struct {
		name string
		typ  types.InvocationType
		n    int
		msg  string
	}{
		{"RequestResponse at the limit", types.InvocationTypeRequestResponse, 4 << 10, ""},
		{"RequestResponse over", types.InvocationTypeRequestResponse, 4<<10 + 1, "Request must be smaller than 4096 bytes for the InvokeFunction operation"},
		{"Event at the limit", types.InvocationTypeEvent, 1 << 10, ""},
		{"Event over", types.InvocationTypeEvent, 1<<10 + 1, "1025 byte payload is too large for the Event invocation type (limit 1024 bytes)"},
		{"over max_body", types.InvocationTypeRequestResponse, 16 << 10, "Request must be smaller than 8192 bytes for the InvokeFunction operation"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := invoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("echo"), InvocationType: tt.typ, Payload: payload(tt.n)})
			if tt.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != "RequestEntityTooLargeException" || ae.ErrorMessage() != tt.msg {
				t.Fatalf("err = %v, want RequestEntityTooLargeException %q", err, tt.msg)
			}
			var re interface{ HTTPStatusCode() int }
			if !errors.As(err, &re) || re.HTTPStatusCode() != 413 {
				t.Fatalf("err = %v, want status 413", err)
			}
		})
	}
}

func TestLambdaAPIResponseTooLarge(t *testing.T) {
	big := startFunction(t, "big", func(_ context.Context, ev *plugins.Event) ([]byte, error) {
		var n int
		if err := json.Unmarshal(ev.Data, &n); err != nil {
			return nil, err
		}
		return []byte(`"` + strings.Repeat("x", n-2) + `"`), nil
	}, invoker.Config{}, nil)
	ts := startLambdaAPI(t, Config{}, map[string]*invoker.Function{"big": big}, LambdaAPIConfig{MaxPayload: 4 << 10}, nil)
	c := sdkClient(t, ts.url)
	if out := mustInvoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("big"), Payload: []byte(`4096`)}); len(out.Payload) != 4096 || out.FunctionError != nil {
		t.Fatalf("output at the limit: %d bytes, %v", len(out.Payload), out.FunctionError)
	}
	e := functionError(t, mustInvoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("big"), Payload: []byte(`4097`)}))
	if e.ErrorType != "Function.ResponseSizeTooLarge" || e.ErrorMessage != "Response payload size (4097 bytes) exceeded maximum allowed payload size (4096 bytes)." {
		t.Fatalf("output over the limit: %+v", e)
	}
}

func TestLambdaAPIClosedFunction(t *testing.T) {
	f, err := invoker.New("gone", invoker.Config{}, builtin.NewWorker("gone", builtinHandler(t, "echo"), nil), invoker.Deps{Metrics: metrics.NewSet()})
	if err != nil {
		t.Fatal(err)
	}
	ts := startLambdaAPI(t, Config{}, map[string]*invoker.Function{"gone": f}, LambdaAPIConfig{}, nil)
	_, err = invoke(t, sdkClient(t, ts.url), &awslambda.InvokeInput{FunctionName: aws.String("gone")})
	var se *types.ServiceException
	if !errors.As(err, &se) || aws.ToString(se.Type) != "Service" {
		t.Fatalf("err = %v, want ServiceException", err)
	}
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &re) || re.HTTPStatusCode() != 503 {
		t.Fatalf("err = %v, want 503", err)
	}
}

func TestLambdaAPIRuntimeLambda(t *testing.T) {
	tap := NewLogTap()
	rec := &lineRecorder{tap: tap}
	fns := map[string]*invoker.Function{
		"lambda-echo": startLambdaFunction(t, "lambda-echo", "lambda-echo", 5*time.Second, map[string]string{"ECHO_LOG": "1"}, rec.log),
		"env":         startLambdaFunction(t, "env", "env", 5*time.Second, nil, rec.log),
		"panic":       startLambdaFunction(t, "panic", "panic", 5*time.Second, nil, rec.log),
		"crash":       startLambdaFunction(t, "crash", "crash", 5*time.Second, nil, rec.log),
		"sleep":       startLambdaFunction(t, "sleep", "sleep", 200*time.Millisecond, nil, rec.log),
	}
	ts := startLambdaAPI(t, Config{}, fns, LambdaAPIConfig{TailSettle: -1}, tap)
	c := sdkClient(t, ts.url)

	t.Run("payload unchanged", func(t *testing.T) {
		payload := []byte(`{"deep":{"list":[1,2,{"x":"ü\u2028"}]},"n":1.5e3}`)
		out := mustInvoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("lambda-echo"), Payload: payload})
		if out.StatusCode != 200 || out.FunctionError != nil || !bytes.Equal(out.Payload, payload) {
			t.Fatalf("status %d, %v, payload %s, want the payload back", out.StatusCode, out.FunctionError, out.Payload)
		}
	})

	t.Run("Tail", func(t *testing.T) {
		payload := []byte(`{"hello":"tail"}`)
		out := mustInvoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("lambda-echo"), Payload: payload, LogType: types.LogTypeTail})
		id := requestIDOf(t, out)
		log := decodeLogResult(t, out)
		checkTailFrame(t, log, id)
		if want := fmt.Sprintf("echo %s: %d bytes\n", id, len(payload)); !strings.Contains(log, want) {
			t.Fatalf("log tail lacks the function's line %q:\n%s", want, log)
		}
		if strings.Index(log, "START") > strings.Index(log, "echo ") || strings.Index(log, "echo ") > strings.Index(log, "END") {
			t.Fatalf("lines out of order:\n%s", log)
		}
	})

	t.Run("context", func(t *testing.T) {
		cc := base64.StdEncoding.EncodeToString([]byte(`{"custom":{"tenant":"t1"},"env":{},"client":{}}`))
		out := mustInvoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("env"), ClientContext: aws.String(cc)})
		var a struct {
			RequestID     string            `json:"request_id"`
			FunctionARN   string            `json:"function_arn"`
			ClientContext map[string]string `json:"client_context"`
		}
		if err := json.Unmarshal(out.Payload, &a); err != nil {
			t.Fatalf("%s: %v", out.Payload, err)
		}
		if a.RequestID != requestIDOf(t, out) || a.ClientContext["tenant"] != "t1" || !strings.HasSuffix(a.FunctionARN, ":function:env") {
			t.Fatalf("the runtime saw %+v", a)
		}
	})

	t.Run("Event", func(t *testing.T) {
		out := mustInvoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("lambda-echo"), InvocationType: types.InvocationTypeEvent, Payload: []byte(`{"async":true}`)})
		id := requestIDOf(t, out)
		if out.StatusCode != 202 {
			t.Fatalf("status %d", out.StatusCode)
		}
		want := fmt.Sprintf("echo %s: 14 bytes", id)
		pollUntil(t, func() bool { return rec.has(want) })
	})

	t.Run("panic", func(t *testing.T) {
		e := functionError(t, mustInvoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("panic"), Payload: []byte(`{"panic":true}`)}))
		if !strings.Contains(e.ErrorMessage, "boom: asked to panic") || e.ErrorType == "" || len(e.StackTrace) == 0 {
			t.Fatalf("panic error: %+v", e)
		}
	})

	t.Run("runtime exit", func(t *testing.T) {
		out := mustInvoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("crash"), Payload: []byte(`{"crash":true}`), LogType: types.LogTypeTail})
		id := requestIDOf(t, out)
		e := functionError(t, out)
		if e.ErrorType != "Runtime.ExitError" || !strings.HasPrefix(e.ErrorMessage, "RequestId: "+id+" Error: Runtime exited") {
			t.Fatalf("crash error: %+v", e)
		}
		if log := decodeLogResult(t, out); !strings.Contains(log, "about to crash\n") {
			t.Fatalf("log tail lacks the crash line:\n%s", log)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		out := mustInvoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("sleep"), Payload: []byte(`{"ms":10000}`), LogType: types.LogTypeTail})
		id := requestIDOf(t, out)
		e := functionError(t, out)
		if e.ErrorType != "Sandbox.Timedout" || e.ErrorMessage != "RequestId: "+id+" Error: Task timed out after 0.20 seconds" {
			t.Fatalf("timeout error: %+v", e)
		}
		if log := decodeLogResult(t, out); !strings.Contains(log, "Task timed out after 0.20 seconds") {
			t.Fatalf("log tail lacks the timeout line:\n%s", log)
		}
	})
}

// lineRecorder is a LogFunc as cmd/sluice builds one: it keeps every line
// (where cmd logs it) and passes it to the LogTap.
type lineRecorder struct {
	tap   *LogTap
	mu    sync.Mutex
	lines []string
}

func (r *lineRecorder) log(id string, line []byte) {
	r.mu.Lock()
	r.lines = append(r.lines, id+" "+string(line))
	r.mu.Unlock()
	r.tap.Log(id, line)
}

func (r *lineRecorder) has(s string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}

func TestLambdaAPIProcessTail(t *testing.T) {
	testtool.Need(t, "python3", "Debian package python3")
	tap := NewLogTap()
	pool, err := process.New("hello-py", process.Config{Command: []string{"python3", "../plugins/examples/hello.py"}}, tap.Log)
	if err != nil {
		t.Fatal(err)
	}
	fn := startWorkerFunction(t, "hello-py", pool, invoker.Config{Timeout: 10 * time.Second})
	// The process's stderr line may reach the tap after its result: the
	// settle wait is what catches it (without one this test fails). 200ms,
	// ten times the default, keeps it steady on a loaded machine.
	ts := startLambdaAPI(t, Config{}, map[string]*invoker.Function{"hello-py": fn}, LambdaAPIConfig{TailSettle: 200 * time.Millisecond}, tap)
	c := sdkClient(t, ts.url)
	for range 3 {
		out := mustInvoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("hello-py"), Payload: []byte(`{"name":"tail"}`), LogType: types.LogTypeTail})
		if string(out.Payload) != `{"hello":"tail"}` {
			t.Fatalf("payload %s", out.Payload)
		}
		id := requestIDOf(t, out)
		log := decodeLogResult(t, out)
		checkTailFrame(t, log, id)
		if want := "hello: batch " + id + ": 1 events\n"; !strings.Contains(log, want) {
			t.Fatalf("log tail lacks the process's stderr line %q:\n%s", want, log)
		}
	}
}

// TestAWSCLI invokes functions with the AWS CLI, as a user would.
func TestAWSCLI(t *testing.T) {
	awsBin := testtool.Need(t, "aws", "the AWS CLI, Debian package awscli")
	fns := map[string]*invoker.Function{
		"echo": startFunction(t, "echo", builtinHandler(t, "echo"), invoker.Config{}, nil),
		"fail": startFunction(t, "fail", builtinHandler(t, "fail"), invoker.Config{}, nil),
	}
	ts := startLambdaAPI(t, Config{}, fns, LambdaAPIConfig{}, NewLogTap())
	dir := t.TempDir()
	// The CLI gets the test's environment (its launcher may need it) without
	// any AWS_ setting, then fake credentials, a region, empty config files
	// and no retries: it must never need, or find, real credentials.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE="+filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "credentials"),
		"AWS_MAX_ATTEMPTS=1", "AWS_RETRY_MODE=standard", "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=",
	)
	run := func(args ...string) (string, string, error) {
		cmd := exec.Command(awsBin, args...)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	version, verr, err := run("--version")
	if err != nil {
		t.Fatalf("aws --version: %v: %s", err, verr)
	}
	version += verr // CLI v1 prints its version on stderr
	lambdaInvoke := func(fn, payload, outFile string, extra ...string) (string, string, error) {
		args := []string{"lambda", "invoke", "--endpoint-url", ts.url, "--function-name", fn, "--payload", payload}
		if strings.HasPrefix(version, "aws-cli/2") {
			args = append(args, "--cli-binary-format", "raw-in-base64-out")
		}
		args = append(args, extra...)
		return run(append(args, outFile)...)
	}

	outFile := filepath.Join(dir, "out.json")
	stdout, stderr, err := lambdaInvoke("echo", `{"via":"cli"}`, outFile, "--log-type", "Tail")
	if err != nil {
		t.Fatalf("aws lambda invoke echo: %v\nstdout %s\nstderr %s", err, stdout, stderr)
	}
	var res struct {
		StatusCode      int
		ExecutedVersion string
		FunctionError   string
		LogResult       string
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("aws output %q: %v", stdout, err)
	}
	if res.StatusCode != 200 || res.ExecutedVersion != "$LATEST" || res.FunctionError != "" {
		t.Fatalf("aws output %+v", res)
	}
	if log, err := base64.StdEncoding.DecodeString(res.LogResult); err != nil || !strings.Contains(string(log), "START RequestId: ") {
		t.Fatalf("LogResult %q: %v", res.LogResult, err)
	}
	b, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	var ev plugins.Event
	if err := json.Unmarshal(b, &ev); err != nil || ev.Type != plugins.TypeInvoke || string(ev.Data) != `{"via":"cli"}` {
		t.Fatalf("out.json %s: %v", b, err)
	}

	stdout, stderr, err = lambdaInvoke("fail", `{"error":"from the cli"}`, outFile)
	if err != nil {
		t.Fatalf("aws lambda invoke fail: %v\nstdout %s\nstderr %s", err, stdout, stderr)
	}
	if !strings.Contains(stdout, `"FunctionError": "Unhandled"`) {
		t.Fatalf("aws output lacks the function error: %s", stdout)
	}
	if b, _ := os.ReadFile(outFile); !strings.Contains(string(b), `"errorMessage":"from the cli"`) {
		t.Fatalf("out.json %s", b)
	}

	_, stderr, err = lambdaInvoke("nope", `{}`, outFile)
	if err == nil || !strings.Contains(stderr, "ResourceNotFoundException") || !strings.Contains(stderr, "Function not found") {
		t.Fatalf("unknown function: err %v, stderr %s", err, stderr)
	}
}

func TestParseFunctionName(t *testing.T) {
	for _, tt := range []struct {
		in, name, qual string
		ok             bool
	}{
		{"echo", "echo", "", true},
		{"echo:$LATEST", "echo", "$LATEST", true},
		{"echo:7", "echo", "7", true},
		{"123456789012:function:echo", "echo", "", true},
		{"123456789012:function:echo:live", "echo", "live", true},
		{"arn:aws:lambda:us-east-1:123456789012:function:echo", "echo", "", true},
		{"arn:aws-cn:lambda:cn-north-1:123456789012:function:echo:$LATEST", "echo", "$LATEST", true},
		{"", "", "", false},
		{":x", "", "", false},
		{"echo:", "", "", false},
		{"a:b:c", "", "", false},
		{"arn:aws:s3:::bucket", "", "", false},
		{"arn:aws:lambda:us-east-1:1:layer:x", "", "", false},
		{"arn:aws:lambda:us-east-1:1:function:", "", "", false},
		{"1:function:echo:a:b", "", "", false},
	} {
		name, qual, ok := parseFunctionName(tt.in)
		if name != tt.name || qual != tt.qual || ok != tt.ok {
			t.Errorf("parseFunctionName(%q) = %q, %q, %v; want %q, %q, %v", tt.in, name, qual, ok, tt.name, tt.qual, tt.ok)
		}
	}
}

func TestAppendFunctionError(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"function error", &plugins.FunctionError{Message: "m", Type: "T", Trace: []string{"a", "b"}},
			`{"errorMessage":"m","errorType":"T","stackTrace":["a","b"]}`},
		{"no type", &plugins.FunctionError{Message: "m"}, `{"errorMessage":"m"}`},
		{"timeout", &invoker.TimeoutError{After: 1500 * time.Millisecond},
			`{"errorMessage":"RequestId: ID Error: Task timed out after 1.50 seconds","errorType":"Sandbox.Timedout"}`},
		{"worker", &invoker.WorkerError{Err: errors.New("process exited: exit status 3")},
			`{"errorMessage":"RequestId: ID Error: process exited: exit status 3","errorType":"Runtime.ExitError"}`},
		{"worker with a function error", &invoker.WorkerError{Err: &plugins.FunctionError{Type: "Runtime.ExitError", Message: "RequestId: ID Error: Runtime exited"}},
			`{"errorMessage":"RequestId: ID Error: Runtime exited","errorType":"Runtime.ExitError"}`},
		{"Go error", errors.New("x \"quoted\""), `{"errorMessage":"x \"quoted\"","errorType":"errorString"}`},
		{"wrapped Go error", fmt.Errorf("ctx: %w", os.ErrNotExist), `{"errorMessage":"ctx: file does not exist","errorType":"wrapError"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := appendFunctionError(nil, "ID", tt.err)
			if string(got) != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Fatal("not JSON")
			}
		})
	}
}

func TestLogTap(t *testing.T) {
	tap := NewLogTap()
	tap.Log("nobody", []byte("dropped")) // nothing watched: a no-op

	w := tap.watch("a")
	if w == nil || tap.watch("a") != nil {
		t.Fatal("watch: want one watch per id")
	}
	tap.Log("b", []byte("not mine"))
	tap.Log("a", []byte("one"))
	tap.Log("", []byte("untagged"))
	tap.Log("a", []byte("two"))
	if got := string(tap.collect("a", w)); got != "one\ntwo\n" {
		t.Fatalf("collected %q", got)
	}
	if tap.watching.Load() != 0 || len(tap.watches) != 0 {
		t.Fatal("collect left the watch")
	}

	// The ring keeps the last TailSize bytes exactly, across wraps and
	// lines longer than the ring.
	for _, sizes := range [][]int{{10, 20}, {TailSize - 1}, {TailSize}, {TailSize + 1}, {3000, 3000, 3000}, {5 * TailSize, 7}, {1, 5 * TailSize}} {
		w := tap.watch("r")
		var all []byte
		for i, n := range sizes {
			line := bytes.Repeat([]byte{byte('a' + i)}, n)
			line[0] = '<'
			line[n-1] = '>'
			tap.Log("r", line)
			all = append(append(all, line...), '\n')
		}
		if got, want := tap.collect("r", w), all[max(0, len(all)-TailSize):]; !bytes.Equal(got, want) {
			t.Fatalf("sizes %v: kept %d bytes, want the last %d", sizes, len(got), len(want))
		}
	}

	// At most maxWatches at once.
	for i := range maxWatches {
		if tap.watch(fmt.Sprint(i)) == nil {
			t.Fatalf("watch %d refused", i)
		}
	}
	if tap.watch("one too many") != nil {
		t.Fatal("watch beyond maxWatches")
	}

	var nilTap *LogTap
	nilTap.Log("a", []byte("x"))
	if nilTap.watch("a") != nil || nilTap.collect("a", nil) != nil {
		t.Fatal("a nil LogTap must do nothing")
	}
}

func TestLogTapConcurrent(t *testing.T) {
	tap := NewLogTap()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			id := fmt.Sprint("req-", g)
			for round := range 50 {
				w := tap.watch(id)
				for i := range 20 {
					tap.Log(id, fmt.Appendf(nil, "%d %d", round, i))
					tap.Log("other", []byte("noise"))
				}
				sc := bufio.NewScanner(bytes.NewReader(tap.collect(id, w)))
				n := 0
				for sc.Scan() {
					if want := fmt.Sprintf("%d %d", round, n); sc.Text() != want {
						t.Errorf("line %q, want %q", sc.Text(), want)
						return
					}
					n++
				}
				if n != 20 {
					t.Errorf("%d lines, want 20", n)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestLogTapUnwatchedAllocs(t *testing.T) {
	tap := NewLogTap()
	line := []byte("a log line")
	if n := testing.AllocsPerRun(1000, func() { tap.Log("id", line) }); n != 0 {
		t.Fatalf("Log with nothing watched allocates %v times", n)
	}
}

func BenchmarkLogTapUnwatched(b *testing.B) {
	tap := NewLogTap()
	line := []byte("a log line of ordinary length, as a function writes one")
	b.ReportAllocs()
	for b.Loop() {
		tap.Log("0f8fad5b-d9cb-469f-a165-70867728950e", line)
	}
}

func BenchmarkLogTapWatched(b *testing.B) {
	tap := NewLogTap()
	tap.watch("0f8fad5b-d9cb-469f-a165-70867728950e")
	line := []byte("a log line of ordinary length, as a function writes one")
	b.ReportAllocs()
	for b.Loop() {
		tap.Log("0f8fad5b-d9cb-469f-a165-70867728950e", line)
	}
}

func TestLastBytes(t *testing.T) {
	s := []byte("aé€😀z")
	for n := 0; n <= len(s)+1; n++ {
		got := lastBytes(s, n)
		if len(got) > n || !bytes.HasSuffix(s, got) || !utf8Valid(got) {
			t.Errorf("lastBytes(%q, %d) = %q", s, n, got)
		}
	}
}

func utf8Valid(b []byte) bool { return strings.ToValidUTF8(string(b), "\uFFFD") == string(b) }

// FuzzLambdaInvoke sends arbitrary invoke requests through the server: every
// answer must carry x-amzn-RequestId, be one the API documents, and an
// error must be in Lambda's shape; nothing may panic.
func FuzzLambdaInvoke(f *testing.F) {
	f.Add("echo", "", "", "", "", []byte(`{"a":1}`))
	f.Add("arn:aws:lambda:us-east-1:1:function:echo:$LATEST", "$LATEST", "Event", "Tail", "", []byte(`[]`))
	f.Add("1:function:echo", "", "DryRun", "None", "e30=", []byte(``))
	f.Add("echo:1", "2", "RequestResponse", "Tail", "eyJhIjoxfQ==", []byte(`{`))
	f.Add("nope", "", "Later", "All", "!!", []byte("\xff"))
	echo := startFunction(f, "echo", builtinHandler(f, "echo"), invoker.Config{}, nil)
	s, err := New(Config{}, nil, Deps{})
	if err != nil {
		f.Fatal(err)
	}
	api, err := NewLambdaAPI(map[string]*invoker.Function{"echo": echo}, LambdaAPIConfig{MaxPayload: 1 << 10, MaxEventPayload: 256, TailSettle: -1}, NewLogTap())
	if err != nil {
		f.Fatal(err)
	}
	if err := api.Register(s); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, qualifier, invocationType, logType, clientContext string, body []byte) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		uri := "/2015-03-31/functions/" + url.PathEscape(name) + "/invocations"
		if qualifier != "" {
			uri += "?Qualifier=" + url.QueryEscape(qualifier)
		}
		ctx.Request.SetRequestURI(uri)
		for k, v := range map[string]string{"X-Amz-Invocation-Type": invocationType, "X-Amz-Log-Type": logType, "X-Amz-Client-Context": clientContext} {
			if v != "" {
				ctx.Request.Header.Set(k, v)
			}
		}
		ctx.Request.SetBody(body)
		s.serve(&ctx)
		resp := &ctx.Response
		if id := string(resp.Header.Peek("x-amzn-RequestId")); !uuidRE.MatchString(id) {
			if code := resp.StatusCode(); code == 404 && len(resp.Header.Peek("x-amzn-ErrorType")) == 0 {
				return // the name broke the path into other segments: the server's own 404
			}
			t.Fatalf("x-amzn-RequestId %q (status %d, body %s)", id, resp.StatusCode(), resp.Body())
		}
		switch code := resp.StatusCode(); code {
		case 200:
			if !json.Valid(resp.Body()) {
				t.Fatalf("200 with a body that is not JSON: %q", resp.Body())
			}
		case 202, 204:
		case 400, 404, 413, 429, 503:
			var e struct {
				Type    string
				Message string `json:"message"`
			}
			if len(resp.Header.Peek("x-amzn-ErrorType")) == 0 || json.Unmarshal(resp.Body(), &e) != nil || e.Type == "" || e.Message == "" {
				t.Fatalf("%d without Lambda's error shape: %q %s", code, resp.Header.Peek("x-amzn-ErrorType"), resp.Body())
			}
		default:
			t.Fatalf("status %d: %s", code, resp.Body())
		}
	})
}
