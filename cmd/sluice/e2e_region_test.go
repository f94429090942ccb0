package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
)

// TestE2EInvokeAPIRegion: server.invoke_api.region is the one region of a
// function's ARN, the same in what the invoke API returns (GetFunction) and
// in what a Lambda function sees (its invoked function ARN and AWS_REGION),
// for a custom runtime (runtime: lambda) and a managed one (python3.12).
func TestE2EInvokeAPIRegion(t *testing.T) {
	t.Parallel()
	needInterpreters(t)
	p := startSluice(t, writeConfig(t, t.TempDir(), `
server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0", invoke_api: {region: eu-west-3}}
functions:
  custom: {runtime: lambda, command: ["python3", "cmd/sluice/testdata/context_bootstrap.py"], instances: 1}
  py: {runtime: python3.12, handler: lambda_function.lambda_handler, code: plugins/examples/python-hello, instances: 1}
`))
	sdk := sdkClient(p.http)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tt := range []struct{ fn, arnKey, regionKey string }{
		{"custom", "invoked_function_arn", "aws_region"},
		{"py", "invoked_function_arn", ""},
	} {
		t.Run(tt.fn, func(t *testing.T) {
			want := "arn:aws:lambda:eu-west-3:000000000000:function:" + tt.fn
			gf, err := sdk.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String(tt.fn)})
			if err != nil {
				t.Fatalf("GetFunction: %v", err)
			}
			if got := aws.ToString(gf.Configuration.FunctionArn); got != want {
				t.Errorf("GetFunction's FunctionArn = %s, want %s", got, want)
			}
			out, err := sdk.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String(tt.fn), Payload: []byte(`{"name":"region"}`)})
			if err != nil || out.FunctionError != nil {
				t.Fatalf("Invoke: %v %+v", err, out)
			}
			var got map[string]any
			if err := json.Unmarshal(out.Payload, &got); err != nil {
				t.Fatalf("payload %s: %v", out.Payload, err)
			}
			if got[tt.arnKey] != want {
				t.Errorf("the function's invoked function ARN = %v, want %s (payload %s)", got[tt.arnKey], want, out.Payload)
			}
			if tt.regionKey != "" && got[tt.regionKey] != "eu-west-3" {
				t.Errorf("the function's AWS_REGION = %v, want eu-west-3", got[tt.regionKey])
			}
		})
	}
}
