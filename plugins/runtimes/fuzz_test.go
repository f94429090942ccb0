package runtimes_test

import (
	"strings"
	"testing"

	"github.com/sluicehq/sluice/plugins/runtimes"
)

// FuzzHandler feeds handler strings and runtime names from configs to the
// readers: none panics, an accepted handler names a file inside code.
func FuzzHandler(f *testing.F) {
	for _, s := range []string{"lambda_function.lambda_handler", "src/app.handler", "index", "../x.y", "/a.b", "a/./b.c", "python3.12", "nodejs20.x", ""} {
		f.Add(s)
	}
	code := f.TempDir()
	f.Fuzz(func(t *testing.T, s string) {
		if kind, _, ok := runtimes.Parse(s); ok && kind != runtimes.Python && kind != runtimes.Node {
			t.Fatalf("Parse(%q): kind %q", s, kind)
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
