package runtimes_test

import (
	"archive/zip"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/memlimit"
	"github.com/sluicehq/sluice/internal/testtool"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/plugins/lambda"
	"github.com/sluicehq/sluice/plugins/runtimes"
)

func TestCheckJavaHandler(t *testing.T) {
	tests := []struct {
		handler, err string
	}{
		{"example.Hello::handleRequest", ""},
		{"example.Hello", ""},
		{"Hello::handle", ""},
		{"com.acme.Outer$Inner::run", ""},
		{"a.b_c.D1::m2", ""},
		{"", "must not be empty"},
		{"example.Hello::", "not pkg.Class::method"},
		{"::handle", "not pkg.Class::method"},
		{"example..Hello", "not pkg.Class::method"},
		{"example.Hello.", "not pkg.Class::method"},
		{"example/Hello::handle", "not pkg.Class::method"},
		{"1example.Hello", "not pkg.Class::method"},
		{"example.Hello::a.b", "not pkg.Class::method"},
		{"example.Hello::x::y", "not pkg.Class::method"},
		{"lambda_function.lambda_handler", ""}, // a class lambda_handler in package lambda_function
	}
	for _, tt := range tests {
		t.Run(tt.handler, func(t *testing.T) {
			err := runtimes.CheckHandlerOf(runtimes.Java, tt.handler)
			if (err == nil) != (tt.err == "") || err != nil && !strings.Contains(err.Error(), tt.err) {
				t.Errorf("CheckHandlerOf(java, %q) = %v, want %q", tt.handler, err, tt.err)
			}
		})
	}
}

// javaCode compiles the test handlers (testdata/java, with stand-ins for
// aws-lambda-java-core's interfaces) into a folder of classes.
func javaCode(t testing.TB) (java, classes string) {
	t.Helper()
	java = interpreter(t, runtimes.Java)
	javac, err := runtimes.Javac(java)
	if err != nil {
		if testtool.InCI() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	var srcs []string
	_ = filepath.WalkDir("testdata/java", func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".java") {
			srcs = append(srcs, p)
		}
		return err
	})
	classes = t.TempDir()
	if out, err := exec.Command(javac, append([]string{"-d", classes}, srcs...)...).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v: %s", err, out)
	}
	return java, classes
}

func startJavaPool(t *testing.T, java, code, handler string, l *logs, memory int64) (*lambda.Pool, error) {
	t.Helper()
	c := install(t)
	if err := c.BuildJava(context.Background(), java); err != nil {
		t.Fatal(err)
	}
	dir := code
	if runtimes.IsJar(code) {
		dir = filepath.Dir(code)
	}
	cfg := lambda.Config{Command: c.JavaCommand(java, code, memory), Dir: dir, Handler: handler, Timeout: 10 * time.Second, Memory: memory}
	if memory > 0 {
		cfg.Limit = memlimit.Default()
	}
	return start(t, cfg, l)
}

// jar packs a folder of classes into a jar.
func jar(t *testing.T, classes string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fn.jar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	z := zip.NewWriter(f)
	err = filepath.WalkDir(classes, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(classes, path)
		w, err := z.Create(filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		r, err := os.Open(path)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(w, r)
		return err
	})
	if err == nil {
		err = z.Close()
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestJava runs a RequestHandler from a folder of classes and from a jar:
// the context as Lambda's Java one, init once per instance, log lines,
// an exception's shape with its cause.
func TestJava(t *testing.T) {
	java, classes := javaCode(t)
	for _, tc := range []struct{ name, code string }{{"classes", classes}, {"jar", jar(t, classes)}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := &logs{}
			p, err := startJavaPool(t, java, tc.code, "example.Handler::handleRequest", l, 0)
			if err != nil {
				t.Fatal(err)
			}
			last := invokeTwice(t, p)
			if last["greeting"] != "hello ann" {
				t.Errorf("greeting %v", last["greeting"])
			}
			for _, f := range []string{"awsRequestId", "functionName", "functionVersion", "invokedFunctionArn", "logGroupName", "logStreamName"} {
				if v, _ := last[f].(string); v == "" {
					t.Errorf("context field %s empty: %v", f, last)
				}
			}
			if last["memoryLimitInMB"] != float64(128) {
				t.Errorf("memoryLimitInMB %v, want 128", last["memoryLimitInMB"])
			}
			if rem, _ := last["remainingMs"].([]any); len(rem) != 2 || !(rem[0].(float64) > rem[1].(float64)) || rem[0].(float64) > 10000 {
				t.Errorf("remaining time not decreasing: %v", last["remainingMs"])
			}
			if root, _ := last["taskRoot"].(string); root == "" || !strings.HasPrefix(tc.code, root) {
				t.Errorf("LAMBDA_TASK_ROOT %q for code %s", root, tc.code)
			}
			if logs := l.all(); !strings.Contains(logs, "hello from java ann") || !strings.Contains(logs, "via the logger") {
				t.Errorf("logs: %s", logs)
			}

			r := invoke(t, p, `{"fail":true}`)
			var fe *plugins.FunctionError
			if !errors.As(r.Err, &fe) || fe.Type != "java.lang.IllegalStateException" || fe.Message != "asked to fail" || len(fe.Trace) == 0 {
				t.Fatalf("error %#v", r.Err)
			}
			if !strings.HasPrefix(fe.Trace[0], "example.Handler.handleRequest(Handler.java:") {
				t.Errorf("trace does not start at the function: %q", fe.Trace)
			}
			if strings.Contains(strings.Join(fe.Trace, "\n"), "SluiceRuntime") || strings.Contains(strings.Join(fe.Trace, "\n"), "reflect") {
				t.Errorf("trace shows the client: %q", fe.Trace)
			}
			if !strings.Contains(l.all(), "java.lang.IllegalStateException: asked to fail") {
				t.Errorf("the error is not logged: %s", l.all())
			}
			if r := invoke(t, p, `{"name":"bob"}`); r.Err != nil {
				t.Errorf("after an exception: %v", r.Err)
			}
		})
	}
}

