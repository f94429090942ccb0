package main

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/sluicehq/sluice/bench"
)

// benchSoak runs the soak behind `make soak` against this binary.
func benchSoak(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sluice bench soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg bench.SoakConfig
	fs.DurationVar(&cfg.Duration, "duration", 5*time.Minute, "duration of the load")
	fs.IntVar(&cfg.HTTPRate, "http-rate", 400, "requests per second to echo (a quarter more to hello.py)")
	fs.IntVar(&cfg.KafkaRate, "kafka-rate", 400, "records per second to the sink")
	fs.IntVar(&cfg.Reloads, "reloads", 10, "reloads, spread over the run (-1 for none)")
	fs.DurationVar(&cfg.CrashEvery, "crash-every", 10*time.Second, "how often a process-function worker is killed")
	fs.DurationVar(&cfg.Drain, "drain", 2*time.Minute, "how long to wait after the load for the sink to consume every record")
	dir := fs.String("dir", ".", "repository root, where plugins/examples/hello.py is")
	if err := fs.Parse(args); err != nil {
		return usageErr("%v", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cfg.Sluice = exe
	if cfg.Dir, err = filepath.Abs(*dir); err != nil {
		return err
	}
	cfg.Out, cfg.Progress = stdout, stderr
	_, err = bench.RunSoak(ctx, cfg)
	return err
}
