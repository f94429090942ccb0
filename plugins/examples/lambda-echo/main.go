// Command lambda-echo is an AWS Lambda function built with aws-lambda-go,
// run unmodified by Sluice's runtime: lambda (make plugins builds it to
// bin/functions/lambda-echo; configs/lambda.yaml uses it).
//
// Given an API Gateway HTTP API request it answers 200 with the request's
// body, its content type and base64 flag (an HTTP echo); given any other
// event it returns the event itself. With ECHO_LOG=1 in its environment it
// logs one line per invocation.
package main

import (
	"context"
	"encoding/json"
	"log"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

var logEach = os.Getenv("ECHO_LOG") == "1"

func handle(ctx context.Context, event json.RawMessage) (any, error) {
	if logEach {
		if lc, ok := lambdacontext.FromContext(ctx); ok {
			log.Printf("echo %s: %d bytes", lc.AwsRequestID, len(event))
		}
	}
	var req events.APIGatewayV2HTTPRequest
	if json.Unmarshal(event, &req) != nil || req.RequestContext.HTTP.Method == "" {
		return event, nil
	}
	ct := req.Headers["content-type"]
	if ct == "" {
		ct = "application/octet-stream"
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode:      200,
		Headers:         map[string]string{"content-type": ct},
		Body:            req.Body,
		IsBase64Encoded: req.IsBase64Encoded,
	}, nil
}

func main() {
	lambda.Start(handle)
}
