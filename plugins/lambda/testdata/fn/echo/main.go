// Command echo returns the event it was invoked with, unchanged, and writes
// one line to stdout and one to stderr tagged with its request id.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

func main() {
	lambda.Start(func(ctx context.Context, ev json.RawMessage) (json.RawMessage, error) {
		lc, _ := lambdacontext.FromContext(ctx)
		fmt.Println("stdout line of", lc.AwsRequestID)
		fmt.Fprintln(os.Stderr, "stderr line of", lc.AwsRequestID)
		return ev, nil
	})
}
