package invoker

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

// FileDeadLetter appends finally failed events to a file, one JSON object
// per line: {"time","function","trigger","error","attempts","event"}, the
// event in its CloudEvents form. It is safe for concurrent use.
type FileDeadLetter struct {
	path string
	mu   sync.Mutex
	f    *os.File
	buf  []byte
}

var _ DeadLetter = (*FileDeadLetter)(nil)

// OpenFileDeadLetter opens (creating, appending) the file at path.
func OpenFileDeadLetter(path string) (*FileDeadLetter, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot open dead letter file: %w", err)
	}
	return &FileDeadLetter{path: path, f: f}, nil
}

// DeadLetter writes one line with a single write(2), then syncs the file:
// the event's last copy is now this line.
func (d *FileDeadLetter) DeadLetter(_ context.Context, r *DeadLetterRecord) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	b := d.buf[:0]
	b = append(b, `{"time":"`...)
	b = r.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","function":`...)
	b = plugins.AppendJSONString(b, r.Function)
	b = append(b, `,"trigger":`...)
	b = plugins.AppendJSONString(b, r.Trigger)
	b = append(b, `,"error":`...)
	b = plugins.AppendJSONString(b, r.Err.Error())
	b = fmt.Appendf(b, `,"attempts":%d,"event":`, r.Attempts)
	b = r.Event.AppendJSON(b)
	b = append(b, "}\n"...)
	d.buf = b
	if _, err := d.f.Write(b); err != nil {
		return fmt.Errorf("dead letter %s: %w", d.path, err)
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("dead letter %s: %w", d.path, err)
	}
	return nil
}

// Close closes the file.
func (d *FileDeadLetter) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.f.Close()
}
