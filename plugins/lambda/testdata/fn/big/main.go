// Command big returns a JSON string of the "bytes" of its payload.
package main

import (
	"context"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
)

type payload struct {
	Bytes int `json:"bytes"`
}

func main() {
	lambda.Start(func(ctx context.Context, p payload) (string, error) {
		return strings.Repeat("x", p.Bytes), nil
	})
}
