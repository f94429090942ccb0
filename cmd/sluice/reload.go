package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/cmd/sluice/internal/config"
)

// A reload involves three programs: the gateway being replaced (the old
// process), the one replacing it (the new process, started by tableflip
// from the binary on disk) and, optionally, `sluice reload`. They talk
// through two small JSON files:
//
//   - the handoff file, private to one reload attempt: the old process
//     creates it and names it in $SLUICE_RELOAD; the new process writes its
//     pid into it at once and, when it fails before it is ready, its error.
//     The old process reads it when the attempt ends.
//   - the status file, <pidfile>.reload, public: the old process records
//     each attempt there (starting, then draining or failed, then
//     drained), and the new process marks it done once the old one has
//     exited. `sluice reload` reads it, and the refusal file beside it,
//     <pidfile>.reload-refused, where a process records the last SIGHUP it
//     turned down.

// reloadEnv names the handoff file in the new process's environment.
const reloadEnv = "SLUICE_RELOAD"

// defaultPidfile is server.pidfile of configs/sluice.yaml, what `sluice
// reload` signals without --pidfile or -c.
const defaultPidfile = "/tmp/sluice.pid"

// States of a reload attempt in the status file.
const (
	reloadStarting = "starting" // the new process is starting
	reloadDraining = "draining" // the new process is ready; the old one drains
	reloadDrained  = "drained"  // the old process drained and is exiting
	reloadDone     = "done"     // the old process has exited
	reloadFailed   = "failed"   // the new process failed; the old one serves on
)

// reloadStatus is one reload attempt, as the status file records it.
type reloadStatus struct {
	State string `json:"state"`
	// PID and Generation are the old process's; Attempt counts its reloads.
	PID        int `json:"pid"`
	Generation int `json:"generation"`
	Attempt    int `json:"attempt"`
	// NewPID is the new process, once known; NewGeneration is PID's + 1.
	NewPID        int       `json:"new_pid,omitempty"`
	NewGeneration int       `json:"new_generation"`
	Started       time.Time `json:"started"`
	// ReadyMS is from the signal to the new process ready, DrainedMS from
	// then to the old process drained, ExitedMS from the signal to the old
	// process gone.
	ReadyMS   float64 `json:"ready_ms,omitempty"`
	DrainedMS float64 `json:"drained_ms,omitempty"`
	ExitedMS  float64 `json:"exited_ms,omitempty"`
	// Error is why the attempt failed, the new process's own words when it
	// gave them; Code its exit code (2: bad config).
	Error string `json:"error,omitempty"`
	Code  int    `json:"code,omitempty"`
	// Aborted is the signal that made the old process stop mid-reload
	// (it stopped the new one too).
	Aborted string `json:"aborted,omitempty"`
}

// reloadRefusal is the last SIGHUP a process refused, as the refusal file
// next to the status file records it.
type reloadRefusal struct {
	PID    int       `json:"pid"`
	Count  int       `json:"count"` // refusals by PID so far
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
}

// reloadRefusedPath is the refusal file beside a status file.
func reloadRefusedPath(status string) string { return status + "-refused" }

func readReloadRefusal(status string) *reloadRefusal {
	var rf reloadRefusal
	if status == "" || readJSONFile(reloadRefusedPath(status), &rf) != nil {
		return nil
	}
	return &rf
}

// reloadStatusPath is the status file of a pidfile; "" without one.
func reloadStatusPath(pidfile string) string {
	if pidfile == "" {
		return ""
	}
	return pidfile + ".reload"
}

// inProgress reports whether st is an attempt that has not ended: its new
// process still starting, or its old process still draining. An attempt
// whose process is gone (killed, crashed) is over.
func (st *reloadStatus) inProgress() bool {
	switch st.State {
	case reloadStarting, reloadDraining, reloadDrained:
		return processAlive(st.PID)
	}
	return false
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// writeJSONFile replaces path with v's JSON atomically (a reader sees the
// old or the new content, never half of one).
func writeJSONFile(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

func readJSONFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func readReloadStatus(path string) *reloadStatus {
	var st reloadStatus
	if path == "" || readJSONFile(path, &st) != nil {
		return nil
	}
	return &st
}

// handoff is what a reload attempt's old and new process tell each other.
// The zero of a field means "not told". A nil *handoff is a process not
// started by a reload; its methods do nothing then.
type handoff struct {
	// From the old process, before the new one starts.
	ParentPID    int               `json:"parent_pid"`
	Generation   int               `json:"generation"`
	Started      time.Time         `json:"started"`
	StatusFile   string            `json:"status_file,omitempty"`
	Reloads      map[string]uint64 `json:"reloads,omitempty"`
	EmbeddedAddr string            `json:"embedded_addr,omitempty"`
	// From the new process.
	PID   int    `json:"pid,omitempty"`
	Error string `json:"error,omitempty"`
	Code  int    `json:"code,omitempty"`

	path  string
	ready bool
}

// takeHandoff returns the handoff of the reload that started this process,
// or nil, after recording this process's pid in it so that the old process
// can stop this one if it is told to stop mid-reload. It clears
// $SLUICE_RELOAD so that what this process starts does not inherit it.
func takeHandoff() *handoff {
	path := os.Getenv(reloadEnv)
	if path == "" {
		return nil
	}
	_ = os.Unsetenv(reloadEnv)
	h := &handoff{path: path}
	_ = readJSONFile(path, h) // a handoff we cannot read still takes our error
	h.PID = os.Getpid()
	_ = writeJSONFile(path, h)
	return h
}

// fail tells the old process why this one fails before it is ready, with
// the exit code it will have; nothing once ready or without an error.
func (h *handoff) fail(err error) {
	if h == nil || h.ready || err == nil {
		return
	}
	h.Error = err.Error()
	h.Code = 1
	var ee *exitError
	if errors.As(err, &ee) {
		h.Code = ee.code
	}
	_ = writeJSONFile(h.path, h)
}

// markReady records that this process signalled readiness: later errors
// are its own, no longer the reload's.
func (h *handoff) markReady() {
	if h != nil {
		h.ready = true
	}
}

// processAlive reports whether pid runs (a zombie, exited but not yet
// reaped by its parent, does not).
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // no procfs: trust kill
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z' && b[i+2] != 'X'
	}
	return true
}

