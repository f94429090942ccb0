package main

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sluicehq/sluice/bench"
)

// benchSuite runs the suite behind `make bench` against this binary.
func benchSuite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sluice bench suite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg bench.SuiteConfig
	var only string
	fs.DurationVar(&cfg.Duration, "duration", 8*time.Second, "duration of each HTTP measurement")
	fs.DurationVar(&cfg.Warmup, "warmup", time.Second, "warm-up before each HTTP measurement")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "connections of the closed-loop HTTP runs")
	fs.StringVar(&only, "only", "", "comma-separated substrings: run only the scenarios whose names hold one")
	fs.StringVar(&cfg.JSON, "json", "", "write every result to this JSON file")
	fs.StringVar(&cfg.Dir, "dir", ".", "repository root, where bin/functions and bin/plugins are")
	if err := fs.Parse(args); err != nil {
		return usageErr("%v", err)
	}
	if only != "" {
		cfg.Only = strings.Split(only, ",")
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cfg.Sluice = exe
	if cfg.Dir, err = filepath.Abs(cfg.Dir); err != nil {
		return err
	}
	cfg.Out, cfg.Progress = stdout, stderr
	_, err = bench.RunSuite(ctx, cfg)
	return err
}
