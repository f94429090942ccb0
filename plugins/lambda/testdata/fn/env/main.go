// Command env returns its environment and what aws-lambda-go read from the
// Runtime API about the invocation.
package main

import (
	"context"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type answer struct {
	Env           map[string]string `json:"env"`
	PID           int               `json:"pid"`
	RequestID     string            `json:"request_id"`
	FunctionARN   string            `json:"function_arn"`
	DeadlineMS    int64             `json:"deadline_ms"`
	TraceID       string            `json:"trace_id"`
	ClientContext map[string]string `json:"client_context"`
}

func main() {
	lambda.Start(func(ctx context.Context) (answer, error) {
		a := answer{Env: map[string]string{}, PID: os.Getpid()}
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			a.Env[k] = v
		}
		lc, _ := lambdacontext.FromContext(ctx)
		a.RequestID = lc.AwsRequestID
		a.FunctionARN = lc.InvokedFunctionArn
		a.ClientContext = lc.ClientContext.Custom
		if d, ok := ctx.Deadline(); ok {
			a.DeadlineMS = d.UnixNano() / int64(time.Millisecond)
		}
		a.TraceID, _ = ctx.Value("x-amzn-trace-id").(string)
		return a, nil
	})
}
