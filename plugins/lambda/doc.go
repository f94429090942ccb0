// Package lambda runs unmodified AWS Lambda custom runtimes as Sluice
// functions (runtime: lambda): programs built with aws-lambda-go's
// lambda.Start, awslambdaric, a bootstrap script — anything that speaks the
// Lambda Runtime API.
//
// A Pool keeps between Min and Max runtime processes (Instances for a
// fixed pool), starting one per waiting invocation while every runtime is
// busy and stopping those idle for Idle (package internal/scale); the
// invocation that waited for a start gets its time as its Init Duration.
// With a Limit, Memory is enforced on each process (package
// internal/memlimit) and a runtime that runs out fails its invocation with
// errorType Runtime.OutOfMemory. Each runtime gets its own Runtime API endpoint
// on 127.0.0.1 (AWS_LAMBDA_RUNTIME_API), the variables Lambda sets
// (AWS_LAMBDA_FUNCTION_NAME, _MEMORY_SIZE, _VERSION=$LATEST, _TIMEOUT,
// AWS_LAMBDA_LOG_GROUP_NAME, _LOG_STREAM_NAME, AWS_REGION, _HANDLER,
// LAMBDA_TASK_ROOT, TZ=UTC), the function's env, and PATH, HOME and LANG —
// nothing else of the gateway's environment. The endpoint serves
// GET /2018-06-01/runtime/invocation/next (a long poll),
// POST …/invocation/{id}/response (202; 413 over 6 MiB),
// POST …/invocation/{id}/error and POST /2018-06-01/runtime/init/error.
//
// Events arrive in Lambda's own shapes: an HTTP request as the API Gateway
// HTTP API payload 2.0 (the envelope's data as it is), a storage
// notification as an S3 event with one record, a schedule tick as an
// EventBridge Scheduled Event (its payload in "detail"), a direct invocation
// as its payload unchanged, and the Kafka records and Debezium change events
// of a batch as one self-managed Kafka event. Any other event goes as its
// CloudEvents JSON. A response {"batchItemFailures":[{"itemIdentifier":…}]}
// to a Kafka, storage or schedule invocation fails only the items it names:
// Kafka records by {"partition":"topic-partition","offset":N}, others by
// envelope id.
//
// A runtime that exits, never polls, or misses its deadline is killed with
// its process group and replaced; an invocation it never took moves to
// another instance. A runtime that dies before completing any invocation is
// restarted after a backoff doubling from 100ms to 10s.
//
// The package is Unix-only (process groups, non-blocking pipes) and reads
// runtimes' peak memory from Linux's /proc when it can.
package lambda
