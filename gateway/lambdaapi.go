package gateway

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
)

// TriggerInvoke is the trigger name of events from the Lambda invoke API,
// in invocation logs and metrics.
const TriggerInvoke = "invoke"

// ClientContextExtension is the envelope extension that carries a Lambda
// invoke request's X-Amz-Client-Context (base64 of a JSON object, as sent).
// The runtime: lambda worker reads it under the same name
// (plugins/lambda.ClientContextExtension) and hands the decoded JSON to the
// runtime as Lambda-Runtime-Client-Context.
const ClientContextExtension = "clientcontext"

// Paths of the Lambda invoke API.
const (
	// LambdaInvokePath is the route of the Invoke operation.
	LambdaInvokePath = "/2015-03-31/functions/{name}/invocations"
	lambdaAPIPrefix  = "/2015-03-31/"
	lambdaOtherPath  = "/2015-03-31/{operation+}"
	// Management reads: ListFunctions (one trailing slash is ignored, and
	// the SDKs send one), GetFunction, GetFunctionConfiguration.
	lambdaListPath          = "/2015-03-31/functions"
	lambdaGetPath           = "/2015-03-31/functions/{name}"
	lambdaConfigurationPath = "/2015-03-31/functions/{name}/configuration"
)

// Defaults of LambdaAPIConfig.
const (
	DefaultLambdaRegion     = "us-east-1"
	DefaultLambdaAccount    = "000000000000"
	DefaultMaxPayload       = 6 << 20
	DefaultMaxEventPayload  = 1 << 20
	DefaultTailSettle       = 20 * time.Millisecond
	maxClientContextBase64  = 3583
	lambdaThrottleReason    = "ReservedFunctionConcurrentInvocationLimitExceeded"
	lambdaExecutedVersion   = "$LATEST"
	lambdaFunctionErrorKind = "Unhandled"
)

// LambdaAPIConfig configures the Lambda invoke API. Its zero value is
// usable: every zero field takes the default its comment names.
type LambdaAPIConfig struct {
	// Region and Account make up the function ARNs named in error
	// messages. ARNs in requests may name any region and account. Default
	// to "us-east-1" and "000000000000", as the runtime: lambda worker's.
	Region  string
	Account string
	// MaxPayload is the largest RequestResponse payload, in bytes; larger
	// ones are answered 413 RequestEntityTooLargeException (the server's
	// max_body applies first). It bounds the function's response too: a
	// larger output is the function error Function.ResponseSizeTooLarge.
	// Defaults to 6 MiB, Lambda's limit both ways.
	MaxPayload int
	// MaxEventPayload is the largest Event payload, in bytes: the event
	// waits in the function's in-memory queue. Defaults to 1 MiB, Lambda's
	// limit for asynchronous invocations.
	MaxEventPayload int
	// TailSettle is how long a Tail request waits, after its invocation
	// ended, for log lines still on their way: a process function's stderr
	// is read by its own goroutine and may be passed on a moment after the
	// result. The wait ends once no line came for TailSettle (at most ten
	// times TailSettle in all). Defaults to 20ms; negative means do not
	// wait (enough for builtin, plugin and lambda functions, whose lines
	// are passed on before their invocation ends).
	TailSettle time.Duration

	// Auth is how requests must authenticate: AuthNone (the default:
	// every request is served; keep it to loopback listeners), AuthSigV4
	// (AWS Signature Version 4 with one of Keys, as the AWS CLI and SDKs
	// sign) or AuthToken ("Authorization: Bearer <Token>").
	Auth string
	// Keys are the access keys of AuthSigV4: access key id to secret
	// access key. Secrets are compared in constant time and never logged.
	Keys map[string]string
	// Token is the bearer token of AuthToken.
	Token string
	// ScopeRegion, when not empty, is the region a SigV4 credential scope
	// must name; empty takes any region (the region is part of the
	// signing key, so a signature never verifies for another region).
	ScopeRegion string
	// AdminToken, when not empty, lets management reads show the values
	// of functions' environment variables to requests that carry it as
	// X-Sluice-Admin-Token; otherwise values are masked.
	AdminToken string
	// Functions describe the functions to the management reads
	// (ListFunctions, GetFunction, GetFunctionConfiguration), by name. A
	// function without an entry is described by its name alone.
	Functions map[string]FunctionInfo
	// LoadedAt is every function's LastModified: when the configuration
	// was loaded. Defaults to the time NewLambdaAPI is called.
	LoadedAt time.Time
}

