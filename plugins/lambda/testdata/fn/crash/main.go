// Command crash writes a line and exits with status 3 in the middle of an
// invocation whose payload is {"crash": true}; otherwise it returns
// {"ok": true}.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

type payload struct {
	Crash bool `json:"crash"`
}

func main() {
	lambda.Start(func(ctx context.Context, p payload) (map[string]bool, error) {
		if p.Crash {
			fmt.Fprintln(os.Stderr, "about to crash")
			os.Exit(3)
		}
		return map[string]bool{"ok": true}, nil
	})
}
