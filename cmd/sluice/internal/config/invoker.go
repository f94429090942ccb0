package config

import "github.com/sluicehq/sluice/invoker"

// Invoker returns the function's invocation policy for invoker.New. Zero
// fields stay zero, so the invoker applies its defaults; a "max_wait: 0" in
// the file arrives as the invoker's negative "do not wait".
func (fn *Function) Invoker() invoker.Config {
	return invoker.Config{
		Timeout:     fn.Timeout,
		Concurrency: fn.Concurrency,
		Queue:       fn.Queue,
		Memory:      fn.Memory,
		Batch: invoker.BatchConfig{
			MaxItems:  fn.Batch.MaxItems,
			MaxBytes:  int(fn.Batch.MaxBytes),
			MaxWait:   fn.Batch.MaxWait,
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
