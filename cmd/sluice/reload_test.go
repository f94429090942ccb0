package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestProcessAlive(t *testing.T) {
	if !processAlive(os.Getpid()) {
		t.Error("this process is not alive")
	}
	if processAlive(0) || processAlive(-1) {
		t.Error("pid 0 or -1 is alive")
	}
	// An exited child not yet waited for is a zombie: not alive.
	cmd := exec.Command("sh", "-c", "exit 0")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	deadline := time.Now().Add(10 * time.Second)
	for processAlive(pid) {
		if time.Now().After(deadline) {
			t.Fatal("an exited child (a zombie) still counts as alive")
		}
		time.Sleep(5 * time.Millisecond) // polling the child's state with a deadline
	}
	_ = cmd.Wait()
	if processAlive(pid) {
		t.Error("a reaped child is alive")
	}
}

// TestCmdReloadErrors runs `sluice reload` in this process against
// pidfiles and status files it wrote: every refusal comes before a signal
// is sent (a SIGHUP would reach this test process, and fails the test).
func TestCmdReloadErrors(t *testing.T) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	me := strconv.Itoa(os.Getpid())
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	noPidfile := write("nopid.yaml", "functions:\n  echo: {runtime: go, handler: echo}\n")
	inProgress := write("busy.pid", me)
	if err := writeJSONFile(reloadStatusPath(inProgress), &reloadStatus{State: reloadStarting, PID: os.Getpid(), Generation: 3, NewGeneration: 4, Started: time.Now()}); err != nil {
		t.Fatal(err)
	}
	draining := write("draining.pid", me)
	if err := writeJSONFile(reloadStatusPath(draining), &reloadStatus{State: reloadDraining, PID: os.Getpid(), Generation: 3, NewGeneration: 4, Started: time.Now()}); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no pidfile", []string{"--pidfile", filepath.Join(dir, "none.pid")}, 1, "cannot read the pidfile"},
		{"garbage", []string{"--pidfile", write("bad.pid", "nope")}, 1, "holds no pid"},
		{"stale", []string{"--pidfile", write("stale.pid", strconv.Itoa(dead.Process.Pid))}, 1, "is not running"},
		{"config without pidfile", []string{"-c", noPidfile}, 2, "sets no server.pidfile"},
		{"both flags", []string{"-c", noPidfile, "--pidfile", inProgress}, 2, "usage"},
		{"in progress", []string{"--pidfile", inProgress}, 1, "reload refused: a reload is already in progress: generation 3"},
		{"draining", []string{"--pidfile", draining}, 1, "generation 3 (pid " + me + ") is still draining"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := cmdReload(tt.args, &out, &out)
			code := 0
			if err != nil {
				code = 1
				var ee *exitError
				if errors.As(err, &ee) {
					code = ee.code
				}
			}
			if code != tt.code || err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("exit %d, error %v; want exit %d with %q", code, err, tt.code, tt.want)
			}
		})
	}
	select {
	case <-hup:
		t.Error("sluice reload sent SIGHUP although it refused")
	default:
	}
}

// TestCmdReloadOutcome plays the gateway in this process: on the SIGHUP
// `sluice reload` sends, it writes what a gateway would, and the command
// reports it.
func TestCmdReloadOutcome(t *testing.T) {
	me := os.Getpid()
	for _, tt := range []struct {
		name    string
		respond func(status string) // what the gateway writes on SIGHUP
		code    int
		want    string
	}{
		{"ready", func(status string) {
			_ = writeJSONFile(status, &reloadStatus{State: reloadDraining, PID: me, Attempt: 1, Generation: 1, NewGeneration: 2, NewPID: 4312, ReadyMS: 180})
		}, 0, "reloaded: generation 2 (pid 4312) ready in 180ms; generation 1 (pid " + strconv.Itoa(me) + ") drains and exits"},
		{"bad config", func(status string) {
			_ = writeJSONFile(status, &reloadStatus{State: reloadFailed, PID: me, Attempt: 1, Generation: 1, NewGeneration: 2, Code: 2, Error: "sluice.yaml:3:5: unknown key \"hander\""})
		}, 2, "still serving:\nsluice.yaml:3:5: unknown key \"hander\""},
		{"refused", func(status string) {
			_ = writeJSONFile(reloadRefusedPath(status), &reloadRefusal{PID: me, Count: 3, Reason: "the previous generation 2 is still draining"})
		}, 1, "reload refused by pid " + strconv.Itoa(me) + ": the previous generation 2 is still draining"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			dir := t.TempDir()
			pidfile := filepath.Join(dir, "sluice.pid")
			if err := os.WriteFile(pidfile, []byte(strconv.Itoa(me)), 0o644); err != nil {
				t.Fatal(err)
			}
			status := reloadStatusPath(pidfile)
			// An earlier refusal and an earlier attempt, which are not this one's.
			_ = writeJSONFile(reloadRefusedPath(status), &reloadRefusal{PID: me, Count: 2, Reason: "old"})
			_ = writeJSONFile(status, &reloadStatus{State: reloadFailed, PID: me, Attempt: 0, Error: "old"})
			go func() {
				select {
				case <-hup:
					tt.respond(status)
				case <-time.After(10 * time.Second):
				}
			}()
			var out bytes.Buffer
			err := cmdReload([]string{"--pidfile", pidfile}, &out, &out)
			code, msg := 0, out.String()
			if err != nil {
				code, msg = 1, err.Error()
				var ee *exitError
				if errors.As(err, &ee) {
					code = ee.code
				}
			}
			if code != tt.code || !strings.Contains(msg, tt.want) {
				t.Errorf("exit %d: %s\nwant exit %d with %q", code, msg, tt.code, tt.want)
			}
		})
	}
}
