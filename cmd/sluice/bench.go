package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/sluicehq/sluice/bench"
)

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func cmdBench(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("bench: want http, kafka, suite or soak")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	switch args[0] {
	case "http":
		return benchHTTP(ctx, args[1:], stdout, stderr)
	case "kafka":
		return benchKafka(ctx, args[1:], stdout, stderr)
	case "suite":
		return benchSuite(ctx, args[1:], stdout, stderr)
	case "soak":
		return benchSoak(ctx, args[1:], stdout, stderr)
	case "ceiling":
		return benchCeiling(args[1:], stderr)
	default:
		return usageErr("bench: unknown target %q: want http, kafka, suite or soak", args[0])
	}
}

func benchHTTP(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sluice bench http", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg bench.HTTPConfig
	var bodyFile, jsonOut, htmlOut string
	var headers stringList
	fs.StringVar(&cfg.URL, "url", "", "target URL (required)")
	fs.StringVar(&cfg.Method, "method", "", "HTTP method (default POST with --body, else GET)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 0, "connections of a closed-loop run (default 64)")
	fs.IntVar(&cfg.Rate, "rate", 0, "requests per second of an open-loop run (default: closed loop)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured duration")
	fs.DurationVar(&cfg.Warmup, "warmup", 0, "unmeasured warm-up before the run")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "timeout of one request")
	fs.StringVar(&bodyFile, "body", "", "file whose content is the request body")
	fs.Var(&headers, "H", "request header \"Name: value\" (repeatable)")
	fs.StringVar(&jsonOut, "json", "", "write the result as JSON to this file")
	fs.StringVar(&htmlOut, "report", "", "write an HTML report to this file")
	if err := fs.Parse(args); err != nil {
		return usageErr("%v", err)
	}
	if bodyFile != "" {
		b, err := os.ReadFile(bodyFile)
		if err != nil {
			return usageErr("bench: %v", err)
		}
		cfg.Body = b
	}
	cfg.Headers = headers
	cfg.Progress = stderr
	res, err := bench.RunHTTP(ctx, cfg)
	if err != nil {
		return usageErr("%v", err)
	}
	return writeResult(res, stdout, jsonOut, htmlOut)
}

func benchKafka(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sluice bench kafka", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg bench.KafkaConfig
	var brokers, jsonOut, htmlOut string
	fs.StringVar(&brokers, "brokers", "127.0.0.1:9092", "comma-separated seed brokers")
	fs.StringVar(&cfg.Topic, "topic", "", "topic to produce to (required)")
	fs.Int64Var(&cfg.Records, "records", 100000, "records to produce")
	fs.IntVar(&cfg.Size, "size", 100, "record value size in bytes")
	fs.IntVar(&cfg.Rate, "rate", 0, "records per second (default: as fast as acknowledged)")
	fs.IntVar(&cfg.Keys, "keys", 0, "distinct keys (default: no keys)")
	fs.BoolVar(&cfg.JSON, "json-values", false, "JSON object values instead of random bytes")
	fs.StringVar(&jsonOut, "json", "", "write the result as JSON to this file")
	fs.StringVar(&htmlOut, "report", "", "write an HTML report to this file")
	if err := fs.Parse(args); err != nil {
		return usageErr("%v", err)
	}
	cfg.Brokers = strings.Split(brokers, ",")
	cfg.Progress = stderr
	res, err := bench.RunKafka(ctx, cfg)
	if err != nil {
		return err
	}
	return writeResult(res, stdout, jsonOut, htmlOut)
}

func writeResult(res *bench.Result, stdout io.Writer, jsonOut, htmlOut string) error {
	res.Print(stdout)
	if jsonOut != "" {
		if err := res.WriteJSON(jsonOut); err != nil {
			return err
		}
	}
	if htmlOut != "" {
		if err := res.WriteHTML(htmlOut); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  report     %s\n", htmlOut)
	}
	return nil
}
