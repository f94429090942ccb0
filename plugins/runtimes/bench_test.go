package runtimes_test

import (
	"path/filepath"
	"testing"

	"github.com/sluicehq/sluice/plugins/runtimes"
)

// BenchmarkInvoke is one direct invocation after another on one instance
// of each example: the Runtime API round trips of the clients.
func BenchmarkInvoke(b *testing.B) {
	examples, _ := filepath.Abs("../examples")
	for _, tc := range []struct{ kind, dir, handler string }{
		{runtimes.Python, "python-hello", "lambda_function.lambda_handler"},
		{runtimes.Node, "node-hello", "index.handler"},
	} {
		b.Run(tc.kind, func(b *testing.B) {
			p, err := startPoolB(b, tc.kind, filepath.Join(examples, tc.dir), tc.handler)
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for range b.N {
				if r := invokeB(b, p, `{"name":"b"}`); r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		})
	}
}
