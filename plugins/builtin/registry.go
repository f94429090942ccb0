package builtin

import (
	"fmt"
	"sort"
	"sync"

	"github.com/sluicehq/sluice/plugins"
)

var (
	mu       sync.RWMutex
	registry = map[string]plugins.Handler{}
)

// Register makes a Go function available as `runtime: go, handler: name`.
// Call it from init. It panics on an empty name, a nil handler or a name
// registered twice, as duplicate registration is a programming error.
func Register(name string, h plugins.Handler) {
	if name == "" || h == nil {
		panic("BUG: builtin.Register needs a name and a handler")
	}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := registry[name]; dup {
		panic(fmt.Sprintf("BUG: builtin function %q registered twice", name))
	}
	registry[name] = h
}

// Lookup returns the function registered under name.
func Lookup(name string) (plugins.Handler, bool) {
	mu.RLock()
	defer mu.RUnlock()
	h, ok := registry[name]
	return h, ok
}

// Names returns the registered names, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