// Auth modes of LambdaAPIConfig.Auth.
const (
	AuthNone  = "none"
	AuthSigV4 = "sigv4"
	AuthToken = "token"
)

// FunctionInfo is what the management reads tell of a function.
type FunctionInfo struct {
	// Runtime is the function's runtime, as configured.
	Runtime string
	// Handler is the function's handler, "" when it has none.
	Handler string
	// MemoryMB is the memory limit in MiB, 0 when none is set.
	MemoryMB int
	// Timeout bounds one invocation; it is reported in whole seconds,
	// rounded up.
	Timeout time.Duration
	// Env is the function's environment. Its keys are shown; its values
	// only with the admin token.
	Env map[string]string
}

func (c LambdaAPIConfig) withDefaults() LambdaAPIConfig {
	if c.Region == "" {
		c.Region = DefaultLambdaRegion
	}
	if c.Account == "" {
		c.Account = DefaultLambdaAccount
	}
	setInt(&c.MaxPayload, DefaultMaxPayload)
	setInt(&c.MaxEventPayload, DefaultMaxEventPayload)
	setDur(&c.TailSettle, DefaultTailSettle)
	if c.Auth == "" {
		c.Auth = AuthNone
	}
	if c.LoadedAt.IsZero() {
		c.LoadedAt = time.Now()
	}
	return c
}

// Validate reports every field out of range.
func (c LambdaAPIConfig) Validate() error {
	var errs []error
	if c.MaxPayload < 0 {
		errs = append(errs, fmt.Errorf("lambda api: max payload must not be negative, got %d", c.MaxPayload))
	}
	if c.MaxEventPayload < 0 {
		errs = append(errs, fmt.Errorf("lambda api: max event payload must not be negative, got %d", c.MaxEventPayload))
	}
	switch c.Auth {
	case "", AuthNone:
	case AuthSigV4:
		if len(c.Keys) == 0 {
			errs = append(errs, errors.New("lambda api: auth sigv4 needs at least one access key"))
		}
		for id, secret := range c.Keys {
			if id == "" || secret == "" {
				errs = append(errs, errors.New("lambda api: an access key id or its secret is empty"))
				break
			}
		}
	case AuthToken:
		if c.Token == "" {
			errs = append(errs, errors.New("lambda api: auth token needs a token"))
		}
	default:
		errs = append(errs, fmt.Errorf("lambda api: unknown auth %q (want none, sigv4 or token)", c.Auth))
	}
	return errors.Join(errs...)
}

// LambdaAPI serves AWS Lambda's Invoke operation,
// POST /2015-03-31/functions/{name}/invocations, for every function it is
// given whatever its runtime, so that the AWS CLI and SDKs can invoke them
// with --endpoint-url / BaseEndpoint, and the management reads
// ListFunctions, GetFunction and GetFunctionConfiguration; every request
// authenticates first as LambdaAPIConfig.Auth says. See the package
// documentation for the answers. Create it with NewLambdaAPI and add it to a Server with
// Register. It is safe for concurrent use.
type LambdaAPI struct {
	cfg   LambdaAPIConfig
	fns   map[string]*lambdaFn
	names []string // sorted, for ListFunctions
	tap   *LogTap
	sigv4 *sigV4Verifier
	token []byte // "Bearer <token>" for AuthToken
	admin []byte // the admin token, nil when none
}

type lambdaFn struct {
	fn       *invoker.Function
	name     string
	source   string
	memoryMB int64
}

