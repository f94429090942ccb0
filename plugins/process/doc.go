// Package process runs a function as a pool of long-lived subprocesses
// (runtime: process) speaking Sluice's JSON-lines protocol, one batch per
// line:
//
//	stdin:  {"batch":"ID","deadline_ms":EPOCH_MS,"events":[ENVELOPE,…]}
//	stdout: {"batch":"ID","results":[{"id":EVENT_ID,"ok":true,"output":ANY}|{"id":…,"ok":false,"error":"…"}]}
//
// Each process runs one batch at a time. Its stderr lines are the function's
// logs, handed to a plugins.LogFunc tagged with the request id of the batch
// that wrote them: a line written before the result line keeps its batch's
// id even when it is read after the result (the pool notes how many stderr
// bytes were unread when the batch ended), and a line written between
// batches gets "". A stdout line that is not a result line (a stray print)
// is logged the same way, with a warning, and harms nothing. A process that crashes, breaks the protocol or misses its
// deadline is killed with its whole process group and replaced; its batch
// fails with an error, and the invoker retries it. A process that keeps
// failing to start is restarted with an exponential backoff, and Invoke
// fails fast meanwhile rather than waiting for its deadline.
//
// Every new process first gets an empty batch (no events) and is put to work
// once it answers it with an empty results array: a command that cannot run
// or exits at once fails Start, with its stderr in the error, instead of
// failing the first real event.
//
// A process's environment is exactly the function's configured env plus
// PATH, HOME, LANG and TZ copied from the gateway's own environment; nothing
// else of the gateway's environment leaks into it.
//
// plugins/examples holds hello.py (Python) and procecho (Go), and a
// README describing the protocol for authors in other languages.
//
// A Pool keeps between Min and Max processes (Instances for a fixed pool),
// started on demand and stopped when idle (package internal/scale); with a
// Limit, Memory is enforced on each process (package internal/memlimit) and
// a process that runs out fails its batch with a *plugins.FunctionError of
// type Runtime.OutOfMemory.
//
// The package imports the standard library, plugins and the module's
// internal/scale and internal/memlimit only.
package process
