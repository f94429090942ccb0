package plugins

import (
	"context"
	"testing"
	"time"
)

type testKey struct{}

func TestWithFunction(t *testing.T) {
	deadline := time.Now().Add(time.Hour)
	parent, cancel := context.WithDeadline(context.WithValue(context.Background(), testKey{}, "v"), deadline)
	ctx := WithFunction(parent, "fn", map[string]string{"A": "1"})
	if got := FunctionName(ctx); got != "fn" {
		t.Errorf("FunctionName = %q", got)
	}
	if got := Getenv(ctx, "A"); got != "1" {
		t.Errorf("Getenv(A) = %q", got)
	}
	if got := Getenv(ctx, "B"); got != "" {
		t.Errorf("Getenv(B) = %q", got)
	}
	if got := ctx.Value(testKey{}); got != "v" {
		t.Errorf("parent value = %v", got)
	}
	if d, ok := ctx.Deadline(); !ok || !d.Equal(deadline) {
		t.Errorf("Deadline = %v, %v", d, ok)
	}
	inner := WithFunction(ctx, "inner", nil)
	if FunctionName(inner) != "inner" || Getenv(inner, "A") != "" {
		t.Errorf("the innermost function must win: %q %q", FunctionName(inner), Getenv(inner, "A"))
	}
	child, cancelChild := context.WithCancel(ctx)
	defer cancelChild()
	cancel()
	for _, c := range []context.Context{ctx, child} {
		select {
		case <-c.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("cancelling the parent did not reach the function's context")
		}
		if c.Err() != context.Canceled {
			t.Errorf("Err = %v", c.Err())
		}
	}
	if FunctionName(context.Background()) != "" || Getenv(context.Background(), "A") != "" {
		t.Error("a context without a function must read as empty")
	}
}

var ctxSink context.Context

func TestWithFunctionAllocs(t *testing.T) {
	env := map[string]string{"A": "1"}
	if n := testing.AllocsPerRun(100, func() { ctxSink = WithFunction(context.Background(), "fn", env) }); n != 1 {
		t.Errorf("WithFunction allocates %v times, want 1", n)
	}
}
