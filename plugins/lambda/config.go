package lambda

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/memlimit"
)

// Config is how a Pool runs one function's Lambda runtime. Its zero value is
// not usable: Command is required. Every other zero field takes the default
// its comment names.
type Config struct {
	// Command is the runtime program and its arguments, as a custom
	// runtime's bootstrap: an aws-lambda-go binary, a script starting
	// awslambdaric, any program speaking the Runtime API. Required. A name
	// without a slash is looked up in the gateway's PATH; a relative path is
	// relative to Dir.
	Command []string
	// Dir is the runtime's working directory and its LAMBDA_TASK_ROOT.
	// Defaults to the gateway's working directory.
	Dir string
	// Instances is how many runtime processes run at once when Max is 0,
	// the fixed shorthand for Min = Max = Instances; each handles one
	// invocation at a time, as on Lambda. Defaults to 1.
	Instances int
	// Min and Max bound the runtimes when Max is set: Start starts Min;
	// an invocation finding every runtime busy starts another, as many at
	// once as invocations wait, up to Max; runtimes idle for Idle are
	// stopped down to Min (0: scale to zero, the next invocation waits for
	// a cold start). Idle 0 keeps them.
	Min, Max int
	Idle     time.Duration
	// Env is the function's environment. The runtime sees only these
	// variables, PATH, HOME and LANG (taken from the gateway unless Env sets
	// them), TZ=UTC and the variables Lambda sets (AWS_LAMBDA_*, AWS_REGION,
	// _HANDLER, LAMBDA_TASK_ROOT); Env may not set those.
	Env map[string]string
	// Memory is advertised as AWS_LAMBDA_FUNCTION_MEMORY_SIZE in MB,
	// rounded up, and enforced by Limit when set: a runtime that runs out
	// of it fails its invocation with errorType Runtime.OutOfMemory and is
	// replaced. The batch reports the runtime's peak resident memory.
	// Defaults to 128 MiB.
	Memory int64
	// Limit enforces Memory on each runtime process; nil does not.
	Limit *memlimit.Limiter
	// Timeout is advertised as AWS_LAMBDA_FUNCTION_TIMEOUT (whole seconds,
	// rounded up) and named in timeout log lines; the deadline of an
	// invocation is the batch's. Set it to the function's timeout. Defaults
	// to 3s.
	Timeout time.Duration
	// Region is AWS_REGION and AWS_DEFAULT_REGION, and the region of the
	// function ARN and of the events built here. Defaults to "us-east-1".
	Region string
	// Account is the account id of the function ARN and of schedule events.
	// Defaults to "000000000000".
	Account string
	// Handler is _HANDLER, which some runtimes (awslambdaric, the Node.js
	// interface client) read to find the function. Defaults to the base name
	// of Command[0].
	Handler string
	// BootstrapServers is the bootstrapServers of the self-managed Kafka
	// events built for Kafka and CDC envelopes: the gateway's brokers.
	BootstrapServers []string
	// InitTimeout bounds the time from a runtime's start to its first poll
	// of /invocation/next; a runtime slower than that is killed (and, after
	// Start, restarted). Defaults to 10s, Lambda's init limit.
	InitTimeout time.Duration
	// OnRestart, when set, is called each time an instance's runtime is
	// replaced, with the instance number and why (for a restart counter).
	// It is called from the instance's own goroutine and must not block.
	OnRestart func(instance int, reason error)
	// OnColdStart, when set, is called with the start time (to its first
	// poll) of each runtime started after Start; OnOOM each time a runtime
	// ran out of memory. Both must not block.
	OnColdStart func(init time.Duration)
	OnOOM       func()
	// UnixSocket also serves each runtime's Runtime API on a Unix socket,
	// named to it by SLUICE_RUNTIME_API_SOCKET (SocketEnv), for runtime
	// clients that know it: Sluice's own, which take the variable out of
	// the function's environment. Others keep a Lambda environment.
	UnixSocket bool
}

// Defaults.
const (
	DefaultInstances   = 1
	DefaultMemory      = 128 << 20
	DefaultTimeout     = 3 * time.Second
	DefaultRegion      = "us-east-1"
	DefaultAccount     = "000000000000"
	DefaultInitTimeout = 10 * time.Second
)

// MaxResponseSize is the largest response a runtime may post, Lambda's
// synchronous payload limit. A larger one gets 413 and fails its invocation
// with errorType Function.ResponseSizeTooLarge.
const MaxResponseSize = 6 << 20

// reserved are the variables the Pool sets itself; Lambda refuses them in a
// function's environment too.
var reserved = map[string]bool{
	"AWS_LAMBDA_RUNTIME_API":          true,
	"AWS_LAMBDA_FUNCTION_NAME":        true,
	"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": true,
	"AWS_LAMBDA_FUNCTION_VERSION":     true,
	"AWS_LAMBDA_FUNCTION_TIMEOUT":     true,
	"AWS_LAMBDA_LOG_GROUP_NAME":       true,
	"AWS_LAMBDA_LOG_STREAM_NAME":      true,
	"AWS_LAMBDA_INITIALIZATION_TYPE":  true,
	"AWS_REGION":                      true,
	"AWS_DEFAULT_REGION":              true,
	"LAMBDA_TASK_ROOT":                true,
	"_HANDLER":                        true,
	"TZ":                              true,
}

