// Package testtool finds the outside programs tests drive (kcat, the AWS
// CLI, python3, node, chromium…). Without one a test skips on a developer's
// machine, but fails in CI (CI=true), where every one of them must be
// installed: a skipped test there would pass what it never checked.
package testtool

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI: the CI environment variable is
// a true value ("true", "1"…), as CI systems set it.
func InCI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// Need returns the path of the program name on PATH. When it is missing,
// the test fails in CI and skips elsewhere; hint says how to install it
// ("Debian package kcat").
func Need(t testing.TB, name, hint string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := name + " is not installed"
	if hint != "" {
		msg += " (" + hint + ")"
	}
	if InCI() {
		t.Fatalf("%s; CI=true: a missing outside client fails rather than skips", msg)
	}
	t.Skip(msg + "; CI=true makes this a failure")
	return ""
}

// WaitFor polls cond until it holds, failing the test when d passes first:
// the one way tests wait for something to happen, never by sleeping a
// guessed time. what names the condition in the failure.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond) // the polling interval, not a wait for an event
	}
}

// Gone reports whether process pid no longer runs: there is no such
// process, or it is a zombie waiting for a parent that is not the test (a
// killed grandchild, inherited by init).
func Gone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// pid (comm) STATE …: comm may hold spaces and parentheses, the state
	// follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
}
