// Package gateway is Sluice's HTTP front door, on fasthttp: the Server
// routes requests to functions and to custom handlers, and the Admin
// listener serves /metrics, /healthz, /readyz and /debug/pprof/.
//
// # Routing
//
// Routes are compiled into a tree of path segments. A segment {name}
// matches one non-empty segment, a last segment {name+} the rest of the
// path; static segments win over {name}, {name} over {name+}, with
// backtracking. One trailing slash is ignored. Matching uses fasthttp's
// normalized, percent-decoded path and does not allocate. A path that no
// route has is 404; a path some route has, but not with the request's
// method, is 405 with Allow.
//
// # Requests as events
//
// A request on a function's route becomes a CloudEvents envelope of type
// sluice.http.request (plugins.TypeHTTPRequest), source
// /sluice/http/<function>, subject the raw path, its id the request id, an
// incoming traceparent and tracestate kept. Its data is the API Gateway
// HTTP API payload format 2.0, what a Lambda function behind API Gateway
// receives: version, routeKey ("POST /echo/{id}"), rawPath and
// requestContext.http.path (the path as received, still percent-encoded,
// as Lambda function URLs give it), rawQueryString, cookies, headers
// (lowercase names, repeated headers joined by commas, X-Forwarded-For,
// -Port and -Proto added as a proxy does), queryStringParameters (decoded,
// repeated keys joined by commas), pathParameters (decoded),
// requestContext{accountId "anonymous", apiId "sluice", domainName,
// domainPrefix, http{method, path, protocol, sourceIp, userAgent},
// requestId, routeKey, stage "$default", time, timeEpoch}, body and
// isBase64Encoded. The body is text when it is valid UTF-8 with a textual
// content type (text/*, JSON, XML, YAML, JavaScript), base64 otherwise,
// form posts and bodies without a content type included, as API Gateway
// does.
//
// # Responses
//
// Every response carries X-Sluice-Request-Id, a fresh UUID per request
// (an incoming one is not trusted; traceparent is the way to correlate
// across services). A sync route answers with the function's output as API
// Gateway's payload format 2.0 does (see writeOutput): an object with a
// statusCode shapes the response (headers, cookies, body, isBase64Encoded;
// format 2.0 has no multiValueHeaders); a JSON string is a 200 with the
// string's text as the body; anything else — other JSON, null, or output
// that is not JSON at all, such as the plain text a Lambda runtime may
// post — is a 200 with the output as the body, Content-Type
// application/json, as API Gateway assumes. An async route answers 202
// {"requestId":ID} once the event is queued (2 retries, then the
// function's dead letter) or published to its AsyncTopic.
//
// Errors have the body {"message":M,"requestId":ID} and these statuses:
// 404 Not Found, 405 Method Not Allowed (with Allow), 413 Request
// Entity Too Large (body over max_body, answered before the body is read,
// also to "Expect: 100-continue"), 429 Too Many Requests with Retry-After
// (the function's queue is full), 502 on a function error or a malformed
// response object (a statusCode out of range, say), 503 with Retry-After
// when the function is shutting down or an async publish failed, 504
// Endpoint request timed out.
// Requests fasthttp cannot read get 400, 408 or 431 in the same shape.
// A connection answered 413 before its body was read is closed gracefully
// (half-close, then the rest of the body is drained for a bounded time),
// so that clients still sending get the 413 rather than a reset.
//
// # Storage webhooks
//
// Server.HandleStorage adds a storage trigger: a webhook for S3 event
// notifications and MinIO bucket notifications (POST; HEAD answers 200, as
// MinIO checks its target with one). With a token, requests must carry
// "Authorization: Bearer <token>", as MinIO's webhook target sends its
// auth_token (a two-word auth_token is sent, and checked, verbatim),
// compared in constant time; others get 401 with WWW-Authenticate. The
// body is decoded by formats.DecodeStorageNotification, each record
// becoming one sluice.storage.object.* envelope and one invocation (trigger
// "storage", the function's retries, its dead letter). The webhook answers
// 200 {"requestId","accepted","filtered"} once every record was accepted,
// not run: queued in the function's in-memory queue as one group, which
// the invoker takes whole or not at all, or published to the route's
// AsyncTopic. A malformed body is 400 naming the bad field, a full queue
// 429 with Retry-After, and in both cases nothing is accepted. s3:TestEvent
// is 200 with no events.
//
// # Filters
//
// Route.Filter and StorageRoute.Filter (a trigger's filter:, compiled by
// invoker/filter) skip the events they reject, counted in
// sluice_filtered_total{trigger="http"|"storage"}. A storage webhook still
// answers 200; a sync HTTP route answers 204 No Content, an async one 202.
//
// # Lambda invoke API
//
// LambdaAPI.Register adds AWS Lambda's Invoke operation,
// POST /2015-03-31/functions/{name}/invocations, for every function it is
// given, whatever its runtime, so that the AWS CLI and SDKs invoke them
// with --endpoint-url, and the management reads (below).
// The name may be a function name, NAME:QUALIFIER, a partial ARN
// (ACCOUNT:function:NAME) or a full ARN; the only qualifier is $LATEST,
// in the name or as ?Qualifier=. The event is a sluice.invoke envelope
// (source /sluice/invoke/NAME, id the request id) whose data is the payload
// exactly as sent, which must be JSON; X-Amz-Client-Context is kept, as
// sent, in the "clientcontext" extension. Every answer carries
// x-amzn-RequestId, the request id.
//
//   - X-Amz-Invocation-Type: RequestResponse (the default) answers 200
//     with the function's output as the body, byte for byte ("null" for
//     none) and X-Amz-Executed-Version: $LATEST. A function error is a 200
//     too, with X-Amz-Function-Error: Unhandled and Lambda's error payload
//     {"errorMessage","errorType","stackTrace"}: the function's own error;
//     Sandbox.Timedout "RequestId: ID Error: Task timed out after N.NN
//     seconds" for a timeout; Runtime.ExitError for a runtime or process
//     that died; a Go error's type name, as aws-lambda-go names it;
//     Function.ResponseSizeTooLarge for an output over MaxPayload.
//     X-Amz-Log-Type: Tail adds X-Amz-Log-Result, base64 of the last 4 KB
//     of the invocation's log: START, the function's own lines (from the
//     LogTap), END and REPORT.
//   - Event answers 202 once the event is queued (trigger "invoke", two
//     retries, then the function's dead letter).
//   - DryRun answers 204 once the function is found.
//
// Errors have Lambda's shape, which the AWS SDKs turn into their typed
// errors: the x-amzn-ErrorType header and {"Type":"User","message":M}
// ({"Type":"Service","Message":M} for ServiceException). 400
// InvalidRequestContentException (payload not JSON, bad client context),
// ValidationException (bad invocation or log type, bad name) or
// InvalidParameterValueException (two qualifiers that disagree); 404
// ResourceNotFoundException "Function not found: ARN"; 413
// RequestEntityTooLargeException over LambdaAPIConfig.MaxPayload (6 MiB)
// or MaxEventPayload (1 MiB), or over max_body; 429
// TooManyRequestsException with Retry-After and Reason
// ReservedFunctionConcurrentInvocationLimitExceeded when the function's
// queue is full; 503 ServiceException with Retry-After when it is closing.
// Any other path under /2015-03-31/ is 404 UnknownOperationException.
//
// Authentication (LambdaAPIConfig.Auth) comes before everything else on
// those paths. AuthSigV4 checks AWS Signature Version 4 as Lambda does:
// the canonical request rebuilt from the request as received (the path as
// sent, encoded once more; the query decoded, sorted and strictly
// encoded; the signed headers, trimmed; the body's SHA-256, or
// X-Amz-Content-Sha256 when it is UNSIGNED-PAYLOAD or the body's true
// hash), the string to sign over X-Amz-Date and the scope
// DATE/REGION/lambda/aws4_request, the key derived from the configured
// secret, and the signature compared in constant time. host and
// x-amz-date must be signed; X-Amz-Date must be within 15 minutes of the
// server's clock and agree with the scope's date. AuthToken requires
// "Authorization: Bearer <Token>", compared in constant time. Refusals,
// in Lambda's shape and with AWS's codes: 403
// MissingAuthenticationTokenException "Missing Authentication Token" (no
// Authorization header), 403 UnrecognizedClientException (an unknown
// access key id, a wrong bearer token), 403 InvalidSignatureException (a
// signature or payload hash that does not match, an expired or future
// X-Amz-Date, a scope for another service or region), 400
// IncompleteSignatureException (a malformed Authorization header, no
// X-Amz-Date). Messages never hold a secret.
//
// Management reads: GET /2015-03-31/functions/ (ListFunctions, in name
// order, MaxItems at a time, default 50, NextMarker the last name of a
// page with more), GET /2015-03-31/functions/{name} (GetFunction,
// {"Configuration":…,"Tags":{}}) and GET …/{name}/configuration
// (GetFunctionConfiguration). A FunctionConfiguration holds FunctionName,
// FunctionArn, Runtime and Handler (LambdaAPIConfig.Functions), Timeout in
// whole seconds, MemorySize in MiB when set, LastModified
// (LambdaAPIConfig.LoadedAt, as 2006-01-02T15:04:05.000+0000), Version
// $LATEST, State Active, LastUpdateStatus Successful, PackageType Zip,
// Architectures, and Environment.Variables with every value "****" unless
// the request carries the admin token as X-Sluice-Admin-Token. An unknown
// name or version is 404 ResourceNotFoundException.
//
// Log tails: the workers hand each log line to the plugins.LogFunc that
// cmd/sluice builds, which passes it on to LogTap.Log. A Tail request
// watches its request id in the LogTap before invoking and collects the
// lines after. The lambda worker tags the lines of a one-event invocation
// with the envelope id and passes them on before the invocation ends; the
// process worker tags a batch's lines with Batch.RequestID (the envelope id
// for a batch of one) and reads stderr on its own goroutine, so the request
// waits LambdaAPIConfig.TailSettle for late lines. A synchronous event runs
// alone unless its function is busy (events queued, or every slot taken):
// then the invoker may batch it with its neighbours, the lines carry the
// batch id, and the tail holds only a line saying so. Go functions (builtin,
// plugin) write no log lines of their own: their tails hold the frame lines.
//
// # Lifecycle
//
// The caller creates the listener (so that tableflip can hand it over) and
// passes it to Serve, which logs "listening" with the bound addr; with
// Config.TLS set it speaks HTTPS. Shutdown stops accepting and drains:
// keep-alive connections carry requests on until one is answered with
// Connection: close, each from a moment of its own within a spread of a
// millisecond per open connection (Config.DrainSpread at most), so that
// busy clients reconnect a few at a time. An idle connection is closed
// only once idle for twice the longest interval its client left between two
// requests on it (Config.IdleDrain at least, 10s at most), since a client
// still holding it would fail its next request on it: one that rotates its
// requests over many connections comes back to each one only every so
// often. That is what a zero-downtime reload needs (the listening socket
// lives on in the successor process). See
// Shutdown's doc for requests still running when its context ends.
//
// # Metrics
//
// sluice_http_requests_total{route,code} and
// sluice_http_request_duration_seconds{route}; route is the route key, or
// "none" for requests no route took; sluice_filtered_total{trigger} for
// routes with a filter. The invoker counts invocations,
// throttles, retries, dead letters, queue depth and durations.
package gateway