func (c Config) withDefaults() Config {
	if c.Instances == 0 {
		c.Instances = DefaultInstances
	}
	if c.Max == 0 {
		c.Min, c.Max = c.Instances, c.Instances
	}
	if c.Memory == 0 {
		c.Memory = DefaultMemory
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.Account == "" {
		c.Account = DefaultAccount
	}
	if c.InitTimeout == 0 {
		c.InitTimeout = DefaultInitTimeout
	}
	if c.Handler == "" && len(c.Command) > 0 {
		c.Handler = c.Command[0]
		if i := strings.LastIndexByte(c.Handler, '/'); i >= 0 {
			c.Handler = c.Handler[i+1:]
		}
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
	check(len(c.Command) == 0 || c.Command[0] == "", "command", "required for runtime: lambda")
	check(c.Instances < 0, "instances", "must not be negative, got %d", c.Instances)
	check(c.Min < 0, "scaling.min", "must not be negative, got %d", c.Min)
	check(c.Max < 0, "scaling.max", "must not be negative, got %d", c.Max)
	check(c.Max > 0 && c.Min > c.Max, "scaling.min", "%d is more than scaling.max %d", c.Min, c.Max)
	check(c.Idle < 0, "scaling.idle", "must not be negative, got %s", c.Idle)
	check(c.Memory < 0, "memory", "must not be negative, got %d", c.Memory)
	check(c.Timeout < 0, "timeout", "must not be negative, got %s", c.Timeout)
	check(c.InitTimeout < 0, "init_timeout", "must not be negative, got %s", c.InitTimeout)
	keys := make([]string, 0, len(c.Env))
	for k := range c.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := c.Env[k]
		switch {
		case k == "" || strings.ContainsAny(k, "=\x00"):
			errs = append(errs, fmt.Errorf("env.%s: not a valid variable name", strconv.Quote(k)))
		case CheckEnvKey(k) != nil:
			errs = append(errs, fmt.Errorf("env.%s: %w", k, CheckEnvKey(k)))
		case strings.IndexByte(v, 0) >= 0:
			errs = append(errs, fmt.Errorf("env.%s: value holds a NUL byte", k))
		}
	}
	return errors.Join(errs...)
}

// CheckEnvKey reports a variable a function's env may not set because the
// Pool sets it (AWS_LAMBDA_*, AWS_REGION, _HANDLER, LAMBDA_TASK_ROOT, TZ,
// …): Validate's check, shared with the config loader so that a config
// check and a start agree.
func CheckEnvKey(k string) error {
	switch {
	case k == "_HANDLER":
		return errors.New("reserved: Sluice sets it for the Lambda runtime from the function's handler: key")
	case k == "LAMBDA_TASK_ROOT":
		return errors.New("reserved: Sluice sets it for the Lambda runtime from the function's dir: (or code:) key")
	case reserved[k]:
		return errors.New("reserved: Sluice sets it for the Lambda runtime")
	}
	return nil
}

// baseEnv returns the function's environment without the per-process
// variables (AWS_LAMBDA_RUNTIME_API, AWS_LAMBDA_LOG_STREAM_NAME), sorted.
// getenv reads the gateway's environment for PATH, HOME and LANG only.
func (c Config) baseEnv(function, taskRoot string, getenv func(string) string) []string {
	env := map[string]string{
		"PATH": "/usr/local/bin:/usr/bin:/bin",
	}
	for _, k := range []string{"PATH", "HOME", "LANG"} {
		if v := getenv(k); v != "" {
			env[k] = v
		}
	}
	for k, v := range c.Env {
		env[k] = v
	}
	env["TZ"] = "UTC"
	env["AWS_LAMBDA_FUNCTION_NAME"] = function
	env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] = strconv.FormatInt((c.Memory+(1<<20)-1)>>20, 10)
	env["AWS_LAMBDA_FUNCTION_VERSION"] = "$LATEST"
	env["AWS_LAMBDA_FUNCTION_TIMEOUT"] = strconv.FormatInt(int64((c.Timeout+time.Second-1)/time.Second), 10)
	env["AWS_LAMBDA_LOG_GROUP_NAME"] = "/aws/lambda/" + function
	env["AWS_LAMBDA_INITIALIZATION_TYPE"] = "on-demand"
	env["AWS_REGION"] = c.Region
	env["AWS_DEFAULT_REGION"] = c.Region
	env["LAMBDA_TASK_ROOT"] = taskRoot
	env["_HANDLER"] = c.Handler
	out := make([]string, 0, len(env)+2)
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