// NewLambdaAPI returns the invoke API over functions, keyed by the name
// callers use (the configured function name). tap supplies the log lines of
// Tail requests; with a nil tap a tail holds only the START, END and REPORT
// lines the API writes itself. It returns an error for a nil function or a
// config field out of range.
func NewLambdaAPI(functions map[string]*invoker.Function, cfg LambdaAPIConfig, tap *LogTap) (*LambdaAPI, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a := &LambdaAPI{cfg: cfg.withDefaults(), fns: make(map[string]*lambdaFn, len(functions)), tap: tap}
	for name, f := range functions {
		if f == nil {
			return nil, fmt.Errorf("lambda api: function %q is nil", name)
		}
		mb := int64(128) // Lambda's default
		if m := cfg.Functions[name].MemoryMB; m > 0 {
			mb = int64(m)
		}
		a.fns[name] = &lambdaFn{fn: f, name: name, source: "/sluice/invoke/" + name, memoryMB: mb}
		a.names = append(a.names, name)
	}
	sort.Strings(a.names)
	switch a.cfg.Auth {
	case AuthSigV4:
		v := &sigV4Verifier{keys: make(map[string][]byte, len(cfg.Keys)), region: cfg.ScopeRegion}
		for id, secret := range cfg.Keys {
			v.keys[id] = []byte(secret)
		}
		a.sigv4 = v
	case AuthToken:
		a.token = []byte("Bearer " + cfg.Token)
	}
	if cfg.AdminToken != "" {
		a.admin = []byte(cfg.AdminToken)
	}
	return a, nil
}

// Register adds the API's routes to s: the Invoke operation, the
// management reads, and for any other path under /2015-03-31/ an
// UnknownOperationException, each behind the configured auth. Requests
// under that prefix that the server refuses before routing (a body over
// max_body) are answered in Lambda's error shape too. It must be called
// before Serve; it returns the error of Server.Handle.
func (a *LambdaAPI) Register(s *Server) error {
	for _, r := range []struct {
		method, path string
		h            Handler
	}{
		{"POST", LambdaInvokePath, a.invokeHandler(s)},
		{"GET", lambdaListPath, a.listFunctions},
		{"GET", lambdaGetPath, a.getFunction},
		{"GET", lambdaConfigurationPath, a.getFunctionConfiguration},
		{"ANY", lambdaOtherPath, a.unknownOperation},
	} {
		if err := s.Handle(r.method, r.path, a.guard(r.h)); err != nil {
			return err
		}
	}
	return s.handleRefusals(lambdaAPIPrefix, func(ctx *fasthttp.RequestCtx, id []byte, code int, msg string) {
		ctx.Response.Header.SetCanonical(strAmznRequestID, id)
		if code == fasthttp.StatusRequestEntityTooLarge {
			msg = "Request must be smaller than " + strconv.Itoa(s.cfg.MaxBody) + " bytes for the InvokeFunction operation"
			writeLambdaError(ctx, code, "RequestEntityTooLargeException", "User", msg)
			return
		}
		writeLambdaError(ctx, code, "InvalidRequestContentException", "User", msg)
	})
}

var (
	// AWS spells them x-amzn-RequestId and x-amzn-ErrorType; header names
	// are case-insensitive, and fasthttp's canonical form keeps Peek working.
	strAmznRequestID    = []byte("X-Amzn-Requestid")
	strAmznErrorType    = []byte("X-Amzn-Errortype")
	strInvocationType   = []byte("X-Amz-Invocation-Type")
	strLogType          = []byte("X-Amz-Log-Type")
	strClientContext    = []byte("X-Amz-Client-Context")
	strFunctionError    = []byte("X-Amz-Function-Error")
	strLogResult        = []byte("X-Amz-Log-Result")
	strExecutedVersion  = []byte("X-Amz-Executed-Version")
	strQualifier        = []byte("Qualifier")
	strLatest           = []byte(lambdaExecutedVersion)
	strUnhandled        = []byte(lambdaFunctionErrorKind)
	strRequestResponse  = []byte("RequestResponse")
	strEvent            = []byte("Event")
	strDryRun           = []byte("DryRun")
	strTail             = []byte("Tail")
	strNone             = []byte("None")
	strEmptyJSONPayload = []byte("null")
)

