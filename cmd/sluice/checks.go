package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/sluicehq/sluice/cmd/sluice/internal/config"
	"github.com/sluicehq/sluice/configs"
	"github.com/sluicehq/sluice/plugins/goplugin"
	"github.com/sluicehq/sluice/plugins/runtimes"
)

func defaultConfig() []byte { return configs.Default }

// checkRuntime runs the checks that need the machine, not only the file,
// so that `sluice validate` catches what would stop `serve` at start: a Go
// plugin that is missing or built unlike this binary, a process or Lambda
// command that is not there or not executable, a dead-letter file whose
// folder does not exist, a Python or Node.js handler whose interpreter,
// file or function is missing or whose file does not parse, a Java handler
// whose class is not in its code or whose JDK has no javac. Problems come back as *config.Errors, positioned.
func checkRuntime(f *config.File) error {
	var errs config.Errors
	add := func(path, format string, args ...any) {
		pos, ok := f.Pos(path)
		if !ok {
			pos = config.Pos{Line: 1, Col: 1}
		}
		errs.List = append(errs.List, config.Error{File: f.Path, Pos: pos, Msg: fmt.Sprintf(format, args...)})
	}
	for _, fn := range f.Functions {
		key := "functions." + fn.Name
		switch fn.Runtime {
		case config.RuntimePlugin:
			if err := goplugin.Check(fn.Path); err != nil {
				add(key+".path", "path: %v", err)
			}
		case config.RuntimeProcess:
			if err := checkCommand(fn.Command[0], ""); err != nil {
				add(key+".command", "command: %v", err)
			}
		case config.RuntimeLambda:
			if fn.Dir != "" {
				if st, err := os.Stat(fn.Dir); err != nil || !st.IsDir() {
					add(key+".dir", "dir: folder %s does not exist", fn.Dir)
					break
				}
			}
			if err := checkCommand(fn.Command[0], fn.Dir); err != nil {
				add(key+".command", "command: %v", err)
			}
		case config.RuntimePython, config.RuntimeNodejs, config.RuntimeJava:
			interp, err := runtimes.Interpreter(fn.Runtime, fn.RuntimeVersion, fn.Interpreter)
			if err != nil {
				if fn.Interpreter != "" {
					add(key+".interpreter", "%v", err)
				} else {
					add(key+".runtime", "runtime: %v", err)
				}
				break
			}
			code, err := codeDir(&fn)
			if err != nil {
				add(key+".code", "code: %v", err)
				break
			}
			// What the runtime would report at start, as far as it can be
			// told without running the function's code.
			if err := runtimes.Check(context.Background(), fn.Runtime, interp, code, fn.Handler); err != nil {
				add(key+".handler", "handler: %v", err)
			}
			if fn.Runtime == config.RuntimeJava {
				if _, err := runtimes.Javac(interp); err != nil {
					add(key+".runtime", "runtime: %v", err)
				}
			}
		}
		if p := fn.DeadLetter.File; p != "" {
			if st, err := os.Stat(filepath.Dir(p)); err != nil || !st.IsDir() {
				add(key+".dead_letter.file", "dead_letter.file: folder %s does not exist", filepath.Dir(p))
			}
		}
	}
	if len(errs.List) == 0 {
		return nil
	}
	sort.SliceStable(errs.List, func(i, j int) bool {
		a, b := errs.List[i].Pos, errs.List[j].Pos
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
	return &errs
}

// checkCommand reports a program that cannot be run: one with a slash must
// exist (relative to dir when set, else to the working directory, as the
// workers run it) and be executable; one without is looked up in PATH.
func checkCommand(prog, dir string) error {
	if !strings.Contains(prog, "/") {
		if _, err := exec.LookPath(prog); err != nil {
			return fmt.Errorf("%q is not in PATH", prog)
		}
		return nil
	}
	if dir != "" && !filepath.IsAbs(prog) {
		prog = filepath.Join(dir, prog)
	}
	st, err := os.Stat(prog)
	switch {
	case err != nil:
		return fmt.Errorf("%s does not exist (built yet? make plugins builds the examples)", prog)
	case st.IsDir():
		return fmt.Errorf("%s is a folder, not a program", prog)
	case st.Mode()&0o111 == 0:
		return fmt.Errorf("%s is not executable", prog)
	}
	return nil
}

// enterCheckout makes the dev default's relative paths (bin/plugins/...,
// plugins/examples/...) resolve when bin/sluice is started from another
// folder: if the working directory is not a Sluice checkout but the folder
// above the binary is, work from there.
func enterCheckout() {
	if _, err := os.Stat("configs/sluice.yaml"); err == nil {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	root := filepath.Dir(filepath.Dir(exe))
	if _, err := os.Stat(filepath.Join(root, "configs", "sluice.yaml")); err == nil {
		_ = os.Chdir(root)
	}
}
