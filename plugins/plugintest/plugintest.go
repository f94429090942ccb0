// Package plugintest helps authors of Go functions (builtins and Go
// plugins) test that a Handler keeps to its contract: it must not keep the
// *plugins.Event it was given after it returns, because a Kafka trigger
// reuses it for a later record.
//
//	func TestHandle(t *testing.T) {
//		outs := plugintest.Run(t, Handle, ev1, ev2, ev3)
//		...
//	}
package plugintest

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/plugins"
)

// Result is the output and error of one call of the handler.
type Result struct {
	Output []byte
	Err    error
}

// Run calls h once per event, in order, as a Kafka trigger with its
// PoisonEvents debug option does: each call gets a *plugins.Event holding
// a copy of the event, and once h returns that event is poisoned
// (plugins.Poison), as the trigger poisons an event before reusing it. Run fails t when an
// output or an error mentions plugins.Poisoned (h read an event it kept
// from an earlier call, or something a goroutine of it read late) and when
// h panics. The caller's events are not modified.
func Run(t testing.TB, h plugins.Handler, evs ...*plugins.Event) []Result {
	t.Helper()
	out := make([]Result, len(evs))
	for i, ev := range evs {
		slot := new(plugins.Event)
		*slot = *ev
		func() {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("event %d (%s): the handler panicked: %v", i, ev.ID, p)
				}
			}()
			out[i].Output, out[i].Err = h(context.Background(), slot)
		}()
		plugins.Poison(slot)
		if bytes.Contains(out[i].Output, []byte(plugins.Poisoned)) ||
			out[i].Err != nil && strings.Contains(out[i].Err.Error(), plugins.Poisoned) {
			t.Errorf("event %d (%s): the handler read a recycled event: it keeps a *plugins.Event after returning", i, ev.ID)
		}
	}
	return out
}
