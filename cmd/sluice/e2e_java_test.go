package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testtool"
)

// TestE2EJava runs the Java example, built by javac as its comment says,
// behind an HTTP route on the real binary, and has validate and serve
// report a class that is not in the code.
func TestE2EJava(t *testing.T) {
	t.Parallel()
	bin := sluiceBin(t) // also finds repo
	testtool.Need(t, "java", "apt-get install default-jdk-headless")
	javac := testtool.Need(t, "javac", "apt-get install default-jdk-headless")
	build := t.TempDir()
	src, err := filepath.Abs(filepath.Join(repo, "plugins", "examples", "java-hello", "example", "Hello.java"))
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(javac, "-d", build, src).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v: %s", err, out)
	}
	cfg := writeConfig(t, t.TempDir(), fmt.Sprintf(`
server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0"}
log: {level: info}
functions:
  java-hello:
    runtime: java21
    handler: example.Hello::handleRequest
    code: %s
    timeout: 10s
triggers:
  - http: {method: POST, path: /java, function: java-hello}
`, build))
	p := startSluice(t, cfg)
	for i := 1; i <= 2; i++ {
		r := do(t, "POST", p.http+"/java", "application/json", []byte(`{"name":"ann"}`))
		var body map[string]any
		if r.code != 200 || json.Unmarshal(r.body, &body) != nil || body["hello"] != "java" || body["invocations"] != float64(i) ||
			r.header.Get("Content-Type") != "application/json" {
			t.Fatalf("POST /java #%d: %d %q %s", i, r.code, r.header.Get("Content-Type"), r.body)
		}
		id := r.header.Get("X-Sluice-Request-Id")
		waitFor(t, 10*time.Second, "the function's log line", func() bool {
			for _, l := range p.functionLines("java-hello", id) {
				if l == fmt.Sprintf("hello from java, invocation %d", i) {
					return true
				}
			}
			return false
		})
	}

	// A class that is not there: validate says so at the handler key, and
	// serve stops at start with the Java runtime's init error.
	bad := fmt.Sprintf("server: {listen: \"127.0.0.1:0\", admin_listen: \"127.0.0.1:0\"}\nfunctions:\n  f: {runtime: java, code: %s, handler: example.Nope::handleRequest}\n", build)
	badCfg := writeConfig(t, t.TempDir(), bad)
	where := fmt.Sprintf("%s:3:%d: ", badCfg, strings.Index(strings.Split(bad, "\n")[2], "handler:")+1)
	code, out, _ := runSluice(t, nil, "validate", "-c", badCfg)
	if code != 2 || !strings.HasPrefix(strings.TrimSpace(out), where+"handler: java.lang.ClassNotFoundException: Class not found: example.Nope") {
		t.Errorf("validate: exit %d:\n%s", code, out)
	}
	// Past validate (the class file is there, its class is not what it
	// says), serve meets the runtime's own init error.
	if err := os.WriteFile(filepath.Join(build, "example", "Nope.class"), []byte("not a class"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "serve", "-c", badCfg)
	cmd.Dir = repo
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() <= 0 || !strings.Contains(stderr.String(), where) || !strings.Contains(stderr.String(), "java.lang.ClassFormatError") {
		t.Errorf("serve: %v (want a failure at start):\n%s", err, stderr.String())
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("serve took %s to fail", d)
	}
}
