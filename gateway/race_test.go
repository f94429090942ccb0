//go:build race

package gateway

// raceEnabled: the race detector drops a share of sync.Pool puts, so an
// allocation test of pooled buffers cannot hold under it.
const raceEnabled = true
