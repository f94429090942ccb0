package subproc_test

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/memlimit"
	"github.com/sluicehq/sluice/internal/subproc"
	"github.com/sluicehq/sluice/internal/testtool"
)

// helperEnv makes the test binary a child that allocates and touches
// SUBPROC_HELPER_MIB MiB, says "ready" and waits for stdin to close.
const helperEnv = "SUBPROC_HELPER_MIB"

var sink []byte

func TestMain(m *testing.M) {
	memlimit.Main()
	if v := os.Getenv(helperEnv); v != "" {
		mib, _ := strconv.Atoi(v)
		sink = make([]byte, mib<<20)
		for i := range sink {
			sink[i] = byte(i)
		}
		os.Stdout.WriteString("ready\n")
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// startShell runs script under /bin/sh in a group of its own and returns
// it with the first line it printed.
func startShell(t *testing.T, script string) (*subproc.Proc, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Stdout = w
	p, err := subproc.Start(cmd, subproc.Options{})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill()
		<-p.Exited()
	})
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the script's first line: %v", err)
	}
	return p, strings.TrimSpace(line)
}

// TestGroupEnds checks that however the process ends, what it started in
// its group ends with it, even a grandchild that ignores SIGTERM.
func TestGroupEnds(t *testing.T) {
	closed := make(chan struct{})
	close(closed)
	tests := []struct {
		name   string
		script string // prints the grandchild's pid first
		end    func(p *subproc.Proc)
		status string
	}{
		{
			name:   "kill",
			script: `trap '' TERM; sleep 1000 & echo $!; wait`,
			end:    (*subproc.Proc).Kill,
			status: "signal: killed",
		},
		{
			name:   "terminate, all ignore SIGTERM",
			script: `trap '' TERM; sleep 1000 & echo $!; wait`,
			end:    func(p *subproc.Proc) { p.Terminate(50*time.Millisecond, nil) },
			status: "signal: killed",
		},
		{
			name:   "terminate, the leader exits, its grandchild ignores SIGTERM",
			script: `(trap '' TERM; exec sleep 1000) & echo $!; wait`,
			end:    func(p *subproc.Proc) { p.Terminate(time.Hour, nil) },
			status: "signal: terminated",
		},
		{
			name:   "terminate in a hurry",
			script: `trap '' TERM; sleep 1000 & echo $!; wait`,
			end:    func(p *subproc.Proc) { p.Terminate(time.Hour, closed) },
			status: "signal: killed",
		},
		{
			name:   "the leader exits by itself",
			script: `trap '' TERM; sleep 1000 & echo $!`,
			end:    func(*subproc.Proc) {},
			status: "exit status 0",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, line := startShell(t, tt.script)
			grandchild, err := strconv.Atoi(line)
			if err != nil {
				t.Fatalf("first line %q is not a pid", line)
			}
			if testtool.Gone(grandchild) && tt.name != "the leader exits by itself" {
				t.Fatalf("grandchild %d is not running", grandchild)
			}
			tt.end(p)
			<-p.Exited()
			if !p.HasExited() {
				t.Error("HasExited is false once Exited is closed")
			}
			if got := p.ExitStatus(); got != tt.status {
				t.Errorf("ExitStatus = %q, want %q", got, tt.status)
			}
			testtool.WaitFor(t, 10*time.Second, "the grandchild to be killed", func() bool { return testtool.Gone(grandchild) })
			p.Kill() // a no-op now, and never a panic
			p.Terminate(time.Hour, nil)
		})
	}
}

func TestStartFails(t *testing.T) {
	tests := []struct {
		name string
		cmd  *exec.Cmd
	}{
		{"no such program", exec.Command("/nonexistent/program")},
		{"not executable", exec.Command("/etc/passwd")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p, err := subproc.Start(tt.cmd, subproc.Options{}); err == nil {
				p.Kill()
				t.Fatal("Start succeeded")
			}
		})
	}
}

// goHolding is the test binary as a child holding mib MiB.
func goHolding(mib int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+strconv.Itoa(mib))
	return cmd
}

// shHolding is a shell holding a string of mib MiB (its peak is about
// twice that): a child that may run under RLIMIT_DATA, which a test binary
// built with -race cannot.
func shHolding(mib int) *exec.Cmd {
	return exec.Command("/bin/sh", "-c", `x=$(head -c `+strconv.Itoa(mib<<20)+` /dev/zero | tr '\0' a); echo ready; read y || exit 0`)
}

// startHelper starts cmd, a child that says "ready" once it holds its
// memory and exits when its stdin closes, under opts.
func startHelper(t *testing.T, cmd *exec.Cmd, opts subproc.Options) (p *subproc.Proc, stdin *os.File, ready bool) {
	t.Helper()
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer outR.Close()
	cmd.Stdin, cmd.Stdout = inR, outW
	p, err = subproc.Start(cmd, opts)
	inR.Close()
	outW.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		inW.Close()
		p.Kill()
		<-p.Exited()
	})
	line, _ := bufio.NewReader(outR).ReadString('\n')
	return p, inW, line == "ready\n"
}

