// Package builtin holds the Go functions compiled into the sluice binary
// (runtime: go), registered by name, and the Worker that runs them.
//
// The example functions registered here are echo (returns the event it got),
// noop (returns null), sink (appends each event as a JSON line to the file
// named by SINK_FILE in the function's env), sleep (waits the "ms" of its
// JSON payload) and fail (returns an error, the "error" of its payload).
package builtin
