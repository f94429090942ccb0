package gateway

import (
	"sync"
	"sync/atomic"
	"unicode/utf8"
)

// TailSize is how many bytes of an invocation's log lines a Lambda invoke
// request with X-Amz-Log-Type: Tail gets back: the last 4 KB, as on Lambda.
const TailSize = 4 << 10

// maxWatches bounds the invocations a LogTap watches at once, so that a
// flood of Tail requests costs at most maxWatches*TailSize bytes. A Tail
// request beyond it still runs; its tail holds only the lines the gateway
// writes itself (START, END, REPORT).
const maxWatches = 1024

// LogTap hands the log lines of chosen invocations to the Lambda invoke
// API's Tail requests. The process's plugins.LogFunc (which cmd/sluice
// builds for every worker, and which logs each line) must also call Log
// with every line; the LambdaAPI watches the request id of each Tail
// invocation before invoking and collects its lines after.
//
// While no Tail request is waiting, Log costs one atomic load. A watched
// invocation keeps only its last TailSize bytes, and at most 1024
// invocations are watched at once, so memory stays bounded whatever the
// functions write. Lines of invocations nobody watches are dropped.
//
// The zero value is not usable; create one with NewLogTap. A nil *LogTap
// is valid and ignores every line. Its methods are safe for concurrent use.
type LogTap struct {
	watching atomic.Int32 // len(watches), read without the lock
	mu       sync.Mutex
	watches  map[string]*logWatch
}

// NewLogTap returns an empty LogTap.
func NewLogTap() *LogTap {
	return &LogTap{watches: make(map[string]*logWatch)}
}

// Log records line when an invocation with id requestID is being watched,
// and drops it otherwise. It has the signature of plugins.LogFunc and, like
// one, does not retain line.
func (t *LogTap) Log(requestID string, line []byte) {
	if t == nil || t.watching.Load() == 0 || requestID == "" {
		return
	}
	t.mu.Lock()
	w := t.watches[requestID]
	if w != nil {
		w.write(line)
		w.write(newline)
	}
	t.mu.Unlock()
	if w != nil {
		select {
		case w.notify <- struct{}{}:
		default:
		}
	}
}

var newline = []byte{'\n'}

// logWatch keeps the last TailSize bytes written for one request id in a
// ring.
type logWatch struct {
	ring   [TailSize]byte
	n      int64         // bytes written in all
	notify chan struct{} // a line arrived; capacity 1
}

func (w *logWatch) write(b []byte) {
	if len(b) > TailSize {
		w.n += int64(len(b) - TailSize)
		b = b[len(b)-TailSize:]
	}
	for len(b) > 0 {
		at := int(w.n % TailSize)
		c := copy(w.ring[at:], b)
		b = b[c:]
		w.n += int64(c)
	}
}

// bytes returns what the ring holds, oldest first.
func (w *logWatch) bytes() []byte {
	if w.n <= TailSize {
		return append([]byte(nil), w.ring[:w.n]...)
	}
	at := int(w.n % TailSize)
	out := make([]byte, 0, TailSize)
	out = append(out, w.ring[at:]...)
	return append(out, w.ring[:at]...)
}

// watch starts keeping the lines of requestID. It returns nil when too
// many invocations are watched already (or t is nil, or the id is taken).
func (t *LogTap) watch(requestID string) *logWatch {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.watches) >= maxWatches || t.watches[requestID] != nil {
		return nil
	}
	w := &logWatch{notify: make(chan struct{}, 1)}
	t.watches[requestID] = w
	t.watching.Store(int32(len(t.watches)))
	return w
}

// collect stops watching requestID and returns the lines kept for it.
func (t *LogTap) collect(requestID string, w *logWatch) []byte {
	if t == nil || w == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.watches[requestID] == w {
		delete(t.watches, requestID)
		t.watching.Store(int32(len(t.watches)))
	}
	return w.bytes()
}

// lastBytes returns the last n bytes of b, starting at a UTF-8 character
// boundary so the cut does not leave half a character.
func lastBytes(b []byte, n int) []byte {
	if len(b) <= n {
		return b
	}
	b = b[len(b)-n:]
	for i := 0; i < len(b) && i < utf8.UTFMax; i++ {
		if utf8.RuneStart(b[i]) {
			return b[i:]
		}
	}
	return b
}
