package goplugin

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"plugin"
	"sync"
	"time"

	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/plugins/builtin"
)

// Symbol is the name a plugin exports its function under.
const Symbol = "Handle"

// handlerType is the signature Handle must have, for error messages.
const handlerType = "func(context.Context, *plugins.Event) ([]byte, error)"

// loaded remembers which file each path held when this process opened it:
// Go opens a plugin once per process, and a later plugin.Open of the same
// path returns the first one whatever the file holds now.
var loaded struct {
	sync.Mutex
	files map[string]fileID
}

type fileID struct {
	size  int64
	mtime time.Time
	ino   uint64
}

func idOf(fi os.FileInfo) fileID {
	id := fileID{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(interface{ Ino() uint64 }); ok {
		id.ino = st.Ino()
	}
	return id
}

// Open checks the plugin at path against the running binary (Check), opens
// it and returns its exported Handle.
//
// Handle must be a function with the signature of plugins.Handler (or a
// variable of type plugins.Handler); another type is an error naming it.
// Errors of plugin.Open (a plugin the Go runtime refuses: "plugin was built
// with a different version of package …") are returned, never a crash.
//
// A process opens each plugin file once: Go cannot unload a plugin or load
// it twice. Open of a path whose file changed since this process opened it
// fails with an error asking for a reload (a new process: sluice reload);
// Open of an unchanged path returns the same Handle again. Open is safe for
// concurrent use.
func Open(path string) (plugins.Handler, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("goplugin: %w", err)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("goplugin: %w", err)
	}
	loaded.Lock()
	defer loaded.Unlock()
	if was, ok := loaded.files[abs]; ok && was != idOf(fi) {
		return nil, fmt.Errorf("goplugin: %s changed since this process loaded it, and Go cannot load a plugin twice: reload the gateway (sluice reload) to run the new one", path)
	}
	if err := Check(abs); err != nil {
		return nil, err
	}
	h, err := open(abs)
	if err != nil {
		return nil, err
	}
	if loaded.files == nil {
		loaded.files = make(map[string]fileID)
	}
	loaded.files[abs] = idOf(fi)
	return h, nil
}

// open opens a plugin without checking it first, and finds its Handle.
func open(path string) (h plugins.Handler, err error) {
	defer func() {
		// plugin.Open reports a refused plugin as an error; this guards
		// the gateway against anything it might still panic on.
		if p := recover(); p != nil {
			h, err = nil, fmt.Errorf("goplugin: cannot open %s: %v", path, p)
		}
	}()
	p, err := plugin.Open(path)
	if err != nil {
		return nil, fmt.Errorf("goplugin: cannot open %s: %w", path, err)
	}
	sym, err := p.Lookup(Symbol)
	if err != nil {
		return nil, fmt.Errorf("goplugin: %s exports no %s %s: %w", path, Symbol, handlerType, err)
	}
	switch f := sym.(type) {
	case func(context.Context, *plugins.Event) ([]byte, error):
		return f, nil
	case *func(context.Context, *plugins.Event) ([]byte, error):
		if f != nil && *f != nil {
			return *f, nil
		}
	case *plugins.Handler:
		if f != nil && *f != nil {
			return *f, nil
		}
	default:
		return nil, fmt.Errorf("goplugin: %s: %s is a %T, want %s", path, Symbol, sym, handlerType)
	}
	return nil, fmt.Errorf("goplugin: %s: %s is a nil function", path, Symbol)
}

// Worker runs a Go plugin's Handle in the gateway's process (runtime:
// plugin), as builtin.Worker runs a compiled-in function: the events of a
// batch in order, a panic failing only its event, the function's env
// visible through plugins.Getenv. It is safe for concurrent use.
type Worker struct {
	path string
	w    *builtin.Worker
}

var _ plugins.Worker = (*Worker)(nil)

// New opens the plugin at path (see Open) for function with env. The
// errors are Open's, prefixed with the function's name.
func New(function, path string, env map[string]string) (*Worker, error) {
	h, err := Open(path)
	if err != nil {
		return nil, fmt.Errorf("function %q: %w", function, err)
	}
	return &Worker{path: path, w: builtin.NewWorker(function, h, env)}, nil
}

// Path returns the plugin's path.
func (w *Worker) Path() string { return w.path }

// SetMetrics hands the custom metrics the plugin puts with
// plugins.PutMetric to sink. Call it before the first Invoke.
func (w *Worker) SetMetrics(sink plugins.MetricSink) { w.w.SetMetrics(sink) }

// Start implements plugins.Worker; New opened the plugin already.
func (w *Worker) Start(ctx context.Context) error { return w.w.Start(ctx) }

// Invoke implements plugins.Worker: each event of b in order, on the
// calling goroutine.
func (w *Worker) Invoke(ctx context.Context, b *plugins.Batch) error { return w.w.Invoke(ctx, b) }

// Close implements plugins.Worker. The plugin stays loaded: Go cannot
// unload it.
func (w *Worker) Close(ctx context.Context) error { return w.w.Close(ctx) }
