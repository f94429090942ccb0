// Package main is a Go plugin for the reload test: version v1 of a
// function whose answer names its version. The test builds v1, then v2,
// to the same path, and reloads.
package main

import (
	"context"

	"github.com/sluicehq/sluice/plugins"
)

// Handle answers {"version":"v1"}.
func Handle(context.Context, *plugins.Event) ([]byte, error) {
	return []byte(`{"version":"v1"}`), nil
}

func main() {}