// writeLambdaError answers with Lambda's error shape: the x-amzn-ErrorType
// header (which the AWS SDKs read first) and {"Type":kind,"message":msg},
// or {"Type":kind,"Message":msg} for a ServiceException, the member names
// of Lambda's API model.
func writeLambdaError(ctx *fasthttp.RequestCtx, code int, errType, kind, msg string) {
	writeLambdaErrorReason(ctx, code, errType, kind, msg, "")
}

func writeLambdaErrorReason(ctx *fasthttp.RequestCtx, code int, errType, kind, msg, reason string) {
	ctx.Response.Header.SetCanonical(strAmznErrorType, s2b(errType))
	b := make([]byte, 0, 64+len(msg))
	if reason != "" {
		b = append(b, `{"Reason":`...)
		b = plugins.AppendJSONString(b, reason)
		b = append(b, `,"Type":`...)
	} else {
		b = append(b, `{"Type":`...)
	}
	b = plugins.AppendJSONString(b, kind)
	if errType == "ServiceException" {
		b = append(b, `,"Message":`...)
	} else {
		b = append(b, `,"message":`...)
	}
	b = plugins.AppendJSONString(b, msg)
	b = append(b, '}')
	ctx.SetStatusCode(code)
	ctx.Response.Header.SetContentTypeBytes(strApplicationJSON)
	ctx.SetBody(b)
}

func (a *LambdaAPI) unknownOperation(ctx *fasthttp.RequestCtx, p *Params) {
	writeLambdaError(ctx, fasthttp.StatusNotFound, "UnknownOperationException", "User",
		"Unknown operation: Sluice serves the Invoke (POST "+LambdaInvokePath+"), ListFunctions, GetFunction and "+
			"GetFunctionConfiguration operations of the Lambda API")
}

// guard answers with the request id, and refuses a request that does not
// authenticate as LambdaAPIConfig.Auth requires before h sees it.
func (a *LambdaAPI) guard(h Handler) Handler {
	return func(ctx *fasthttp.RequestCtx, p *Params) {
		ctx.Response.Header.SetCanonical(strAmznRequestID, p.RequestID())
		if err := a.authenticate(&ctx.Request, ctx.Time()); err != nil {
			writeLambdaError(ctx, err.code, err.typ, "User", err.msg)
			return
		}
		h(ctx, p)
	}
}

// authenticate returns nil when req may be served.
func (a *LambdaAPI) authenticate(req *fasthttp.Request, now time.Time) *authError {
	if a.sigv4 == nil && a.token == nil {
		return nil
	}
	auth := req.Header.Peek(fasthttp.HeaderAuthorization)
	if len(auth) == 0 {
		return errMissingAuth()
	}
	if a.token != nil {
		if subtle.ConstantTimeCompare(auth, a.token) != 1 {
			return errUnrecognizedClient()
		}
		return nil
	}
	return a.sigv4.verify(req, auth, now)
}

// arn returns the ARN of function name with an optional qualifier.
func (a *LambdaAPI) arn(name, qualifier string) string {
	s := "arn:aws:lambda:" + a.cfg.Region + ":" + a.cfg.Account + ":function:" + name
	if qualifier != "" {
		s += ":" + qualifier
	}
	return s
}

