// Package runtimes holds Sluice's managed Lambda runtimes, runtime: python
// and runtime: nodejs: two small runtime interface clients, standard
// library only (Python's standard library, Node.js's built-in modules),
// embedded in the binary and written out at start into a private folder.
// Each speaks the Lambda Runtime API, so a managed function is a Lambda
// pool (plugins/lambda) whose command is the interpreter running the
// client: it gets Lambda-shaped events, batchItemFailures, restarts and
// whatever else the pool does.
//
// The clients import the handler named by _HANDLER (FILE.FUNCTION) from
// LAMBDA_TASK_ROOT once per process (module init code runs once per
// instance), pass a context object shaped as Lambda's, report an exception
// as {errorMessage, errorType, stackTrace} to /invocation/{id}/error and a
// handler that cannot be loaded as Runtime.ImportModuleError,
// Runtime.UserCodeSyntaxError, Runtime.HandlerNotFound or
// Runtime.MalformedHandlerName to /runtime/init/error. Node.js's console
// lines carry Lambda's "timestamp\trequestId\tLEVEL\t" prefix; Python's
// print lines go out as written and its logging records in Lambda's
// "[LEVEL]\ttimestamp\trequestId\t" format.
//
// Node.js handlers may be async, return a promise, or take a callback; the
// response goes as soon as the promise settles or the callback is called
// (as with callbackWaitsForEmptyEventLoop = false), and a handler of fewer
// than three parameters that returns a plain value answers with it.
package runtimes
