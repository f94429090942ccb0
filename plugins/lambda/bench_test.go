package lambda

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

// BenchmarkLambdaEcho measures one HTTP event's round trip through the Pool
// and the shipped lambda-echo runtime (aws-lambda-go): with one instance
// one event at a time, and with four instances under as many concurrent
// callers.
func BenchmarkLambdaEcho(b *testing.B) {
	for _, instances := range []int{1, 4} {
		b.Run(fmt.Sprintf("instances=%d", instances), func(b *testing.B) {
			p, err := New("lambda-echo", Config{Command: []string{fn(b, "lambda-echo")}, Instances: instances}, nil)
			if err != nil {
				b.Fatal(err)
			}
			if err := p.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer p.Close(context.Background())
			template := httpEvent()
			b.ReportAllocs()
			b.SetParallelism(instances) // GOMAXPROCS × instances callers
			hostCPU, runtimeCPU := cpuTime(syscall.RUSAGE_SELF), p.runtimeCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ev := *template
					ev.ID = plugins.NewID()
					batch := &plugins.Batch{
						ID: ev.ID, Function: "lambda-echo", Deadline: time.Now().Add(10 * time.Second),
						Events: []*plugins.Event{&ev}, Results: make([]plugins.Result, 1),
					}
					ctx, cancel := context.WithDeadline(context.Background(), batch.Deadline)
					err := p.Invoke(ctx, batch)
					cancel()
					if err != nil || batch.Results[0].Err != nil {
						b.Errorf("invoke: %v %v", err, batch.Results[0].Err)
						return
					}
				}
			})
			b.StopTimer()
			// CPU per event, on both sides of the Runtime API: unlike
			// ns/op, it holds on a machine shared with other work.
			b.ReportMetric(float64(cpuTime(syscall.RUSAGE_SELF)-hostCPU)/1e3/float64(b.N), "host-cpu-µs/op")
			b.ReportMetric(float64(p.runtimeCPU()-runtimeCPU)/1e3/float64(b.N), "runtime-cpu-µs/op")
		})
	}
}

// cpuTime returns the user and system CPU time of who, in nanoseconds.
func cpuTime(who int) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// runtimeCPU returns the CPU time the pool's current runtimes used, in
// nanoseconds, from /proc.
func (p *Pool) runtimeCPU() int64 {
	var total int64
	p.mu.Lock()
	procs := make([]*proc, 0, len(p.procs))
	for pr := range p.procs {
		procs = append(procs, pr)
	}
	p.mu.Unlock()
	for _, pr := range procs {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pr.cmd.Process.Pid) + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command name (which may hold spaces): utime is
		// the 14th field of the line, stime the 15th, in clock ticks.
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		total += (ut + st) * int64(time.Second/100) // USER_HZ is 100 on Linux
	}
	return total
}
