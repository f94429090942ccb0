// Package main is a plugin exporting Handle as a plugins.Handler variable.
package main

import (
	"context"

	"github.com/sluicehq/sluice/plugins"
)

// Handle returns the event's subject as a JSON string.
var Handle plugins.Handler = func(_ context.Context, ev *plugins.Event) ([]byte, error) {
	return plugins.AppendJSONString(nil, ev.Subject), nil
}

func main() {}
