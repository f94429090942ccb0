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
// statusCode shapes the response; any other JSON, null included, is a 200
// JSON body. An async route answers 202 {"requestId":ID} once the event is
// queued (2 retries, then the function's dead letter) or published to its
// AsyncTopic.
//
// Errors have the body {"message":M,"requestId":ID} and the statuses of
// SPEC §6: 404 Not Found, 405 Method Not Allowed (with Allow), 413 Request
// Entity Too Large (body over max_body, answered before the body is read,
// also to "Expect: 100-continue"), 429 Too Many Requests with Retry-After
// (the function's queue is full), 502 on a function error or an output
// that is not a valid response, 503 with Retry-After when the function is
// shutting down or an async publish failed, 504 Endpoint request timed out.
// Requests fasthttp cannot read get 400, 408 or 431 in the same shape.
// A connection answered 413 before its body was read is closed gracefully
// (half-close, then the rest of the body is drained for a bounded time),
// so that clients still sending get the 413 rather than a reset.
//
// # Lifecycle
//
// The caller creates the listener (so that tableflip can hand it over) and
// passes it to Serve, which logs "listening" with the bound addr; with
// Config.TLS set it speaks HTTPS. Shutdown stops accepting and drains;
// see its doc for requests still running when its context ends.
//
// # Metrics
//
// sluice_http_requests_total{route,code} and
// sluice_http_request_duration_seconds{route}; route is the route key, or
// "none" for requests no route took. The invoker counts invocations,
// throttles and the rest of SPEC §8.
package gateway
