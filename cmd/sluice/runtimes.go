package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sluicehq/sluice/cmd/sluice/internal/config"
	"github.com/sluicehq/sluice/internal/memlimit"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/plugins/lambda"
	"github.com/sluicehq/sluice/plugins/runtimes"
)

// managedPool builds the Lambda pool of a runtime: python, nodejs or java
// function: the interpreter running Sluice's runtime interface client,
// written out into a private folder that the returned Clients removes (for
// Java, compiled there first by the JDK's javac).
func managedPool(cfg *config.File, fn *config.Function, timeout time.Duration, onRestart func(int, error), logFn plugins.LogFunc) (*lambda.Pool, *runtimes.Clients, error) {
	key := "functions." + fn.Name
	interp, err := runtimes.Interpreter(fn.Runtime, fn.RuntimeVersion, fn.Interpreter)
	if err != nil {
		at := key + ".runtime"
		if fn.Interpreter != "" {
			at = key + ".interpreter"
		}
		return nil, nil, fmt.Errorf("%s: %w", cfg.Where(at), err)
	}
	code, err := codeDir(fn)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: code: %w", cfg.Where(key+".code"), err)
	}
	if _, err := runtimes.HandlerFile(fn.Runtime, code, fn.Handler); err != nil {
		return nil, nil, fmt.Errorf("%s: handler: %w", cfg.Where(key+".handler"), err)
	}
	clients, err := runtimes.Install()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", cfg.At(fn.Pos), err)
	}
	command, dir := clients.Command(fn.Runtime, interp), code
	if fn.Runtime == runtimes.Java {
		if err := clients.BuildJava(context.Background(), interp); err != nil {
			_ = clients.Close()
			return nil, nil, fmt.Errorf("%s: runtime: %w", cfg.Where(key+".runtime"), err)
		}
		memory := fn.Memory
		if memory == 0 {
			memory = lambda.DefaultMemory
		}
		command = clients.JavaCommand(interp, code, memory)
		if runtimes.IsJar(code) {
			// A jar's folder is the working directory and LAMBDA_TASK_ROOT.
			dir = filepath.Dir(code)
		}
	}
	p, err := lambda.New(fn.Name, lambda.Config{
		Command:          command,
		Dir:              dir,
		Handler:          fn.Handler,
		Min:              fn.Scaling.Min,
		Max:              fn.Scaling.Max,
		Idle:             fn.Scaling.Idle,
		Env:              fn.Env,
		Memory:           fn.Memory,
		Limit:            memlimit.Default(),
		Timeout:          timeout,
		Region:           functionRegion(cfg),
		BootstrapServers: cfg.Kafka.Brokers,
		OnRestart:        onRestart,
		UnixSocket:       true,
	}, logFn)
	if err != nil {
		_ = clients.Close()
		return nil, nil, fmt.Errorf("%s: %w", cfg.At(fn.Pos), err)
	}
	return p, clients, nil
}

// codeDir is a managed function's code folder, absolute: code: as written
// (relative to the working directory), or the working directory; for
// runtime java it may also be a jar.
func codeDir(fn *config.Function) (string, error) {
	dir := fn.Code
	if dir == "" {
		dir = "."
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(abs)
	switch {
	case err != nil && fn.Runtime == config.RuntimeJava && runtimes.IsJar(dir):
		return "", fmt.Errorf("jar %s does not exist", dir)
	case err != nil:
		return "", fmt.Errorf("folder %s does not exist", dir)
	case fn.Runtime == config.RuntimeJava && !st.IsDir() && runtimes.IsJar(dir):
	case !st.IsDir():
		return "", fmt.Errorf("%s is not a folder", dir)
	}
	return abs, nil
}

// absDir makes a runtime: lambda dir absolute: the runtime is started in
// it, so a relative command must not be resolved twice. Empty stays empty
// (the working directory).
func absDir(dir string) (string, error) {
	if dir == "" {
		return "", nil
	}
	return filepath.Abs(dir)
}
