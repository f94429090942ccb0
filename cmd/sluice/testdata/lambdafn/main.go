// Command lambdafn is a test function for runtime: lambda, built with
// aws-lambda-go. Its event may ask it to sleep ({"sleep_ms": N}) and to
// allocate and keep memory ({"alloc_mb": N}); it answers {"pid": PID}.
package main

import (
	"context"
	"encoding/json"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
)

var kept [][]byte

func handle(_ context.Context, event json.RawMessage) (any, error) {
	var ask struct {
		SleepMS int `json:"sleep_ms"`
		AllocMB int `json:"alloc_mb"`
	}
	_ = json.Unmarshal(event, &ask)
	time.Sleep(time.Duration(ask.SleepMS) * time.Millisecond)
	for range ask.AllocMB {
		b := make([]byte, 1<<20)
		for i := range b {
			b[i] = 1
		}
		kept = append(kept, b)
	}
	return map[string]int{"pid": os.Getpid()}, nil
}

func main() { lambda.Start(handle) }
