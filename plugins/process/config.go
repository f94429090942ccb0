package process

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/memlimit"
)

// Config is the configuration of one function's process pool. Its zero
// value is not usable: Command is required. Every other zero field takes the
// default its comment names.
type Config struct {
	// Command is the program and its arguments (YAML key command). The
	// program is looked up in the gateway's PATH unless it holds a slash;
	// a relative path is relative to Dir. Required.
	Command []string
	// Dir is the working directory of the processes. Defaults to the
	// gateway's working directory.
	Dir string
	// Env is the function's environment (YAML key env). The processes get
	// it plus PATH, HOME, LANG and TZ from the gateway's environment (Env
	// wins where both set a variable), and nothing else.
	Env map[string]string
	// Instances is how many processes run at once, each serving one batch
	// at a time, when Max is 0: the fixed shorthand for Min = Max =
	// Instances. Defaults to 1. The invoker's concurrency should not exceed
	// the pool's maximum: a batch beyond it waits in Invoke for an idle
	// process.
	Instances int
	// Min and Max bound the processes when Max is set (YAML scaling.min,
	// scaling.max): Start starts Min; Invoke starts more while every live
	// one is busy, as many at once as batches wait, up to Max; processes
	// idle for Idle are stopped down to Min. Min 0 is scale to zero: the
	// first batch after idle waits for a cold start.
	Min, Max int
	// Idle is how long a process above Min may stay idle before it is
	// stopped (YAML scaling.idle); 0 keeps them.
	Idle time.Duration
	// Memory is the function's memory limit in bytes (YAML key memory).
	// With Limit set it is enforced: the process cannot grow past it, and
	// a process that ran out of memory fails its batch with a
	// *plugins.FunctionError of type Runtime.OutOfMemory and is replaced.
	// Either way a process whose peak resident memory (VmHWM) is found
	// above it after a batch is replaced; the batch still succeeds, and a
	// line tagged with its request id says so. Peak memory is sampled at
	// most every 20ms per process. 0 means no limit, the default.
	Memory int64
	// Limit enforces Memory on each process; nil only checks it after
	// batches.
	Limit *memlimit.Limiter
	// OnColdStart, when set, is called with the start time of each process
	// started after Start (on demand or as a replacement). OnOOM is called
	// each time a process ran out of memory. Both must not block.
	OnColdStart func(init time.Duration)
	OnOOM       func()
	// StartTimeout is how long a new process has to answer its first,
	// empty batch before it is killed and its start counted as failed.
	// Defaults to 10s.
	StartTimeout time.Duration
	// MaxLineBytes is the longest result line a process may write; a longer
	// line is a protocol error. Defaults to 64 MiB.
	MaxLineBytes int
	// OnRestart, when set, is called with the reason each time a process is
	// replaced (it crashed, hung, broke the protocol, outgrew Memory, or its
	// replacement failed to start and is retried). It must be safe for
	// concurrent use and must not block. Restarts counts the same events.
	OnRestart func(reason error)
}

// Defaults.
const (
	DefaultInstances    = 1
	DefaultStartTimeout = 10 * time.Second
	DefaultMaxLineBytes = 64 << 20
)

func (c Config) withDefaults() Config {
	if c.Instances == 0 {
		c.Instances = DefaultInstances
	}
	if c.Max == 0 {
		c.Min, c.Max = c.Instances, c.Instances
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = DefaultStartTimeout
	}
	if c.MaxLineBytes == 0 {
		c.MaxLineBytes = DefaultMaxLineBytes
	}
	return c
}

// Validate reports every field out of range, naming its config key.
func (c Config) Validate() error {
	var errs []error
	check := func(bad bool, key, format string, args ...any) {
		if bad {
			errs = append(errs, fmt.Errorf("%s: "+format, append([]any{key}, args...)...))
		}
	}
	check(len(c.Command) == 0 || c.Command[0] == "", "command", "must name a program")
	for i, a := range c.Command {
		check(strings.IndexByte(a, 0) >= 0, "command", "argument %d holds a NUL byte", i)
	}
	check(strings.IndexByte(c.Dir, 0) >= 0, "dir", "holds a NUL byte")
	keys := make([]string, 0, len(c.Env))
	for k := range c.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := c.Env[k]
		check(k == "" || strings.ContainsAny(k, "=\x00"), "env", "invalid variable name %q", k)
		check(strings.IndexByte(v, 0) >= 0, "env", "value of %q holds a NUL byte", k)
	}
	check(c.Instances < 0, "instances", "must not be negative, got %d", c.Instances)
	check(c.Min < 0, "scaling.min", "must not be negative, got %d", c.Min)
	check(c.Max < 0, "scaling.max", "must not be negative, got %d", c.Max)
	check(c.Max > 0 && c.Min > c.Max, "scaling.min", "%d is more than scaling.max %d", c.Min, c.Max)
	check(c.Idle < 0, "scaling.idle", "must not be negative, got %s", c.Idle)
	check(c.Memory < 0, "memory", "must not be negative, got %d", c.Memory)
	check(c.StartTimeout < 0, "start_timeout", "must not be negative, got %s", c.StartTimeout)
	check(c.MaxLineBytes < 0, "max_line", "must not be negative, got %d", c.MaxLineBytes)
	return errors.Join(errs...)
}
