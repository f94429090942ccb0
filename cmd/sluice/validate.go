package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/sluicehq/sluice/cmd/sluice/internal/config"
	"github.com/sluicehq/sluice/internal/memlimit"
)

// cmdValidate prints ok, or every problem of the file as FILE:LINE:COL:
// message and exits 2.
func cmdValidate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sluice validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "config file to check (required)")
	if err := fs.Parse(args); err != nil {
		return usageErr("%v", err)
	}
	if *path == "" || fs.NArg() > 0 {
		return usageErr("usage: sluice validate -c FILE")
	}
	f, err := config.Load(*path)
	if err == nil {
		err = checkRuntime(f)
	}
	if err != nil {
		var errs *config.Errors
		if errors.As(err, &errs) {
			fmt.Fprintln(stdout, errs.Error())
			return &exitError{code: 2, err: errors.New("")}
		}
		return &exitError{code: 2, err: err}
	}
	if usesSubprocesses(f) {
		// stderr: stdout is "ok" alone, for scripts.
		fmt.Fprintln(stderr, "sluice: "+memlimit.Default().Describe())
	}
	fmt.Fprintln(stdout, "ok")
	return nil
}

// usesSubprocesses reports whether f has process or lambda functions,
// whose memory setting is a limit.
func usesSubprocesses(f *config.File) bool {
	for _, fn := range f.Functions {
		if fn.Subprocess() {
			return true
		}
	}
	return false
}

// loadConfig reads the file at path, or the embedded dev default when path
// is empty.
func loadConfig(path string) (*config.File, error) {
	var f *config.File
	var err error
	if path == "" {
		enterCheckout()
		f, err = config.Parse("configs/sluice.yaml (embedded default)", defaultConfig())
	} else {
		f, err = config.Load(path)
	}
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	// The machine checks of validate (checkRuntime) are not repeated here:
	// building the workers meets the same problems and reports them with
	// the same positions.
	return f, nil
}
