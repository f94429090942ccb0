// Package memlimit makes a function's memory setting a limit its
// subprocesses cannot grow past.
//
// Two mechanisms, chosen once per gateway by Detect:
//
//   - cgroup v2, where Sluice can create child groups with the memory
//     controller: each process starts inside a group of its own
//     (clone3 CLONE_INTO_CGROUP, so there is no window) with memory.max set
//     to the limit and memory.swap.max to 0. A process over it is killed by
//     the kernel (SIGKILL), counted in the group's memory.events.
//   - RLIMIT_DATA otherwise: the process starts through a shim that sets
//     the limit on itself and execs the function's command, so the limit
//     is in force before the command's first instruction: /bin/sh's
//     "ulimit -d" where it has one (about half a millisecond), else a
//     re-exec of the current program (Main, a few milliseconds). An
//     allocation past it fails (Python's MemoryError, Go's "fatal error:
//     runtime: out of memory"); Looks tells such an exit apart from other
//     crashes by the process's last words (and internal/subproc's
//     NearLimit by its peak resident memory).
//
// A program that may use the re-exec shim must call Main first thing in
// its main (or TestMain).
package memlimit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
)

// Mechanism names how limits are enforced.
type Mechanism string

// Mechanisms.
const (
	Cgroup2    Mechanism = "cgroup v2"
	RlimitData Mechanism = "RLIMIT_DATA"
)

// ShimArg is the first argument that makes Main act as the shim:
// PROGRAM __exec-limited BYTES PATH ARGV0 ARGS...
const ShimArg = "__exec-limited"

// Limiter applies memory limits to commands. Its methods are safe for
// concurrent use.
type Limiter struct {
	mech Mechanism
	root string // the cgroup v2 directory child groups are made in
	why  string // why cgroup v2 is not used
	sh   string // a shell with ulimit -d, the cheaper shim; "" for none
	shim string // the program that runs the re-exec shim
	seq  atomic.Int64
}

var (
	detectOnce sync.Once
	detected   *Limiter
)

// Default returns the gateway's Limiter, detected on first use.
func Default() *Limiter {
	detectOnce.Do(func() { detected = Detect() })
	return detected
}

// Detect chooses the mechanism: cgroup v2 when a child group with a
// writable memory.max can be created under the current process's group,
// RLIMIT_DATA otherwise.
func Detect() *Limiter {
	shim, err := os.Executable()
	if err != nil {
		shim = "/proc/self/exe"
	}
	l := &Limiter{mech: RlimitData, shim: shim}
	if err := exec.Command("/bin/sh", "-c", "ulimit -d 4194304").Run(); err == nil {
		l.sh = "/bin/sh"
	}
	root, err := cgroupRoot()
	if err != nil {
		l.why = err.Error()
		return l
	}
	l.mech, l.root = Cgroup2, root
	return l
}

// Mechanism returns the mechanism in force.
func (l *Limiter) Mechanism() Mechanism { return l.mech }

// Describe is one sentence for the log and for sluice validate.
func (l *Limiter) Describe() string {
	if l.mech == Cgroup2 {
		return "memory limits: cgroup v2 (a group per function process under " + l.root + ", memory.max and memory.swap.max 0; the kernel kills a process over its limit)"
	}
	how := "a re-exec of " + l.shim
	if l.sh != "" {
		how = l.sh + " ulimit -d"
	}
	return "memory limits: RLIMIT_DATA set in each function process before exec, by " + how + " (an allocation past the limit fails; cgroup v2 not usable: " + l.why + ")"
}

// cgroupRoot finds a cgroup v2 directory in which Sluice can create
// groups with the memory controller, and checks that it can.
func cgroupRoot() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	var rel string
	found := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			rel, found = p, true
		}
	}
	if !found {
		return "", errors.New("no cgroup v2 hierarchy")
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs("/sys/fs/cgroup", &st); err != nil {
		return "", err
	}
	const cgroup2Magic = 0x63677270
	if st.Type != cgroup2Magic {
		return "", errors.New("/sys/fs/cgroup is not a cgroup v2 mount (cgroup v1 only)")
	}
	dir := filepath.Join("/sys/fs/cgroup", rel)
	ctl, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return "", err
	}
	if !hasWord(string(ctl), "memory") {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory"), 0); err != nil {
			return "", fmt.Errorf("cannot enable the memory controller for groups under %s: %w", dir, err)
		}
	}
	probe := filepath.Join(dir, "sluice-probe-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(probe, 0o755); err != nil {
		return "", fmt.Errorf("cannot create a group under %s: %w", dir, err)
	}
	defer os.Remove(probe)
	if err := os.WriteFile(filepath.Join(probe, "memory.max"), []byte("max"), 0); err != nil {
		return "", fmt.Errorf("cannot set memory.max in a group under %s: %w", dir, err)
	}
	return dir, nil
}

func hasWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

// Guard is the limit of one started process.
type Guard struct {
	dir string // its cgroup; "" with RLIMIT_DATA
	fd  int
}

