// Command panic panics when its payload is {"panic": true}, and returns
// {"ok": true} otherwise.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

type payload struct {
	Panic bool `json:"panic"`
}

func main() {
	lambda.Start(func(ctx context.Context, p payload) (map[string]bool, error) {
		if p.Panic {
			panic("boom: asked to panic")
		}
		return map[string]bool{"ok": true}, nil
	})
}