// parseFunctionName splits the FunctionName of a request into the name and
// the qualifier it carries: a name ("echo"), a name with a qualifier
// ("echo:$LATEST"), a partial ARN ("123456789012:function:echo") or a full
// ARN ("arn:aws:lambda:us-east-1:123456789012:function:echo[:QUAL]").
func parseFunctionName(s string) (name, qualifier string, ok bool) {
	parts := strings.Split(s, ":")
	switch {
	case len(parts) >= 7 && len(parts) <= 8 && parts[0] == "arn" && parts[2] == "lambda" && parts[5] == "function":
		parts = parts[6:]
	case len(parts) >= 3 && len(parts) <= 4 && parts[1] == "function":
		parts = parts[2:]
	case len(parts) > 2:
		return "", "", false
	}
	name = parts[0]
	if len(parts) == 2 {
		qualifier = parts[1]
	}
	if name == "" || len(parts) == 2 && qualifier == "" {
		return "", "", false
	}
	return name, qualifier, true
}

// lookup finds the function a request names, or answers the error.
func (a *LambdaAPI) lookup(ctx *fasthttp.RequestCtx, p *Params) *lambdaFn {
	raw := b2s(p.Value(0))
	if f := a.fns[raw]; f != nil {
		if q := ctx.QueryArgs().PeekBytes(strQualifier); len(q) > 0 && !bytes.Equal(q, strLatest) {
			writeLambdaError(ctx, fasthttp.StatusNotFound, "ResourceNotFoundException", "User",
				"Function not found: "+a.arn(raw, string(q)))
			return nil
		}
		return f
	}
	name, qual, ok := parseFunctionName(raw)
	if !ok {
		writeLambdaError(ctx, fasthttp.StatusBadRequest, "ValidationException", "User",
			"1 validation error detected: Value '"+raw+"' at 'functionName' failed to satisfy constraint: "+
				"Member must be a function name, a partial ARN or a function ARN")
		return nil
	}
	if q := ctx.QueryArgs().PeekBytes(strQualifier); len(q) > 0 {
		if qual != "" && qual != string(q) {
			writeLambdaError(ctx, fasthttp.StatusBadRequest, "InvalidParameterValueException", "User",
				"The derived qualifier from the function name does not match the specified qualifier.")
			return nil
		}
		qual = string(q)
	}
	f := a.fns[name]
	if f == nil || (qual != "" && qual != lambdaExecutedVersion) {
		writeLambdaError(ctx, fasthttp.StatusNotFound, "ResourceNotFoundException", "User",
			"Function not found: "+a.arn(name, qual))
		return nil
	}
	return f
}

type invocationType int

const (
	requestResponse invocationType = iota
	event
	dryRun
)

