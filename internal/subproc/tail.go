package subproc

// Tail keeps the last lines a process wrote, each cut to a maximum length,
// for the message that explains its failure. Its zero value keeps nothing.
// It is not safe for concurrent use.
type Tail struct {
	ring    [][]byte
	n       int // lines added so far
	lineMax int
}

// NewTail returns a Tail of the last lines lines, each cut to lineMax bytes.
func NewTail(lines, lineMax int) Tail {
	return Tail{ring: make([][]byte, lines), lineMax: lineMax}
}

// Add keeps a copy of line, forgetting the oldest when full. Once the
// buffers are grown it does not allocate.
func (t *Tail) Add(line []byte) {
	if len(t.ring) == 0 {
		return
	}
	b := &t.ring[t.n%len(t.ring)]
	*b = append((*b)[:0], line[:min(len(line), t.lineMax)]...)
	t.n++
}

// Lines returns the lines kept, oldest first; nil when there are none.
func (t *Tail) Lines() []string {
	k := min(t.n, len(t.ring))
	if k == 0 {
		return nil
	}
	out := make([]string, 0, k)
	for i := t.n - k; i < t.n; i++ {
		out = append(out, string(t.ring[i%len(t.ring)]))
	}
	return out
}
