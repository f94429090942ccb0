// Command sleep sleeps the "ms" of its payload, ignoring its deadline, then
// returns {"slept_ms": N, "pid": PID}.
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

type payload struct {
	MS int `json:"ms"`
}

func main() {
	lambda.Start(func(ctx context.Context, p payload) (map[string]int, error) {
		time.Sleep(time.Duration(p.MS) * time.Millisecond)
		return map[string]int{"slept_ms": p.MS, "pid": os.Getpid()}, nil
	})
}
