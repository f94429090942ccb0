package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sluicehq/sluice/internal/testtool"
)

const (
	e2eKeyID      = "AKIDSLUICEE2E"
	e2eSecret     = "e2e-secret-Zq81mQpX0vLr"
	e2eAdminToken = "e2e-admin-token-77Hh"
	e2eDBPassword = "e2e-db-password-31kz"
)

// lambdaClient is the AWS SDK for Go v2 Lambda client, pointed at url with
// the given credentials and no retries.
func lambdaClient(t *testing.T, url, id, secret string, opts ...func(*awslambda.Options)) *awslambda.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return awslambda.New(awslambda.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, Source: "e2e"}, nil
		}),
		Retryer:    aws.NopRetryer{},
		HTTPClient: &http.Client{Transport: tr, Timeout: 30 * time.Second},
	}, opts...)
}

// wantAPIError checks that err is a Lambda API error with the status and
// code.
func wantAPIError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var ae smithy.APIError
	var re interface{ HTTPStatusCode() int }
	if !errors.As(err, &ae) || ae.ErrorCode() != code || !errors.As(err, &re) || re.HTTPStatusCode() != status {
		t.Fatalf("err = %v, want %d %s", err, status, code)
	}
}

// wantLambdaShaped checks a raw answer is Lambda's error shape.
func wantLambdaShaped(t *testing.T, r response, status int, errType string) {
	t.Helper()
	var e struct {
		Type    string
		Message string `json:"message"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || r.code != status || r.header.Get("X-Amzn-ErrorType") != errType || e.Type != "User" || e.Message == "" {
		t.Fatalf("got %d x-amzn-ErrorType %q %s, want %d %s with {\"Type\":\"User\",\"message\":…}", r.code, r.header.Get("X-Amzn-ErrorType"), r.body, status, errType)
	}
}

// TestE2EInvokeAPISigV4 runs the real binary with the invoke API behind
// SigV4 and checks it with the AWS SDK and, where installed, the AWS CLI.
func TestE2EInvokeAPISigV4(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, `
server:
  listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
  admin_token: ${E2E_ADMIN_TOKEN}
  invoke_api: {enabled: true, auth: sigv4, keys: {`+e2eKeyID+`: "${E2E_SECRET}", AKIDSECOND: second-secret}}
log: {level: debug, format: json}
functions:
  echo: {runtime: go, handler: echo, timeout: 2500ms, memory: 256MiB, env: {DB_PASSWORD: "${E2E_DB_PASSWORD}", MODE: e2e}}
  hello-py:
    runtime: process
    command: ["python3", "plugins/examples/hello.py"]
    env: {_HANDLER: hello.handler}
triggers:
  - http: {method: POST, path: /echo, function: echo}
`)
	p := startSluice(t, cfg, "E2E_SECRET="+e2eSecret, "E2E_ADMIN_TOKEN="+e2eAdminToken, "E2E_DB_PASSWORD="+e2eDBPassword)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	invokeURL := p.http + "/2015-03-31/functions/echo/invocations"

	t.Run("unsigned is 403", func(t *testing.T) {
		wantLambdaShaped(t, do(t, "POST", invokeURL, "application/json", []byte(`{}`)), 403, "MissingAuthenticationTokenException")
		wantLambdaShaped(t, do(t, "GET", p.http+"/2015-03-31/functions/", "", nil), 403, "MissingAuthenticationTokenException")
		wantLambdaShaped(t, do(t, "POST", invokeURL, "application/json", []byte(`{}`), "Authorization", "Bearer "+e2eSecret), 400, "IncompleteSignatureException")
	})

	t.Run("SDK with the configured key is 200", func(t *testing.T) {
		c := lambdaClient(t, p.http, e2eKeyID, e2eSecret)
		out, err := c.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{"signed":true}`)})
		if err != nil {
			t.Fatal(err)
		}
		if out.StatusCode != 200 || out.FunctionError != nil || !strings.Contains(string(out.Payload), `"data":{"signed":true}`) {
			t.Fatalf("status %d FunctionError %v payload %s", out.StatusCode, out.FunctionError, out.Payload)
		}
		out, err = lambdaClient(t, p.http, "AKIDSECOND", "second-secret").Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("hello-py"), Payload: []byte(`{"name":"sdk"}`)})
		if err != nil || out.StatusCode != 200 || out.FunctionError != nil {
			t.Fatalf("second key: %v %+v", err, out)
		}
	})

	t.Run("wrong secret is 403", func(t *testing.T) {
		_, err := lambdaClient(t, p.http, e2eKeyID, "not-the-secret").Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{}`)})
		wantAPIError(t, err, 403, "InvalidSignatureException")
		_, err = lambdaClient(t, p.http, "AKIDUNKNOWN", e2eSecret).Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String("echo"), Payload: []byte(`{}`)})
		wantAPIError(t, err, 403, "UnrecognizedClientException")
		_, err = lambdaClient(t, p.http, e2eKeyID, "not-the-secret").ListFunctions(ctx, &awslambda.ListFunctionsInput{})
		wantAPIError(t, err, 403, "InvalidSignatureException")
	})

	t.Run("ListFunctions and GetFunction through the SDK", func(t *testing.T) {
		c := lambdaClient(t, p.http, e2eKeyID, e2eSecret)
		list, err := c.ListFunctions(ctx, &awslambda.ListFunctionsInput{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range list.Functions {
			names = append(names, aws.ToString(f.FunctionName))
		}
		if strings.Join(names, ",") != "echo,hello-py" {
			t.Fatalf("ListFunctions: %v", names)
		}
		got, err := c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("echo")})
		if err != nil {
			t.Fatal(err)
		}
		fc := got.Configuration
		lm, perr := time.Parse("2006-01-02T15:04:05.000-0700", aws.ToString(fc.LastModified))
		if aws.ToString(fc.FunctionArn) != "arn:aws:lambda:us-east-1:000000000000:function:echo" || fc.Runtime != "go" ||
			aws.ToString(fc.Handler) != "echo" || aws.ToInt32(fc.MemorySize) != 256 || aws.ToInt32(fc.Timeout) != 3 ||
			fc.State != types.StateActive || aws.ToString(fc.Version) != "$LATEST" || fc.PackageType != types.PackageTypeZip ||
			perr != nil || time.Since(lm) > 5*time.Minute || time.Since(lm) < 0 {
			t.Fatalf("GetFunction: %+v (LastModified %v)", fc, perr)
		}
		if v := fc.Environment.Variables; v["DB_PASSWORD"] != "****" || v["MODE"] != "****" {
			t.Fatalf("environment without the admin token: %v", v)
		}
		cfgOut, err := c.GetFunctionConfiguration(ctx, &awslambda.GetFunctionConfigurationInput{FunctionName: aws.String("hello-py")})
		if err != nil || aws.ToString(cfgOut.Handler) != "hello.handler" || cfgOut.Runtime != "process" {
			t.Fatalf("GetFunctionConfiguration: %v %+v", err, cfgOut)
		}
		_, err = c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("nope")})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Fatalf("unknown function: %v, want ResourceNotFoundException", err)
		}

		admin := lambdaClient(t, p.http, e2eKeyID, e2eSecret, func(o *awslambda.Options) {
			o.APIOptions = append(o.APIOptions, smithyhttp.AddHeaderValue("X-Sluice-Admin-Token", e2eAdminToken))
		})
		withValues, err := admin.GetFunctionConfiguration(ctx, &awslambda.GetFunctionConfigurationInput{FunctionName: aws.String("echo")})
		if err != nil || withValues.Environment.Variables["DB_PASSWORD"] != e2eDBPassword {
			t.Fatalf("with the admin token: %v %+v", err, withValues)
		}
	})

	t.Run("AWS CLI", func(t *testing.T) {
		bin := testtool.Need(t, "aws", "the AWS CLI, Debian package awscli")
		home := t.TempDir()
		cliEnv := append(os.Environ(),
			"AWS_ACCESS_KEY_ID="+e2eKeyID, "AWS_SECRET_ACCESS_KEY="+e2eSecret, "AWS_DEFAULT_REGION=us-east-1", "AWS_REGION=us-east-1",
			"AWS_CONFIG_FILE="+filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "credentials"),
			"AWS_PAGER=", "AWS_EC2_METADATA_DISABLED=true", "HOME="+home)
		aws := func(args ...string) []byte {
			t.Helper()
			cmd := exec.Command(bin, append(args, "--endpoint-url", p.http, "--output", "json")...)
			cmd.Env, cmd.Dir = cliEnv, home
			out, err := cmd.Output()
			if err != nil {
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
				}
				t.Fatalf("aws %s: %v", strings.Join(args, " "), err)
			}
			return out
		}
		var list struct {
			Functions []struct{ FunctionName, State string }
		}
		if err := json.Unmarshal(aws("lambda", "list-functions"), &list); err != nil || len(list.Functions) != 2 ||
			list.Functions[0].FunctionName != "echo" || list.Functions[0].State != "Active" {
			t.Fatalf("list-functions: %v %+v", err, list)
		}
		var get struct{ Configuration struct{ FunctionName string } }
		if err := json.Unmarshal(aws("lambda", "get-function", "--function-name", "hello-py"), &get); err != nil || get.Configuration.FunctionName != "hello-py" {
			t.Fatalf("get-function: %v %+v", err, get)
		}
		ver, _ := exec.Command(bin, "--version").CombinedOutput()
		args := []string{"lambda", "invoke", "--function-name", "echo", "--payload", `{"cli":1}`}
		if strings.HasPrefix(string(ver), "aws-cli/2") {
			args = append(args, "--cli-binary-format", "raw-in-base64-out")
		}
		outFile := filepath.Join(home, "out.json")
		var meta struct{ StatusCode int }
		if err := json.Unmarshal(aws(append(args, outFile)...), &meta); err != nil || meta.StatusCode != 200 {
			t.Fatalf("invoke: %v %+v", err, meta)
		}
		if b, err := os.ReadFile(outFile); err != nil || !strings.Contains(string(b), `"data":{"cli":1}`) {
			t.Fatalf("invoke output %s: %v", b, err)
		}
		// A full ARN (':' in the path, which botocore encodes and signs
		// encoded twice) and a qualifier (a query string).
		arnArgs := []string{"lambda", "get-function-configuration", "--function-name", "arn:aws:lambda:us-east-1:000000000000:function:echo", "--qualifier", "$LATEST"}
		var fc struct{ FunctionName, Version string }
		if err := json.Unmarshal(aws(arnArgs...), &fc); err != nil || fc.FunctionName != "echo" || fc.Version != "$LATEST" {
			t.Fatalf("get-function-configuration by ARN: %v %+v", err, fc)
		}
	})

	t.Run("pprof behind the admin token", func(t *testing.T) {
		if r := do(t, "GET", p.admin+"/debug/pprof/", "", nil); r.code != 401 {
			t.Fatalf("/debug/pprof/ without the token: %d", r.code)
		}
		if r := do(t, "GET", p.admin+"/debug/pprof/", "", nil, "Authorization", "Bearer wrong"); r.code != 401 {
			t.Fatalf("/debug/pprof/ with a wrong token: %d", r.code)
		}
		if r := do(t, "GET", p.admin+"/debug/pprof/", "", nil, "Authorization", "Bearer "+e2eAdminToken); r.code != 200 {
			t.Fatalf("/debug/pprof/ with the token: %d", r.code)
		}
	})

	t.Run("no secret in the log", func(t *testing.T) {
		log := p.log()
		for _, s := range []string{e2eSecret, "second-secret", e2eAdminToken, e2eDBPassword} {
			if strings.Contains(log, s) {
				t.Errorf("the log holds the secret %q", s)
			}
		}
		if len(p.findLog("invoke API on", map[string]any{"auth": "sigv4"})) != 1 {
			t.Errorf("no \"invoke API on\" line with auth sigv4")
		}
	})
}

// TestE2EInvokeAPIToken runs the invoke API behind a bearer token.
func TestE2EInvokeAPIToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, `
server:
  listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
  invoke_api: {auth: token, token: "${E2E_TOKEN}"}
functions:
  echo: {runtime: go, handler: echo}
`)
	p := startSluice(t, cfg, "E2E_TOKEN=tok-"+e2eSecret)
	url := p.http + "/2015-03-31/functions/echo/invocations"
	for _, tt := range []struct {
		name, auth string
		status     int
		errType    string
	}{
		{"right token", "Bearer tok-" + e2eSecret, 200, ""},
		{"no token", "", 403, "MissingAuthenticationTokenException"},
		{"wrong token", "Bearer tok-wrong", 403, "UnrecognizedClientException"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var h []string
			if tt.auth != "" {
				h = []string{"Authorization", tt.auth}
			}
			r := do(t, "POST", url, "application/json", []byte(`{"k":1}`), h...)
			if tt.status == 200 {
				if r.code != 200 || !strings.Contains(string(r.body), `"data":{"k":1}`) {
					t.Fatalf("got %d %s", r.code, r.body)
				}
				return
			}
			wantLambdaShaped(t, r, tt.status, tt.errType)
		})
	}
	r := do(t, "GET", p.http+"/2015-03-31/functions/echo", "", nil, "Authorization", "Bearer tok-"+e2eSecret)
	if r.code != 200 || !strings.Contains(string(r.body), `"FunctionName":"echo"`) {
		t.Fatalf("GetFunction with the token: %d %s", r.code, r.body)
	}
	if strings.Contains(p.log(), e2eSecret) {
		t.Errorf("the log holds the token")
	}
}

// TestE2EUnsafeConfigs checks that validate and serve refuse, with the
// position, what would open a hole: an empty secret, the invoke API
// without auth on a public listener, the admin listener off loopback
// without a token. Nothing here listens: each is refused first.
func TestE2EUnsafeConfigs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const fns = "functions:\n  echo: {runtime: go, handler: echo}\n"
	for _, tt := range []struct {
		name, yaml string
		env        []string
		want       string
	}{
		{"webhook token unset", "server: {listen: \"127.0.0.1:0\", admin_listen: \"127.0.0.1:0\"}\n" + fns +
			"triggers:\n  - storage: {path: /h, function: echo, token: \"${E2E_UNSET_HOOK_TOKEN}\"}\n", nil,
			":5:48: token: ${E2E_UNSET_HOOK_TOKEN} is unset or empty"},
		{"admin token empty", "server:\n  listen: \"127.0.0.1:0\"\n  admin_listen: \"127.0.0.1:0\"\n  admin_token: ${E2E_EMPTY}\n" + fns,
			[]string{"E2E_EMPTY="}, ":4:16: admin_token: ${E2E_EMPTY} is unset or empty"},
		{"invoke secret unset", "server:\n  listen: \"127.0.0.1:0\"\n  admin_listen: \"127.0.0.1:0\"\n  invoke_api: {auth: sigv4, keys: {AK: \"${E2E_UNSET}\"}}\n" + fns, nil,
			":4:40: AK: ${E2E_UNSET} is unset or empty"},
		{"invoke API open on a public listener", "server:\n  listen: \"0.0.0.0:0\"\n  admin_listen: \"127.0.0.1:0\"\n  invoke_api: {enabled: true}\n" + fns, nil,
			":4:3: invoke_api: auth none on listen \"0.0.0.0:0\", which is not a loopback address"},
		{"admin off loopback without a token", "server:\n  listen: \"127.0.0.1:0\"\n  admin_listen: \"0.0.0.0:0\"\n" + fns, nil,
			":3:17: admin_listen: \"0.0.0.0:0\" is not a loopback address: set server.admin_token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
			if err := os.WriteFile(path, []byte(tt.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			want := path + tt.want
			code, out, _ := runSluiceEnv(t, tt.env, "validate", "-c", path)
			if code != 2 || !strings.Contains(out, want) {
				t.Fatalf("validate: exit %d, stdout:\n%s\nwant exit 2 and %q", code, out, want)
			}
			code, _, errOut := runSluiceEnv(t, tt.env, "serve", "-c", path)
			if code != 2 || !strings.Contains(errOut, want) {
				t.Fatalf("serve: exit %d, stderr:\n%s\nwant exit 2 and %q", code, errOut, want)
			}
		})
	}

	// validate never prints a secret, whatever else it reports.
	path := writeConfig(t, dir, "server:\n  listen: \"127.0.0.1:0\"\n  admin_token: ${E2E_ADMIN}\n  invoke_api: {auth: sigv4, keys: {AK: \"${E2E_KEY}\"}}\n  bogus: 1\n"+fns)
	code, out, errOut := runSluiceEnv(t, []string{"E2E_ADMIN=" + e2eAdminToken, "E2E_KEY=" + e2eSecret}, "validate", "-c", path)
	if code != 2 || !strings.Contains(out, `unknown key "bogus"`) || strings.Contains(out+errOut, e2eAdminToken) || strings.Contains(out+errOut, e2eSecret) {
		t.Fatalf("validate: exit %d\n%s%s", code, out, errOut)
	}
}

// runSluiceEnv is runSluice with env added to the environment.
func runSluiceEnv(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	// A config that is refused ends the process at once; the bound keeps
	// a serve that was not refused from hanging the test.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, sluiceBin(t), args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatal(fmt.Errorf("sluice %s: %w", strings.Join(args, " "), err))
	}
	return code, out.String(), errb.String()
}
