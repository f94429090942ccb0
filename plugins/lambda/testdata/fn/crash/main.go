// Command crash writes a line and exits with status 3 in the middle of an
// invocation whose payload is {"crash": true}, or {"crash_once": PATH}
// when the file PATH does not exist yet (it creates it first); otherwise it
// returns {"ok": true}.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

type payload struct {
	Crash     bool   `json:"crash"`
	CrashOnce string `json:"crash_once"`
}

func main() {
	lambda.Start(func(ctx context.Context, p payload) (map[string]bool, error) {
		if p.CrashOnce != "" {
			if f, err := os.OpenFile(p.CrashOnce, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644); err == nil {
				f.Close()
				p.Crash = true
			}
		}
		if p.Crash {
			fmt.Fprintln(os.Stderr, "about to crash")
			os.Exit(3)
		}
		return map[string]bool{"ok": true}, nil
	})
}
