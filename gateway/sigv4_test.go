package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"

	"github.com/sluicehq/sluice/invoker"
)

const (
	testKeyID  = "AKIDSLUICETEST"
	testSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSLUICEKEY"
)

// sdkClientAs is sdkClient with the given credentials.
func sdkClientAs(t testing.TB, url, id, secret string) *awslambda.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return awslambda.New(awslambda.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(url),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, Source: "test"}, nil
		}),
		Retryer:    aws.NopRetryer{},
		HTTPClient: &http.Client{Transport: tr, Timeout: 30 * time.Second},
	})
}

func apiErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// signed is a request signed by the AWS SDK's own SigV4 signer.
type signed struct {
	method, url string
	body        []byte
	id, secret  string
	region      string
	service     string
	at          time.Time
	hash        string // the payload hash to sign; "" for the body's
	setHash     bool   // send X-Amz-Content-Sha256: hash
	after       func(*http.Request)
}

func (s signed) do(t *testing.T) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(s.method, s.url, bytes.NewReader(s.body))
	if err != nil {
		t.Fatal(err)
	}
	hash := s.hash
	if hash == "" {
		sum := sha256.Sum256(s.body)
		hash = hex.EncodeToString(sum[:])
	}
	if s.setHash {
		req.Header.Set("X-Amz-Content-Sha256", hash)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range map[string]*string{"region": &s.region, "service": &s.service, "secret": &s.secret, "id": &s.id} {
		if *v == "" {
			*v = map[string]string{"region": "us-east-1", "service": "lambda", "secret": testSecret, "id": testKeyID}[k]
		}
	}
	if s.at.IsZero() {
		s.at = time.Now()
	}
	err = v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: s.id, SecretAccessKey: s.secret}, req, hash, s.service, s.region, s.at)
	if err != nil {
		t.Fatal(err)
	}
	if s.after != nil {
		s.after(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// wantLambdaError checks the shape of an error answer: the status, the
// x-amzn-ErrorType header and {"Type":"User","message":…}.
func wantLambdaError(t *testing.T, code int, h http.Header, body []byte, wantCode int, wantType, wantMsg string) {
	t.Helper()
	var e struct {
		Type    string
		Message string `json:"message"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if code != wantCode || h.Get("X-Amzn-ErrorType") != wantType || e.Type != "User" || !strings.Contains(e.Message, wantMsg) {
		t.Fatalf("got %d %s %s, want %d %s with a message containing %q", code, h.Get("X-Amzn-ErrorType"), body, wantCode, wantType, wantMsg)
	}
	if h.Get("X-Amzn-RequestId") == "" {
		t.Errorf("no x-amzn-RequestId")
	}
}

func TestLambdaAPISigV4(t *testing.T) {
	fns := map[string]*invoker.Function{
		"echo": startFunction(t, "echo", builtinHandler(t, "echo"), invoker.Config{}, nil),
	}
	ts := startLambdaAPI(t, Config{}, fns, LambdaAPIConfig{
		Auth: AuthSigV4, Keys: map[string]string{testKeyID: testSecret, "AKIDOTHER": "other-secret"}, ScopeRegion: "us-east-1",
	}, nil)
	invokeURL := ts.url + "/2015-03-31/functions/echo/invocations"
	payload := []byte(`{"hello":"sigv4"}`)

	t.Run("AWS SDK with the configured key", func(t *testing.T) {
		for _, id := range []string{testKeyID, "AKIDOTHER"} {
			secret := map[string]string{testKeyID: testSecret, "AKIDOTHER": "other-secret"}[id]
			c := sdkClientAs(t, ts.url, id, secret)
			out := mustInvoke(t, c, &awslambda.InvokeInput{FunctionName: aws.String("echo"), Payload: payload})
			if out.StatusCode != 200 || !bytes.Contains(out.Payload, []byte("sigv4")) {
				t.Fatalf("%s: status %d payload %s", id, out.StatusCode, out.Payload)
			}
		}
		// A full ARN and a qualifier: the path holds %3A, which the
		// signature encodes once more, and a query string.
		c := sdkClientAs(t, ts.url, testKeyID, testSecret)
		out := mustInvoke(t, c, &awslambda.InvokeInput{
			FunctionName: aws.String("arn:aws:lambda:us-east-1:000000000000:function:echo"),
			Qualifier:    aws.String("$LATEST"), Payload: payload,
		})
		if out.StatusCode != 200 {
			t.Fatalf("ARN: status %d", out.StatusCode)
		}
	})

	t.Run("AWS SDK refused", func(t *testing.T) {
		for _, tt := range []struct {
			name, id, secret, code string
		}{
			{"wrong secret", testKeyID, "not-the-secret", "InvalidSignatureException"},
			{"unknown key id", "AKIDUNKNOWN", testSecret, "UnrecognizedClientException"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := invoke(t, sdkClientAs(t, ts.url, tt.id, tt.secret), &awslambda.InvokeInput{FunctionName: aws.String("echo"), Payload: payload})
				var re interface{ HTTPStatusCode() int }
				if apiErrorCode(err) != tt.code || !errors.As(err, &re) || re.HTTPStatusCode() != 403 {
					t.Fatalf("err = %v, want 403 %s", err, tt.code)
				}
			})
		}
	})

	t.Run("unsigned", func(t *testing.T) {
		r, err := http.Post(invokeURL, "application/json", bytes.NewReader(payload))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		wantLambdaError(t, r.StatusCode, r.Header, b, 403, "MissingAuthenticationTokenException", "Missing Authentication Token")
	})

	t.Run("signatures", func(t *testing.T) {
		for _, tt := range []struct {
			name     string
			s        signed
			wantCode int
			wantType string
			wantMsg  string
		}{
			{name: "signed", s: signed{}, wantCode: 200},
			{name: "UNSIGNED-PAYLOAD", s: signed{hash: unsignedPayload, setHash: true}, wantCode: 200},
			{name: "content hash header", s: signed{setHash: true}, wantCode: 200},
			{name: "skew inside 15 min", s: signed{at: time.Now().Add(-14 * time.Minute)}, wantCode: 200},
			{name: "expired", s: signed{at: time.Now().Add(-16 * time.Minute)}, wantCode: 403, wantType: "InvalidSignatureException", wantMsg: "Signature expired"},
			{name: "from the future", s: signed{at: time.Now().Add(16 * time.Minute)}, wantCode: 403, wantType: "InvalidSignatureException", wantMsg: "not yet current"},
			{name: "wrong secret", s: signed{secret: "nope"}, wantCode: 403, wantType: "InvalidSignatureException", wantMsg: "does not match"},
			{name: "wrong region", s: signed{region: "eu-west-1"}, wantCode: 403, wantType: "InvalidSignatureException", wantMsg: "region"},
			{name: "wrong service", s: signed{service: "s3"}, wantCode: 403, wantType: "InvalidSignatureException", wantMsg: "service"},
			{name: "unknown key", s: signed{id: "AKIDNOPE"}, wantCode: 403, wantType: "UnrecognizedClientException", wantMsg: "invalid"},
			{name: "body changed after signing", s: signed{after: func(r *http.Request) {
				b := []byte(`{"hello":"tampered"}`)
				r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
			}}, wantCode: 403, wantType: "InvalidSignatureException", wantMsg: "does not match"},
			{name: "content hash of another body", s: signed{setHash: true, after: func(r *http.Request) {
				b := []byte(`{"hello":"tampered"}`)
				r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
			}}, wantCode: 403, wantType: "InvalidSignatureException", wantMsg: "x-amz-content-sha256"},
			{name: "signed header changed", s: signed{after: func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }},
				wantCode: 403, wantType: "InvalidSignatureException", wantMsg: "does not match"},
			{name: "query added after signing", s: signed{after: func(r *http.Request) { r.URL.RawQuery = "Qualifier=%24LATEST" }},
				wantCode: 403, wantType: "InvalidSignatureException", wantMsg: "does not match"},
			{name: "malformed header", s: signed{after: func(r *http.Request) {
				r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+testKeyID+"/20250101/us-east-1/lambda/aws4_request")
			}}, wantCode: 400, wantType: "IncompleteSignatureException", wantMsg: "'SignedHeaders'"},
			{name: "no X-Amz-Date", s: signed{after: func(r *http.Request) { r.Header.Del("X-Amz-Date") }},
				wantCode: 400, wantType: "IncompleteSignatureException", wantMsg: "X-Amz-Date"},
			{name: "bearer instead of a signature", s: signed{after: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+testSecret) }},
				wantCode: 400, wantType: "IncompleteSignatureException", wantMsg: "AWS4-HMAC-SHA256"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				s := tt.s
				s.method, s.url, s.body = "POST", invokeURL, payload
				code, h, b := s.do(t)
				if tt.wantCode == 200 {
					if code != 200 || !bytes.Contains(b, []byte("sigv4")) {
						t.Fatalf("got %d %s, want 200", code, b)
					}
					return
				}
				wantLambdaError(t, code, h, b, tt.wantCode, tt.wantType, tt.wantMsg)
				if bytes.Contains(b, []byte(testSecret)) || bytes.Contains(b, []byte("other-secret")) {
					t.Fatalf("the answer holds a secret: %s", b)
				}
			})
		}
	})
}

func TestLambdaAPIToken(t *testing.T) {
	fns := map[string]*invoker.Function{
		"echo": startFunction(t, "echo", builtinHandler(t, "echo"), invoker.Config{}, nil),
	}
	ts := startLambdaAPI(t, Config{}, fns, LambdaAPIConfig{Auth: AuthToken, Token: "s3cret-token"}, nil)
	url := ts.url + "/2015-03-31/functions/echo/invocations"
	for _, tt := range []struct {
		name, auth string
		wantCode   int
		wantType   string
	}{
		{"right token", "Bearer s3cret-token", 200, ""},
		{"none", "", 403, "MissingAuthenticationTokenException"},
		{"wrong token", "Bearer s3cret-tokem", 403, "UnrecognizedClientException"},
		{"prefix of the token", "Bearer s3cret", 403, "UnrecognizedClientException"},
		{"no scheme", "s3cret-token", 403, "UnrecognizedClientException"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := []string{}
			if tt.auth != "" {
				h = append(h, "Authorization", tt.auth)
			}
			code, hdr, body := httpDo(t, "POST", url, []byte(`{"t":1}`), h...)
			if tt.wantCode == 200 {
				if code != 200 || !bytes.Contains(body, []byte(`"data":{"t":1}`)) {
					t.Fatalf("got %d %s", code, body)
				}
				return
			}
			wantLambdaError(t, code, hdr, body, tt.wantCode, tt.wantType, "")
		})
	}
	// The management reads take the same auth.
	code, hdr, body := httpDo(t, "GET", ts.url+"/2015-03-31/functions/", nil)
	wantLambdaError(t, code, hdr, body, 403, "MissingAuthenticationTokenException", "Missing")
	code, _, body = httpDo(t, "GET", ts.url+"/2015-03-31/functions/", nil, "Authorization", "Bearer s3cret-token")
	if code != 200 || !bytes.Contains(body, []byte(`"FunctionName":"echo"`)) {
		t.Fatalf("ListFunctions with the token: %d %s", code, body)
	}
}

func httpDo(t *testing.T, method, url string, body []byte, headers ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func TestLambdaAPIManagementReads(t *testing.T) {
	fns := map[string]*invoker.Function{}
	for _, n := range []string{"echo", "alpha", "zeta"} {
		fns[n] = startFunction(t, n, builtinHandler(t, "echo"), invoker.Config{}, nil)
	}
	loaded := time.Date(2026, 3, 4, 5, 6, 7, 890e6, time.UTC)
	ts := startLambdaAPI(t, Config{}, fns, LambdaAPIConfig{
		Auth: AuthSigV4, Keys: map[string]string{testKeyID: testSecret}, AdminToken: "admin-tok", LoadedAt: loaded,
		Functions: map[string]FunctionInfo{
			"echo": {Runtime: "go", Handler: "echo", MemoryMB: 256, Timeout: 2500 * time.Millisecond,
				Env: map[string]string{"DB_PASSWORD": "hunter2", "MODE": "x"}},
		},
	}, nil)
	c := sdkClientAs(t, ts.url, testKeyID, testSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("GetFunctionConfiguration", func(t *testing.T) {
		out, err := c.GetFunctionConfiguration(ctx, &awslambda.GetFunctionConfigurationInput{FunctionName: aws.String("echo")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.FunctionName) != "echo" || aws.ToString(out.FunctionArn) != "arn:aws:lambda:us-east-1:000000000000:function:echo" ||
			out.Runtime != "go" || aws.ToString(out.Handler) != "echo" || aws.ToInt32(out.MemorySize) != 256 || aws.ToInt32(out.Timeout) != 3 ||
			out.State != types.StateActive || aws.ToString(out.Version) != "$LATEST" || out.PackageType != types.PackageTypeZip ||
			aws.ToString(out.LastModified) != "2026-03-04T05:06:07.890+0000" || out.LastUpdateStatus != types.LastUpdateStatusSuccessful {
			t.Fatalf("configuration: %+v", out)
		}
		if v := out.Environment.Variables; len(v) != 2 || v["DB_PASSWORD"] != maskedValue || v["MODE"] != maskedValue {
			t.Fatalf("environment without the admin token: %v, want keys with masked values", v)
		}
	})

	t.Run("GetFunction", func(t *testing.T) {
		out, err := c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("zeta")})
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(out.Configuration.FunctionName) != "zeta" || out.Configuration.State != types.StateActive {
			t.Fatalf("GetFunction: %+v", out.Configuration)
		}
		_, err = c.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("nope")})
		var nf *types.ResourceNotFoundException
		if !errors.As(err, &nf) {
			t.Fatalf("unknown function: %v, want ResourceNotFoundException", err)
		}
		_, err = c.GetFunctionConfiguration(ctx, &awslambda.GetFunctionConfigurationInput{FunctionName: aws.String("echo"), Qualifier: aws.String("7")})
		if !errors.As(err, &nf) {
			t.Fatalf("unknown version: %v, want ResourceNotFoundException", err)
		}
	})

	t.Run("ListFunctions pages", func(t *testing.T) {
		var names []string
		p := awslambda.NewListFunctionsPaginator(c, &awslambda.ListFunctionsInput{MaxItems: aws.Int32(2)})
		pages := 0
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, f := range out.Functions {
				names = append(names, aws.ToString(f.FunctionName))
			}
		}
		if strings.Join(names, ",") != "alpha,echo,zeta" || pages != 2 {
			t.Fatalf("listed %v in %d pages, want alpha,echo,zeta in 2", names, pages)
		}
	})

	t.Run("writes are unknown operations", func(t *testing.T) {
		for _, r := range [][2]string{
			{"POST", "/2015-03-31/functions"}, {"DELETE", "/2015-03-31/functions/echo"},
			{"PUT", "/2015-03-31/functions/echo/configuration"}, {"GET", "/2015-03-31/functions/echo/invocations"},
		} {
			code, h, b := signed{method: r[0], url: ts.url + r[1]}.do(t)
			wantLambdaError(t, code, h, b, 404, "UnknownOperationException", "ListFunctions")
		}
	})

	t.Run("env values with the admin token", func(t *testing.T) {
		for _, tt := range []struct {
			token string
			want  string
		}{{"admin-tok", "hunter2"}, {"wrong", maskedValue}, {"", maskedValue}} {
			code, _, body := signed{method: "GET", url: ts.url + "/2015-03-31/functions/echo/configuration", after: func(r *http.Request) {
				if tt.token != "" {
					r.Header.Set("X-Sluice-Admin-Token", tt.token)
				}
			}}.do(t)
			var cfg functionConfiguration
			if err := json.Unmarshal(body, &cfg); code != 200 || err != nil {
				t.Fatalf("%d %s: %v", code, body, err)
			}
			if cfg.Environment.Variables["DB_PASSWORD"] != tt.want {
				t.Fatalf("token %q: DB_PASSWORD = %q, want %q", tt.token, cfg.Environment.Variables["DB_PASSWORD"], tt.want)
			}
		}
	})
}

func TestLambdaAPIConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  LambdaAPIConfig
		want string
	}{
		{"none", LambdaAPIConfig{}, ""},
		{"sigv4", LambdaAPIConfig{Auth: AuthSigV4, Keys: map[string]string{"A": "s"}}, ""},
		{"sigv4 without keys", LambdaAPIConfig{Auth: AuthSigV4}, "at least one access key"},
		{"sigv4 empty secret", LambdaAPIConfig{Auth: AuthSigV4, Keys: map[string]string{"A": ""}}, "empty"},
		{"token", LambdaAPIConfig{Auth: AuthToken, Token: "t"}, ""},
		{"token empty", LambdaAPIConfig{Auth: AuthToken}, "needs a token"},
		{"unknown", LambdaAPIConfig{Auth: "basic"}, "unknown auth"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestParseSigV4Authorization(t *testing.T) {
	const sig = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
	for _, tt := range []struct {
		name, h string
		want    string // "" when it parses
	}{
		{"ok", "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + sig, ""},
		{"no spaces", "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/lambda/aws4_request,SignedHeaders=host,Signature=" + sig, ""},
		{"other order", "AWS4-HMAC-SHA256 Signature=" + sig + ", SignedHeaders=host, Credential=A/20150830/r/s/aws4_request", ""},
		{"sigv4a", "AWS4-ECDSA-P256-SHA256 Credential=A/20150830/lambda/aws4_request, SignedHeaders=host, Signature=" + sig, "must start"},
		{"no credential", "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=" + sig, "'Credential'"},
		{"bad terminator", "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws5_request, SignedHeaders=host, Signature=" + sig, "terminator"},
		{"short credential", "AWS4-HMAC-SHA256 Credential=A/20150830/r/aws4_request, SignedHeaders=host, Signature=" + sig, "form"},
		{"bad date", "AWS4-HMAC-SHA256 Credential=A/2015083/r/s/aws4_request, SignedHeaders=host, Signature=" + sig, "YYYYMMDD"},
		{"unsorted headers", "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=x-amz-date;host, Signature=" + sig, "sorted"},
		{"upper-case header", "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=Host, Signature=" + sig, "lower-case"},
		{"short signature", "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, SignedHeaders=host, Signature=abc", "64"},
		{"twice", "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, Credential=B/20150830/r/s/aws4_request, SignedHeaders=host, Signature=" + sig, "twice"},
		{"unknown part", "AWS4-HMAC-SHA256 Credential=A/20150830/r/s/aws4_request, Foo=1, SignedHeaders=host, Signature=" + sig, "unknown part"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, err := parseSigV4Authorization(tt.h)
			if tt.want == "" {
				if err != nil || a.Signature != sig {
					t.Fatalf("err %v, got %+v", err, a)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, errIncompleteSignature) {
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// FuzzSigV4Authorization checks that any Authorization header either
// parses into parts that rebuild a header parsing to the same thing, or is
// refused with an incomplete-signature error; never a panic.
func FuzzSigV4Authorization(f *testing.F) {
	for _, s := range []string{
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
		"AWS4-HMAC-SHA256 Credential=/20150830///aws4_request,SignedHeaders=;,Signature=",
		"AWS4-HMAC-SHA256 ,,,=,==",
		"Bearer token",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseSigV4Authorization(h)
		if err != nil {
			if !errors.Is(err, errIncompleteSignature) || err.Error() == "" {
				t.Fatalf("error %v is not an incomplete signature", err)
			}
			return
		}
		again := sigV4Algorithm + " Credential=" + a.KeyID + "/" + a.scope() + ", SignedHeaders=" + strings.Join(a.SignedHeaders, ";") + ", Signature=" + a.Signature
		b, err := parseSigV4Authorization(again)
		if err != nil || b.KeyID != a.KeyID || b.scope() != a.scope() || b.Signature != a.Signature || strings.Join(b.SignedHeaders, ";") != strings.Join(a.SignedHeaders, ";") {
			t.Fatalf("%q parsed to %+v; rebuilt as %q it parses to %+v, %v", h, a, again, b, err)
		}
	})
}

// BenchmarkLambdaInvokeAuth measures a RequestResponse Invoke through the
// handler alone, as BenchmarkLambdaInvokeHandler, without auth (the
// ceiling), with a bearer token and with a SigV4 signature (made once;
// every iteration verifies it anew: canonical request, key derivation,
// two hashes and an HMAC chain).
func BenchmarkLambdaInvokeAuth(b *testing.B) {
	echo := startFunction(b, "echo", builtinHandler(b, "echo"), invoker.Config{}, nil)
	const body = `{"hello":"world"}`
	const path = "/2015-03-31/functions/echo/invocations"
	hr, err := http.NewRequest("POST", "http://localhost:8080"+path, strings.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret},
		hr, hex.EncodeToString(sum[:]), "lambda", "us-east-1", time.Now()); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name, headers string
		cfg           LambdaAPIConfig
	}{
		{"none", "", LambdaAPIConfig{}},
		{"token", "Authorization: Bearer s3cret-token\r\n", LambdaAPIConfig{Auth: AuthToken, Token: "s3cret-token"}},
		{"sigv4", "X-Amz-Date: " + hr.Header.Get("X-Amz-Date") + "\r\nAuthorization: " + hr.Header.Get("Authorization") + "\r\n",
			LambdaAPIConfig{Auth: AuthSigV4, Keys: map[string]string{testKeyID: testSecret}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			s, err := New(Config{}, nil, Deps{Metrics: metrics.NewSet()})
			if err != nil {
				b.Fatal(err)
			}
			api, err := NewLambdaAPI(map[string]*invoker.Function{"echo": echo}, c.cfg, NewLogTap())
			if err != nil {
				b.Fatal(err)
			}
			if err := api.Register(s); err != nil {
				b.Fatal(err)
			}
			ctx := requestCtx(b, "POST "+path+" HTTP/1.1\r\nHost: localhost:8080\r\n"+c.headers+
				"Content-Length: 17\r\n\r\n"+body)
			b.ReportAllocs()
			for b.Loop() {
				ctx.Response.Reset()
				s.serve(ctx)
				if ctx.Response.StatusCode() != 200 {
					b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
				}
			}
		})
	}
}
