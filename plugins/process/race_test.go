//go:build race

package process_test

// raceEnabled: the race detector makes sync.Pool drop items on purpose, so
// encoding/json's pooled scanners allocate and allocation counts mean little.
const raceEnabled = true