func TestPeakRSS(t *testing.T) {
	const mib = 48
	p, stdin, ready := startHelper(t, goHolding(mib), subproc.Options{})
	if !ready {
		t.Fatal("the helper did not start")
	}
	if got := p.PeakRSS(0); got < mib<<20 {
		t.Errorf("PeakRSS = %d, want at least %d", got, mib<<20)
	}
	cur, peak, err := subproc.ReadMemory(p.PID())
	if err != nil || cur < mib<<20 || peak < cur {
		t.Errorf("ReadMemory = %d, %d, %v; want at least %d, at least the first, nil", cur, peak, err, mib<<20)
	}
	// A sample within the interval is the last one, not a read.
	if got, again := p.PeakRSS(0), p.PeakRSS(time.Hour); again != got {
		t.Errorf("PeakRSS(time.Hour) = %d right after a read of %d", again, got)
	}
	stdin.Close()
	<-p.Exited()
	if p.ExitErr() != nil {
		t.Errorf("ExitErr = %v", p.ExitErr())
	}
	if got := p.ExitPeakRSS(); got < mib<<20 {
		t.Errorf("ExitPeakRSS = %d, want at least %d", got, mib<<20)
	}
	if got := p.PeakRSS(0); got < mib<<20 {
		t.Errorf("PeakRSS after exit = %d, want the last sample", got)
	}
	if p.Limited() || p.NearLimit(mib<<20) {
		t.Error("a process without a limit is Limited or NearLimit")
	}
	if _, _, err := subproc.ReadMemory(p.PID()); err == nil {
		t.Error("ReadMemory of a reaped process succeeded")
	}
}

// TestMemoryLimit runs children under the detected mechanism: one within
// its limit, one over it, which fails and is seen as out of memory.
func TestMemoryLimit(t *testing.T) {
	lim := memlimit.Default()
	const limit = 96 << 20
	tests := []struct {
		name  string
		mib   int
		ready bool
	}{
		{"within", 8, true},
		{"over", 100, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, stdin, ready := startHelper(t, shHolding(tt.mib), subproc.Options{Limiter: lim, Memory: limit})
			if !p.Limited() {
				t.Fatal("Limited is false under a limit")
			}
			if ready != tt.ready {
				t.Fatalf("ready = %v, want %v (%s)", ready, tt.ready, lim.Describe())
			}
			stdin.Close()
			<-p.Exited()
			if tt.ready {
				if p.ExitErr() != nil || p.OOMKilled() || p.NearLimit(limit) {
					t.Errorf("within the limit: ExitErr %v, OOMKilled %v, NearLimit %v", p.ExitErr(), p.OOMKilled(), p.NearLimit(limit))
				}
				return
			}
			if p.ExitErr() == nil {
				t.Error("a process over its limit exited 0")
			}
			t.Logf("%s: %s, peak %d of %d, NearLimit %v", lim.Mechanism(), p.ExitStatus(), max(p.ExitPeakRSS(), p.PeakRSS(0)), limit, p.NearLimit(limit))
			if lim.Mechanism() == memlimit.Cgroup2 && !p.OOMKilled() {
				t.Errorf("cgroup v2: OOMKilled is false (%s)", p.ExitStatus())
			}
		})
	}
}

func TestNearLimit(t *testing.T) {
	// One real exit with a known peak, then the threshold against limits
	// around it.
	const mib = 20
	p, stdin, ready := startHelper(t, shHolding(mib), subproc.Options{Limiter: memlimit.Default(), Memory: 1 << 30})
	if !ready {
		t.Fatal("the helper did not start")
	}
	p.PeakRSS(0)
	p.Kill() // a failure: a clean exit is never out of memory
	<-p.Exited()
	stdin.Close()
	peak := max(p.ExitPeakRSS(), p.PeakRSS(0))
	if peak < mib<<20 {
		t.Fatalf("peak %d, want at least %d", peak, mib<<20)
	}
	tests := []struct {
		limit int64
		want  bool
	}{
		{0, false},
		{peak, true},
		{peak + 1<<20, true},
		{peak + peak/8, true},          // within an eighth of the limit
		{peak + peak/8 + 2<<20, false}, // just past it
		{2 * peak, false},
		{1 << 30, false},
	}
	for _, tt := range tests {
		if got := p.NearLimit(tt.limit); got != tt.want {
			t.Errorf("NearLimit(%d) with peak %d = %v, want %v", tt.limit, peak, got, tt.want)
		}
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		in        string
		rss, peak int64
		ok        bool
	}{
		{"Name:\tx\nVmPeak:\t  100 kB\nVmHWM:\t    2048 kB\nVmRSS:\t 1 kB\n", 1 << 10, 2048 << 10, true},
		{"VmHWM:\t1 kB", 0, 1024, true},
		{"VmRSS:\t3 kB\n", 3 << 10, 0, false},
		{"Name:\tzombie\nState:\tZ (zombie)\n", 0, 0, false},
		{"VmHWM:\t12 MB\n", 0, 0, false},
		{"VmHWM:\tlots kB\n", 0, 0, false},
		{"VmHWM:\t kB\n", 0, 0, false},
		{"VmHWM:\t99999999999999999999999 kB\n", 0, 0, false},
		{"VmHWM:\t1099511627776 kB\n", 0, 1 << 50, true},
		{"VmHWM:\t1099511627777 kB\n", 0, 0, false},
		{"", 0, 0, false},
		{"VmHWM", 0, 0, false},
	}
	for _, tt := range tests {
		rss, peak, ok := subproc.ParseStatus([]byte(tt.in))
		if rss != tt.rss || peak != tt.peak || ok != tt.ok {
			t.Errorf("ParseStatus(%q) = %d, %d, %v; want %d, %d, %v", tt.in, rss, peak, ok, tt.rss, tt.peak, tt.ok)
		}
	}
}

