package invoker

// fifo is a fixed-capacity ring of items. Not safe for concurrent use: the
// Function guards it with its mutex.
type fifo struct {
	buf  []*Item
	head int
	n    int
}

func (q *fifo) init(capacity int) { q.buf = make([]*Item, capacity) }

func (q *fifo) push(it *Item) {
	if q.n == len(q.buf) {
		panic("BUG: push to a full invoker queue")
	}
	q.buf[(q.head+q.n)%len(q.buf)] = it
	q.n++
}

func (q *fifo) peek() *Item { return q.buf[q.head] }

// at returns the i-th item from the head.
func (q *fifo) at(i int) *Item { return q.buf[(q.head+i)%len(q.buf)] }

func (q *fifo) pop() *Item {
	it := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return it
}
