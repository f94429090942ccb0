// Command tracelambda is a Lambda function (aws-lambda-go) for the tracing
// end-to-end test: for each invocation it appends the _X_AMZN_TRACE_ID the
// runtime library set from Lambda-Runtime-Trace-Id to $TRACE_FILE, one
// JSON line, and returns it.
package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

func handle(ctx context.Context, _ json.RawMessage) (map[string]string, error) {
	out := map[string]string{"xray": os.Getenv("_X_AMZN_TRACE_ID")}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		out["request_id"] = lc.AwsRequestID
	}
	line, _ := json.Marshal(out)
	f, err := os.OpenFile(os.Getenv("TRACE_FILE"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		return nil, err
	}
	return out, nil
}

func main() { lambda.Start(handle) }
