// Command sluice is the Sluice functions gateway: one binary that serves
// HTTP and Kafka triggers to function workers, validates configs, runs a
// function once locally, reloads itself without downtime and drives load.
//
// Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad config.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	_ "time/tzdata" // IANA timezones for schedules, also on hosts without zoneinfo

	"github.com/sluicehq/sluice/internal/memlimit"
)

const usage = `usage: sluice <command> [flags]

commands:
  serve [-c FILE]              run the gateway (embedded dev default without -c)
  validate -c FILE             check a config: prints ok, or every problem as FILE:LINE:COL: message
  invoke [-c FILE] FUNCTION [-e EVENT.json|-] [--as http|storage|cdc|schedule|kafka]
                               run a function once, locally, without a server
  reload [--pidfile F]         zero-downtime reload of the running gateway (same as kill -HUP)
  bench http|kafka ...         load generator (sluice bench http -h)
  version                      version, commit, Go version
`

// exitError carries a process exit code out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr is a bad-usage error: exit code 2.
func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

func main() {
	memlimit.Main() // the memory-limit shim: sluice __exec-limited BYTES PATH ARGV...
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		tuneGC()
		err = cmdServe(rest, stderr)
	case "validate":
		err = cmdValidate(rest, stdout, stderr)
	case "invoke":
		err = cmdInvoke(rest, stdin, stdout, stderr)
	case "reload":
		err = cmdReload(rest, stdout, stderr)
	case "bench":
		err = cmdBench(rest, stdout, stderr)
	case "version", "--version", "-version":
		printVersion(stdout)
	case "help", "-h", "--help", "-help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "sluice: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(stderr, "sluice: %s\n", msg)
	}
	return code
}

// parseInterleaved parses flags that may come before, between or after
// positional arguments (sluice invoke echo -e event.json), returning the
// positionals.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "-" {
			pos = append(pos, args[0])
			args = args[1:]
			continue
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}