// Polling interval of `sluice reload` and how long it gives the gateway to
// record that it started the reload it asked for.
const (
	reloadPoll        = 20 * time.Millisecond
	reloadNoticeLimit = 5 * time.Second
)

// cmdReload signals the running gateway to reload and waits for the
// outcome: exit 0 once the new process is ready, 2 when its config is bad,
// 1 for any other failure (the old process keeps serving), and 1 with a
// refusal when a reload is already in progress.
func cmdReload(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sluice reload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	pidfile := fs.String("pidfile", "", "pidfile of the running gateway (default: server.pidfile of -c FILE, else "+defaultPidfile+")")
	cfgPath := fs.String("c", "", "config file whose server.pidfile to use")
	timeout := fs.Duration("timeout", upgradeTimeout+time.Minute, "how long to wait for the new process")
	if err := fs.Parse(args); err != nil {
		return usageErr("%v", err)
	}
	if fs.NArg() > 0 || (*pidfile != "" && *cfgPath != "") {
		return usageErr("usage: sluice reload [--pidfile F | -c FILE] [--timeout D]")
	}
	pf := *pidfile
	if *cfgPath != "" {
		f, err := config.Load(*cfgPath)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		if f.Server.Pidfile == "" {
			return usageErr("%s sets no server.pidfile: a gateway without one can be reloaded with kill -HUP only", *cfgPath)
		}
		pf = f.Server.Pidfile
	}
	if pf == "" {
		pf = defaultPidfile
	}
	b, err := os.ReadFile(pf)
	if err != nil {
		return fmt.Errorf("cannot read the pidfile: %w (is sluice serve running, with server.pidfile set to it?)", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return fmt.Errorf("%s holds no pid: %q", pf, b)
	}
	if !processAlive(pid) {
		return fmt.Errorf("no process %d, the pid in %s: the gateway is not running (a stale pidfile)", pid, pf)
	}

	statusPath := reloadStatusPath(pf)
	prev := 0
	if st := readReloadStatus(statusPath); st != nil {
		if st.inProgress() {
			return refusedErr(st)
		}
		if st.PID == pid {
			prev = st.Attempt
		}
	}
	refused := 0
	if rf := readReloadRefusal(statusPath); rf != nil && rf.PID == pid {
		refused = rf.Count
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("cannot signal pid %d: %w", pid, err)
	}
	sent := time.Now()
	noticed := false
	for {
		st := readReloadStatus(statusPath)
		if st != nil && st.PID == pid && st.Attempt > prev {
			noticed = true
			switch st.State {
			case reloadDraining, reloadDrained, reloadDone:
				fmt.Fprintf(stdout, "reloaded: generation %d (pid %d) ready in %.0fms; generation %d (pid %d) drains and exits\n",
					st.NewGeneration, st.NewPID, st.ReadyMS, st.Generation, st.PID)
				return nil
			case reloadFailed:
				if st.Aborted != "" {
					return fmt.Errorf("reload aborted: the gateway (pid %d) received %s and stops, the new process too:\n%s", st.PID, st.Aborted, st.Error)
				}
				code := 1
				if st.Code == 2 {
					code = 2
				}
				return &exitError{code: code, err: fmt.Errorf("reload failed; generation %d (pid %d) is still serving:\n%s", st.Generation, st.PID, st.Error)}
			}
		}
		if rf := readReloadRefusal(statusPath); !noticed && rf != nil && rf.PID == pid && rf.Count > refused {
			return fmt.Errorf("reload refused by pid %d: %s; try again once it is over", pid, rf.Reason)
		}
		switch {
		case !processAlive(pid):
			if st := readReloadStatus(statusPath); st != nil && st.PID == pid && st.Attempt > prev && st.State != reloadStarting {
				continue // it finished just now: report that
			}
			return fmt.Errorf("the gateway (pid %d) exited during the reload; see its log", pid)
		case !noticed && time.Since(sent) > reloadNoticeLimit:
			return fmt.Errorf("pid %d did not start a reload within %s: a reload may just have begun, or it is not a sluice gateway writing %s", pid, reloadNoticeLimit, statusPath)
		case time.Since(sent) > *timeout:
			return fmt.Errorf("no outcome after %s; see the gateway's log", *timeout)
		}
		time.Sleep(reloadPoll) // polling the status file with a deadline
	}
}

// refusedErr is `sluice reload`'s answer while st is in progress.
func refusedErr(st *reloadStatus) error {
	since := time.Since(st.Started).Round(time.Millisecond)
	if st.State == reloadStarting {
		return fmt.Errorf("reload refused: a reload is already in progress: generation %d (pid %d) started generation %d %s ago; try again once it is done",
			st.Generation, st.PID, st.NewGeneration, since)
	}
	return fmt.Errorf("reload refused: the previous reload is not over: generation %d (pid %d) is still draining (up to its server.drain_timeout); try again once it has exited",
		st.Generation, st.PID)
}
