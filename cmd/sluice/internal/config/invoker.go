package config

import (
	"time"

	"github.com/sluicehq/sluice/invoker"
)

// Invoker returns the function's invocation policy for invoker.New. Zero
// fields stay zero, so the invoker applies its defaults; a "max_wait: 0" in
// the file is invoker.NoWait.
func (fn *Function) Invoker() invoker.Config {
	var maxWait time.Duration
	switch w := fn.Batch.MaxWait; {
	case w == nil:
	case *w == 0:
		maxWait = invoker.NoWait
	default:
		maxWait = *w
	}
	return invoker.Config{
		Timeout:     fn.Timeout,
		Concurrency: fn.Concurrency,
		Queue:       fn.Queue,
		Memory:      fn.Memory,
		Batch: invoker.BatchConfig{
			MaxItems:  fn.Batch.MaxItems,
			MaxBytes:  int(fn.Batch.MaxBytes),
			MaxWait:   maxWait,
			SyncItems: fn.Batch.SyncItems,
		},
		Retry: invoker.RetryConfig{
			Attempts:   fn.Retry.Attempts,
			Backoff:    fn.Retry.Backoff,
			MaxBackoff: fn.Retry.MaxBackoff,
			Bisect:     fn.Retry.Bisect,
			MaxAge:     fn.Retry.MaxAge,
		},
	}
}
