package process

import "time"

// PIDs returns the process ids of p's live processes.
func PIDs(p *Pool) []int {
	var pids []int
	for _, in := range p.liveInstances() {
		pids = append(pids, in.pid)
	}
	return pids
}

// CrashDelay returns how long the next process start waits out the
// restart backoff.
func CrashDelay(p *Pool) time.Duration { return p.crashes.Delay() }

// SetRSSInterval sets how often peak memory is sampled; call it before Start.
func SetRSSInterval(p *Pool, d time.Duration) { p.rssInterval = d }
