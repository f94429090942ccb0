// Package main is the smallest Go plugin (runtime: plugin; make plugins
// builds it to bin/plugins/echo-plugin.so): Handle returns the event it got,
// like the builtin echo. The benchmark suite measures the plugin runtime's
// overhead with it.
package main

import (
	"context"

	"github.com/sluicehq/sluice/plugins"
)

// Handle is the symbol the gateway looks up: the builtin Handler signature.
func Handle(_ context.Context, ev *plugins.Event) ([]byte, error) {
	return ev.MarshalJSON()
}

// main is never called: a plugin is opened, not run. It lets `go build ./...`
// build this package like any other.
func main() {}