// Apply makes cmd, not started yet, run under limit bytes. After
// cmd.Start the caller calls Started; once the process was reaped,
// Release. limit <= 0 applies nothing and returns a nil Guard (whose
// methods do nothing).
func (l *Limiter) Apply(cmd *exec.Cmd, limit int64) (*Guard, error) {
	if limit <= 0 || l == nil {
		return nil, nil
	}
	if l.mech == Cgroup2 {
		dir := filepath.Join(l.root, "sluice-"+strconv.Itoa(os.Getpid())+"-"+strconv.FormatInt(l.seq.Add(1), 10))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, fmt.Errorf("memory limit: %w", err)
		}
		g := &Guard{dir: dir, fd: -1}
		for _, f := range [][2]string{{"memory.max", strconv.FormatInt(limit, 10)}, {"memory.swap.max", "0"}} {
			if err := os.WriteFile(filepath.Join(dir, f[0]), []byte(f[1]), 0); err != nil && f[0] == "memory.max" {
				g.Release()
				return nil, fmt.Errorf("memory limit: %w", err)
			}
		}
		fd, err := syscall.Open(dir, syscall.O_DIRECTORY|syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err != nil {
			g.Release()
			return nil, fmt.Errorf("memory limit: %w", err)
		}
		g.fd = fd
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = fd
		return g, nil
	}
	if cmd.Err != nil {
		return nil, nil // Start reports it
	}
	if l.sh != "" {
		kib := strconv.FormatInt((limit+1023)/1024, 10)
		args := append([]string{l.sh, "-c", `ulimit -d ` + kib + ` && exec "$0" "$@"`, cmd.Path}, cmd.Args[1:]...)
		cmd.Path, cmd.Args = l.sh, args
		return &Guard{fd: -1}, nil
	}
	args := append([]string{l.shim, ShimArg, strconv.FormatInt(limit, 10), cmd.Path}, cmd.Args...)
	cmd.Path, cmd.Args = l.shim, args
	return &Guard{fd: -1}, nil
}

// Started releases what only the start needed.
func (g *Guard) Started() {
	if g != nil && g.fd >= 0 {
		_ = syscall.Close(g.fd)
		g.fd = -1
	}
}

// OOMKilled reports whether the kernel killed a process of the group for
// going over its limit (cgroup v2 only; false with RLIMIT_DATA).
func (g *Guard) OOMKilled() bool {
	if g == nil || g.dir == "" {
		return false
	}
	b, err := os.ReadFile(filepath.Join(g.dir, "memory.events"))
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "oom_kill "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n > 0
		}
	}
	return false
}

// Release removes the process's group, once it has exited.
func (g *Guard) Release() {
	g.Started()
	if g != nil && g.dir != "" {
		_ = os.Remove(g.dir)
	}
}

// Main runs the shim and does not return when os.Args asks for it;
// otherwise it returns at once.
func Main() {
	if len(os.Args) < 2 || os.Args[1] != ShimArg {
		return
	}
	os.Exit(shim(os.Args[2:]))
}

func shim(args []string) int {
	if len(args) < 3 {
		fmt.Fprintln(os.Stderr, "sluice: "+ShimArg+": want BYTES PATH ARGV0 [ARGS...]")
		return 2
	}
	limit, err := strconv.ParseUint(args[0], 10, 64)
	if err != nil || limit == 0 {
		fmt.Fprintf(os.Stderr, "sluice: %s: bad limit %q\n", ShimArg, args[0])
		return 2
	}
	rl := syscall.Rlimit{Cur: limit, Max: limit}
	if err := syscall.Setrlimit(syscall.RLIMIT_DATA, &rl); err != nil {
		fmt.Fprintf(os.Stderr, "sluice: cannot set RLIMIT_DATA: %v\n", err)
		return 126
	}
	err = syscall.Exec(args[1], args[2:], os.Environ())
	fmt.Fprintf(os.Stderr, "sluice: cannot run %s: %v\n", args[1], err)
	return 127
}

// markers are what runtimes write when an allocation fails.
var markers = [][]byte{
	[]byte("MemoryError"),                              // Python
	[]byte("out of memory"),                            // Go ("fatal error: runtime: out of memory"), Node, glibc
	[]byte("Cannot allocate memory"),                   // ENOMEM as strerror prints it
	[]byte("bad_alloc"),                                // C++
	[]byte("failed to reserve page"),                   // Go at start
	[]byte("Allocation failed"),                        // V8
	[]byte("memory allocation of"),                     // Rust ("memory allocation of N bytes failed")
	[]byte("JavaScript heap out of mem"),               // Node
	[]byte("OutOfMemoryError"),                         // Java (java.lang.OutOfMemoryError)
	[]byte("insufficient memory for the Java Runtime"), // the JVM itself
	// Go under RLIMIT_DATA: when the limit is hit while the garbage
	// collector grows its own structures, the runtime faults instead of
	// printing "out of memory". Only processes under an enforced limit
	// are watched, so a fault there is taken as the limit.
	[]byte("SIGSEGV: segmentation violation"),
}

// Looks reports whether a line a process wrote says an allocation failed.
func Looks(line []byte) bool {
	for _, m := range markers {
		if bytes.Contains(line, m) {
			return true
		}
	}
	return false
}

// LooksAny is Looks over several lines.
func LooksAny(lines []string) bool {
	for _, l := range lines {
		if Looks([]byte(l)) {
			return true
		}
	}
	return false
}