func (a *LambdaAPI) invokeHandler(s *Server) Handler {
	return func(ctx *fasthttp.RequestCtx, p *Params) {
		f := a.lookup(ctx, p)
		if f == nil {
			return
		}
		h := &ctx.Request.Header
		var typ invocationType
		switch it := h.PeekBytes(strInvocationType); {
		case len(it) == 0 || bytes.Equal(it, strRequestResponse):
		case bytes.Equal(it, strEvent):
			typ = event
		case bytes.Equal(it, strDryRun):
			typ = dryRun
		default:
			writeLambdaError(ctx, fasthttp.StatusBadRequest, "ValidationException", "User",
				"1 validation error detected: Value '"+string(it)+"' at 'invocationType' failed to satisfy constraint: "+
					"Member must satisfy enum value set: [Event, RequestResponse, DryRun]")
			return
		}
		tail := false
		switch lt := h.PeekBytes(strLogType); {
		case len(lt) == 0 || bytes.Equal(lt, strNone):
		case bytes.Equal(lt, strTail):
			tail = typ == requestResponse // Lambda returns logs of synchronous invocations only
		default:
			writeLambdaError(ctx, fasthttp.StatusBadRequest, "ValidationException", "User",
				"1 validation error detected: Value '"+string(lt)+"' at 'logType' failed to satisfy constraint: "+
					"Member must satisfy enum value set: [None, Tail]")
			return
		}
		if typ == dryRun {
			ctx.SetStatusCode(fasthttp.StatusNoContent)
			return
		}

		body := ctx.PostBody()
		switch {
		case typ == requestResponse && len(body) > a.cfg.MaxPayload:
			writeLambdaError(ctx, fasthttp.StatusRequestEntityTooLarge, "RequestEntityTooLargeException", "User",
				"Request must be smaller than "+strconv.Itoa(a.cfg.MaxPayload)+" bytes for the InvokeFunction operation")
			return
		case typ == event && len(body) > a.cfg.MaxEventPayload:
			writeLambdaError(ctx, fasthttp.StatusRequestEntityTooLarge, "RequestEntityTooLargeException", "User",
				strconv.Itoa(len(body))+" byte payload is too large for the Event invocation type (limit "+
					strconv.Itoa(a.cfg.MaxEventPayload)+" bytes)")
			return
		}
		if len(body) > 0 && !json.Valid(body) {
			var v json.RawMessage
			err := json.Unmarshal(body, &v)
			msg := "not JSON"
			if err != nil {
				msg = err.Error()
			}
			writeLambdaError(ctx, fasthttp.StatusBadRequest, "InvalidRequestContentException", "User",
				"Could not parse request body into json: "+msg)
			return
		}
		cc := h.PeekBytes(strClientContext)
		if len(cc) > 0 && !validClientContext(cc) {
			writeLambdaError(ctx, fasthttp.StatusBadRequest, "InvalidRequestContentException", "User",
				"Client context must be a valid Base64-encoded JSON object of at most "+strconv.Itoa(maxClientContextBase64)+" bytes.")
			return
		}

		c := a.newCall(ctx, p, f, body, cc)
		if typ == event {
			c.item.DeadLetter = true
			c.item.Attempts = asyncAttempts
			c.item.Done = asyncDone
			if err := f.fn.Submit(&c.item); err != nil {
				a.writeInvokeError(ctx, s, err)
				return
			}
			ctx.SetStatusCode(fasthttp.StatusAccepted)
			return
		}

		var w *logWatch
		if tail {
			w = a.tap.watch(c.ev.ID)
		}
		o := f.fn.Call(&c.item)
		if errors.Is(o.Err, invoker.ErrQueueFull) || errors.Is(o.Err, invoker.ErrClosed) || errors.Is(o.Err, context.Canceled) {
			a.tap.collect(c.ev.ID, w)
			a.writeInvokeError(ctx, s, o.Err)
			return
		}
		if tail {
			a.settle(w)
			logs := a.tap.collect(c.ev.ID, w)
			ctx.Response.Header.SetCanonical(strLogResult, appendTail(nil, c.ev.ID, o, f.memoryMB, logs))
		}
		ctx.Response.Header.SetCanonical(strExecutedVersion, strLatest)
		if o.Err != nil {
			ctx.Response.Header.SetCanonical(strFunctionError, strUnhandled)
			setJSONBody(&ctx.Response, appendFunctionError(nil, c.ev.ID, o.Err))
			return
		}
		out := o.Output
		if len(out) > a.cfg.MaxPayload {
			ctx.Response.Header.SetCanonical(strFunctionError, strUnhandled)
			setJSONBody(&ctx.Response, appendFunctionError(nil, c.ev.ID, &plugins.FunctionError{
				Type: "Function.ResponseSizeTooLarge",
				Message: "Response payload size (" + strconv.Itoa(len(out)) + " bytes) exceeded maximum allowed payload size (" +
					strconv.Itoa(a.cfg.MaxPayload) + " bytes).",
			}))
			return
		}
		if len(out) == 0 {
			out = strEmptyJSONPayload
		}
		setJSONBody(&ctx.Response, out)
	}
}