// TestJavaSignatures: a static method with classes of its own in and out,
// a String handler, a stream handler, and input that does not fit.
func TestJavaSignatures(t *testing.T) {
	java, classes := javaCode(t)
	for _, tc := range []struct{ handler, payload, want, errType string }{
		{"example.Pojo::greet", `{"name":"ann","age":30,"tags":["a","b"],"extra":1}`, `{"adult":true,"text":"hi ann (2 tags)"}`, ""},
		{"example.Pojo::upper", `"shout"`, `"SHOUT"`, ""},
		{"example.Pojo::nothing", `{}`, `null`, ""},
		{"example.Streams", `{"a": 1}`, `{"len":8,"id":"`, ""},
		{"example.Pojo::greet", `{"name":"ann","age":"thirty","tags":[]}`, "", "Runtime.UnmarshalError"},
		{"example.Pojo::greet", `{"name":`, "", "Runtime.UnmarshalError"},
	} {
		t.Run(tc.handler+"/"+tc.payload, func(t *testing.T) {
			t.Parallel()
			p, err := startJavaPool(t, java, classes, tc.handler, &logs{}, 0)
			if err != nil {
				t.Fatal(err)
			}
			r := invoke(t, p, tc.payload)
			if tc.errType != "" {
				var fe *plugins.FunctionError
				if !errors.As(r.Err, &fe) || fe.Type != tc.errType {
					t.Fatalf("error %v, want %s", r.Err, tc.errType)
				}
				return
			}
			if r.Err != nil || !strings.HasPrefix(string(r.Output), tc.want) {
				t.Errorf("output %s, %v; want %s", r.Output, r.Err, tc.want)
			}
		})
	}
}

// TestJavaInitError: a class or method that cannot be loaded fails Start
// at once with the Java runtime's error, not a hang.
func TestJavaInitError(t *testing.T) {
	java, classes := javaCode(t)
	for _, tc := range []struct{ handler, typ, msg string }{
		{"example.Missing::handleRequest", "java.lang.ClassNotFoundException", "Class not found: example.Missing"},
		{"example.Handler::nope", "java.lang.NoSuchMethodException", "No public method named nope"},
		{"example.Boom", "java.lang.IllegalStateException", "boom at class init"},
	} {
		t.Run(tc.handler, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			_, err := startJavaPool(t, java, classes, tc.handler, &logs{}, 0)
			var ie *lambda.InitError
			if !errors.As(err, &ie) || ie.Err.Type != tc.typ || !strings.Contains(ie.Err.Message, tc.msg) {
				t.Fatalf("Start = %v, want %s: %s", err, tc.typ, tc.msg)
			}
			if d := time.Since(start); d > 15*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

// TestJavaOutOfMemory: a handler that allocates past memory fails as
// Runtime.OutOfMemory and its instance is replaced.
func TestJavaOutOfMemory(t *testing.T) {
	java, classes := javaCode(t)
	p, err := startJavaPool(t, java, classes, "example.Handler", &logs{}, 128<<20)
	if err != nil {
		t.Fatal(err)
	}
	r := invoke(t, p, `{"alloc_mb":400}`)
	var fe *plugins.FunctionError
	if !errors.As(r.Err, &fe) || fe.Type != lambda.ErrorTypeOOM {
		t.Fatalf("error %v, want %s", r.Err, lambda.ErrorTypeOOM)
	}
	if r := invoke(t, p, `{"name":"after"}`); r.Err != nil {
		t.Errorf("after out of memory: %v", r.Err)
	}
}

func TestCheckJava(t *testing.T) {
	java, classes := javaCode(t)
	j := jar(t, classes)
	lib := writeFiles(t, map[string]string{"README": "classes in lib/"})
	if err := os.Mkdir(filepath.Join(lib, "lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(jar(t, classes), filepath.Join(lib, "lib", "fn.jar")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ code, handler, err string }{
		{classes, "example.Handler::handleRequest", ""},
		{j, "example.Pojo::greet", ""},
		{lib, "example.Streams", ""},
		{classes, "example.Missing", "Class not found: example.Missing"},
		{j, "example.Missing::x", "Class not found: example.Missing"},
		{classes, "example/Handler", "not pkg.Class::method"},
	} {
		t.Run(filepath.Base(tc.code)+"/"+tc.handler, func(t *testing.T) {
			err := runtimes.Check(context.Background(), runtimes.Java, java, tc.code, tc.handler)
			if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Check = %v, want %q", err, tc.err)
			}
		})
	}
}
