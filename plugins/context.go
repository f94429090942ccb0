package plugins

import "context"

type ctxKey struct{}

// fnInfo travels as one context value.
type fnInfo struct {
	name    string
	env     map[string]string
	metrics MetricSink
}

// fnCtx is context.WithValue(parent, ctxKey{}, &info) in one allocation
// instead of two: it is attached to every invocation of a Go function.
type fnCtx struct {
	context.Context
	info fnInfo
}

func (c *fnCtx) Value(key any) any {
	if key == (ctxKey{}) {
		return &c.info
	}
	return c.Context.Value(key)
}

// WithFunction returns a context carrying the function's name and its
// configured environment, for Go functions that have no process of their own
// to read them from. Workers call it; functions read with Getenv and
// FunctionName.
func WithFunction(ctx context.Context, name string, env map[string]string) context.Context {
	return &fnCtx{Context: ctx, info: fnInfo{name: name, env: env}}
}

// WithFunctionMetrics is WithFunction that also hands what the function
// puts with PutMetric to sink (nil: dropped).
func WithFunctionMetrics(ctx context.Context, name string, env map[string]string, sink MetricSink) context.Context {
	return &fnCtx{Context: ctx, info: fnInfo{name: name, env: env, metrics: sink}}
}

// Getenv returns the value of key in the function's configured env, or "".
func Getenv(ctx context.Context, key string) string {
	fi, _ := ctx.Value(ctxKey{}).(*fnInfo)
	if fi == nil {
		return ""
	}
	return fi.env[key]
}

// FunctionName returns the configured name of the running function, or "".
func FunctionName(ctx context.Context) string {
	fi, _ := ctx.Value(ctxKey{}).(*fnInfo)
	if fi == nil {
		return ""
	}
	return fi.name
}