// newCall builds the sluice.invoke envelope of a request: its data is the
// payload exactly as sent. Everything it keeps is copied out of ctx.
func (a *LambdaAPI) newCall(ctx *fasthttp.RequestCtx, p *Params, f *lambdaFn, body, clientContext []byte) *call {
	tp := ctx.Request.Header.PeekBytes(strTraceparent)
	ts := ctx.Request.Header.PeekBytes(strTracestate)
	// One allocation holds the id, the trace headers and the payload: the
	// strings first, viewed in place, then the data. Nothing writes to it
	// after.
	n := idLen + len(tp) + len(ts)
	buf := make([]byte, 0, n+len(body))
	buf = append(buf, p.RequestID()...)
	buf = append(buf, tp...)
	buf = append(buf, ts...)
	buf = append(buf, body...)
	strs := unsafe.String(unsafe.SliceData(buf), n)
	c := &call{}
	c.ev = plugins.Event{
		ID:              strs[:idLen],
		Source:          f.source,
		Type:            plugins.TypeInvoke,
		Time:            ctx.Time(),
		DataContentType: "application/json",
		DataValidJSON:   true, // checked by the handler
		TraceParent:     strs[idLen : idLen+len(tp)],
		TraceState:      strs[idLen+len(tp):],
	}
	if len(body) > 0 {
		c.ev.Data = buf[n:len(buf):len(buf)]
	}
	if len(clientContext) > 0 {
		c.ev.Extensions = map[string]any{ClientContextExtension: string(clientContext)}
	}
	c.item.Event = &c.ev
	c.item.Trigger = TriggerInvoke
	return c
}

// validClientContext reports whether b is base64 of a JSON object, within
// Lambda's size limit.
func validClientContext(b []byte) bool {
	if len(b) > maxClientContextBase64 {
		return false
	}
	dec, err := base64.StdEncoding.AppendDecode(nil, b)
	if err != nil {
		return false
	}
	dec = bytes.TrimSpace(dec)
	return len(dec) > 0 && dec[0] == '{' && json.Valid(dec)
}

// writeInvokeError answers an invocation the function did not take.
func (a *LambdaAPI) writeInvokeError(ctx *fasthttp.RequestCtx, s *Server, err error) {
	ctx.Response.Header.SetCanonical(strRetryAfter, s.retryAfter)
	if errors.Is(err, invoker.ErrQueueFull) {
		writeLambdaErrorReason(ctx, fasthttp.StatusTooManyRequests, "TooManyRequestsException", "User",
			"Rate Exceeded.", lambdaThrottleReason)
		return
	}
	// Closed: the function is shutting down (a reload); another instance,
	// or this one's successor, can take the retry.
	writeLambdaError(ctx, fasthttp.StatusServiceUnavailable, "ServiceException", "Service",
		"The function is shutting down; retry the request.")
}

// settle waits for log lines still on their way (see
// LambdaAPIConfig.TailSettle).
func (a *LambdaAPI) settle(w *logWatch) {
	d := a.cfg.TailSettle
	if w == nil || d <= 0 {
		return
	}
	deadline := time.Now().Add(10 * d)
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-w.notify:
			left := time.Until(deadline)
			if left <= 0 {
				return
			}
			t.Reset(min(d, left))
		case <-t.C:
			return
		}
	}
}

// appendTail appends the X-Amz-Log-Result of an invocation: base64 of the
// last TailSize bytes of its log, framed by Lambda's START, END and REPORT
// lines.
func appendTail(dst []byte, id string, o invoker.Outcome, memoryMB int64, logs []byte) []byte {
	text := make([]byte, 0, len(logs)+256)
	text = append(text, "START RequestId: "...)
	text = append(text, id...)
	text = append(text, " Version: $LATEST\n"...)
	if o.RequestID != "" && o.RequestID != id {
		// The worker ran the event in a batch with others and tagged its
		// lines with the batch id; they are not this request's alone.
		text = append(text, "sluice: this invocation ran in batch "...)
		text = append(text, o.RequestID...)
		text = append(text, " with other events; its log lines are tagged with the batch id\n"...)
	}
	text = append(text, logs...)
	if o.Queued > 0 {
		// Not a line of Lambda's: the wait in the queue, which Duration
		// and the timeout do not count; REPORT stays as Lambda writes it.
		text = append(text, "sluice: Queue Duration: "...)
		text = strconv.AppendFloat(text, float64(o.Queued.Microseconds())/1000, 'f', 2, 64)
		text = append(text, " ms\n"...)
	}
	text = append(text, "END RequestId: "...)
	text = append(text, id...)
	text = append(text, '\n')
	text = AppendReport(text, id, o, memoryMB)
	text = append(text, '\n')
	return base64.StdEncoding.AppendEncode(dst, lastBytes(text, TailSize))
}