func TestBackoff(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name string
		b    subproc.Backoff
		n    []int
		want []time.Duration
	}{
		{
			name: "starts: 100ms doubling to 30s",
			b:    subproc.Backoff{Base: 100 * ms, Max: 30 * time.Second},
			n:    []int{0, 1, 2, 3, 9, 10, 11, 1000, 1 << 30},
			want: []time.Duration{0, 100 * ms, 200 * ms, 400 * ms, 25600 * ms, 30 * time.Second, 30 * time.Second, 30 * time.Second, 30 * time.Second},
		},
		{
			name: "runtimes: 100ms doubling to 10s",
			b:    subproc.Backoff{Base: 100 * ms, Max: 10 * time.Second},
			n:    []int{-1, 1, 7, 8, 64},
			want: []time.Duration{0, 100 * ms, 6400 * ms, 10 * time.Second, 10 * time.Second},
		},
		{
			name: "no base",
			b:    subproc.Backoff{Max: time.Second},
			n:    []int{1, 5},
			want: []time.Duration{0, 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, n := range tt.n {
				if got := tt.b.Delay(n); got != tt.want[i] {
					t.Errorf("Delay(%d) = %v, want %v", n, got, tt.want[i])
				}
			}
		})
	}
}

func TestCrashLoop(t *testing.T) {
	ms := time.Millisecond
	c := &subproc.CrashLoop{Backoff: subproc.Backoff{Base: time.Hour, Max: 4 * time.Hour}}
	steps := []struct {
		do   func()
		want time.Duration
	}{
		{func() {}, 0},
		{c.Crashed, time.Hour},
		{c.Crashed, 2 * time.Hour},
		{c.Crashed, 4 * time.Hour},
		{c.Crashed, 4 * time.Hour},
		{c.Healthy, 0},
		{c.Crashed, time.Hour},
	}
	for i, s := range steps {
		s.do()
		if got := c.Delay(); got != s.want {
			t.Errorf("step %d: Delay = %v, want %v", i, got, s.want)
		}
	}

	closed := make(chan struct{})
	close(closed)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	waits := []struct {
		name  string
		c     *subproc.CrashLoop
		ctx   context.Context
		stop  chan struct{}
		want  error
		check func(error) bool
	}{
		{"no crash: no wait", &subproc.CrashLoop{Backoff: c.Backoff}, cancelled, closed, nil, nil},
		{"stopped", c, context.Background(), closed, subproc.ErrStopped, nil},
		{"cancelled", c, cancelled, nil, context.Canceled, nil},
	}
	for _, w := range waits {
		t.Run(w.name, func(t *testing.T) {
			if err := w.c.Wait(w.ctx, w.stop); !errors.Is(err, w.want) || (w.want == nil && err != nil) {
				t.Errorf("Wait = %v, want %v", err, w.want)
			}
		})
	}
	short := &subproc.CrashLoop{Backoff: subproc.Backoff{Base: ms, Max: ms}}
	short.Crashed()
	if err := short.Wait(context.Background(), nil); err != nil {
		t.Errorf("Wait after a 1ms backoff = %v", err)
	}
}

func TestTail(t *testing.T) {
	tests := []struct {
		name       string
		lines, max int
		add        []string
		want       []string
	}{
		{"zero keeps nothing", 0, 0, []string{"a"}, nil},
		{"empty", 3, 10, nil, nil},
		{"not full", 3, 10, []string{"a", "b"}, []string{"a", "b"}},
		{"the last ones", 3, 10, []string{"a", "b", "c", "d", "e"}, []string{"c", "d", "e"}},
		{"cut", 2, 3, []string{"abcdef", "xy"}, []string{"abc", "xy"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tail subproc.Tail
			if tt.lines > 0 {
				tail = subproc.NewTail(tt.lines, tt.max)
			}
			buf := []byte{}
			for _, l := range tt.add {
				buf = append(buf[:0], l...)
				tail.Add(buf) // a reused buffer: the tail keeps copies
			}
			if got := tail.Lines(); !slices.Equal(got, tt.want) {
				t.Errorf("Lines() = %q, want %q", got, tt.want)
			}
		})
	}
	full := subproc.NewTail(2, 8)
	full.Add([]byte("warm"))
	full.Add([]byte("up"))
	if n := testing.AllocsPerRun(100, func() { full.Add([]byte("line")) }); n != 0 {
		t.Errorf("Add allocates %.1f times once warm", n)
	}
}
