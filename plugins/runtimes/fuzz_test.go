package runtimes_test

import (
	"strings"
	"testing"

	"github.com/sluicehq/sluice/plugins/runtimes"
)

// FuzzHandler feeds handler strings and runtime names from configs to the
// readers: none panics, an accepted handler names a file inside code
// (a Java one a class file inside code).
func FuzzHandler(f *testing.F) {
	for _, s := range []string{"lambda_function.lambda_handler", "src/app.handler", "index", "../x.y", "/a.b", "a/./b.c", "python3.12", "nodejs20.x", "example.Hello::handleRequest", "a.B$C", "java8.al2", ""} {
		f.Add(s)
	}
	code := f.TempDir()
	f.Fuzz(func(t *testing.T, s string) {
		if kind, _, ok := runtimes.Parse(s); ok && kind != runtimes.Python && kind != runtimes.Node && kind != runtimes.Java {
			t.Fatalf("Parse(%q): kind %q", s, kind)
		}
		if runtimes.CheckJavaHandler(s) == nil {
			// A class file inside code, whatever the name.
			f := runtimes.JavaClassFile(s)
			if strings.HasPrefix(f, "/") || strings.Contains("/"+f, "/../") || strings.Contains("/"+f, "/./") || strings.Contains(f, "//") {
				t.Fatalf("JavaClassFile(%q) = %q, not a path inside code", s, f)
			}
			if p, err := runtimes.HandlerFile(runtimes.Java, code, s); err == nil && !strings.HasPrefix(p, code) {
				t.Fatalf("HandlerFile(java, %q) = %s, outside %s", s, p, code)
			}
		}
		if runtimes.CheckHandler(s) != nil {
			return
		}
		for _, kind := range []string{runtimes.Python, runtimes.Node} {
			if p, err := runtimes.HandlerFile(kind, code, s); err == nil && !strings.HasPrefix(p, code) {
				t.Fatalf("HandlerFile(%q) = %s, outside %s", s, p, code)
			}
		}
	})
}