// AppendReport appends Lambda's REPORT line of an invocation, without a
// line end: "REPORT RequestId: ID Duration: 1.23 ms Billed Duration: 2 ms
// Memory Size: 128 MB Max Memory Used: 57 MB", then " Init Duration:
// 12.34 ms" after a cold start. Max Memory Used is the peak resident
// memory of the process that ran it, at least 1 MB.
func AppendReport(dst []byte, id string, o invoker.Outcome, memoryMB int64) []byte {
	dst = append(dst, "REPORT RequestId: "...)
	dst = append(dst, id...)
	dst = append(dst, " Duration: "...)
	dst = strconv.AppendFloat(dst, float64(o.Duration.Microseconds())/1000, 'f', 2, 64)
	dst = append(dst, " ms Billed Duration: "...)
	dst = strconv.AppendInt(dst, int64((o.Duration+time.Millisecond-1)/time.Millisecond), 10)
	dst = append(dst, " ms Memory Size: "...)
	dst = strconv.AppendInt(dst, memoryMB, 10)
	dst = append(dst, " MB Max Memory Used: "...)
	dst = strconv.AppendInt(dst, max((o.MaxRSSBytes+(1<<20)-1)>>20, 1), 10)
	dst = append(dst, " MB"...)
	if o.InitDuration > 0 {
		dst = append(dst, " Init Duration: "...)
		dst = strconv.AppendFloat(dst, float64(o.InitDuration.Microseconds())/1000, 'f', 2, 64)
		dst = append(dst, " ms"...)
	}
	return dst
}

// appendFunctionError appends the error payload Lambda returns for an
// unhandled function error, {"errorMessage":…,"errorType":…,"stackTrace":[…]}:
//
//   - a *plugins.FunctionError gives its fields (a runtime's own error, a
//     Runtime.ExitError of the lambda worker);
//   - a timeout is Sandbox.Timedout, "RequestId: ID Error: Task timed out
//     after N.NN seconds", as Lambda reports it;
//   - a worker that failed as a whole (a crashed process) is
//     Runtime.ExitError;
//   - any other error, as a Go handler returns it, takes its Go type name
//     as errorType, as aws-lambda-go reports errors.
func appendFunctionError(dst []byte, id string, err error) []byte {
	var (
		fe       *plugins.FunctionError
		te       *invoker.TimeoutError
		we       *invoker.WorkerError
		msg, typ string
		trace    []string
	)
	switch {
	case errors.As(err, &fe):
		msg, typ, trace = fe.Message, fe.Type, fe.Trace
	case errors.As(err, &te):
		msg, typ = "RequestId: "+id+" Error: "+te.Error(), "Sandbox.Timedout"
	case errors.As(err, &we):
		msg, typ = "RequestId: "+id+" Error: "+we.Err.Error(), "Runtime.ExitError"
	default:
		msg, typ = err.Error(), goErrorType(err)
	}
	dst = append(dst, `{"errorMessage":`...)
	dst = plugins.AppendJSONString(dst, msg)
	if typ != "" {
		dst = append(dst, `,"errorType":`...)
		dst = plugins.AppendJSONString(dst, typ)
	}
	if len(trace) > 0 {
		dst = append(dst, `,"stackTrace":[`...)
		for i, l := range trace {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = plugins.AppendJSONString(dst, l)
		}
		dst = append(dst, ']')
	}
	return append(dst, '}')
}

// goErrorType names an error's type as aws-lambda-go does: the name of the
// type, or of the type it points to.
func goErrorType(err error) string {
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}
