package plugins

import "context"

type ctxKey int

const (
	envKey ctxKey = iota
	functionKey
)

// WithFunction returns a context carrying the function's name and its
// configured environment, for Go functions that have no process of their own
// to read them from. Workers call it; functions read with Getenv and
// FunctionName.
func WithFunction(ctx context.Context, name string, env map[string]string) context.Context {
	ctx = context.WithValue(ctx, functionKey, name)
	return context.WithValue(ctx, envKey, env)
}

// Getenv returns the value of key in the function's configured env, or "".
func Getenv(ctx context.Context, key string) string {
	env, _ := ctx.Value(envKey).(map[string]string)
	return env[key]
}

// FunctionName returns the configured name of the running function, or "".
func FunctionName(ctx context.Context) string {
	s, _ := ctx.Value(functionKey).(string)
	return s
}
