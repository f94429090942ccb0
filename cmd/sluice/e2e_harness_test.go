package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testtool"
)

// The end-to-end tests build the real binary once and drive it over real
// sockets, as a user would.
var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string // holds binPath; TestMain removes it
	repo    string // the repository root
)

// TestMain removes the binary the end-to-end tests built (about 55 MB with
// the race detector), so that a run leaves nothing in the temp directory.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func sluiceBin(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	binOnce.Do(func() {
		wd, _ := os.Getwd()
		repo = filepath.Clean(filepath.Join(wd, "..", ".."))
		dir, err := os.MkdirTemp("", "sluice-e2e-")
		if err != nil {
			binErr = err
			return
		}
		binDir = dir
		binPath = filepath.Join(dir, "sluice")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			// The binary under test gets the race detector too: races in
			// the wiring show up where they happen, in the real process.
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, ".")...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// proc is a running sluice process.
type proc struct {
	t       testing.TB
	cmd     *exec.Cmd
	mu      sync.Mutex
	lines   []map[string]any
	raw     []string
	exited  chan struct{}
	http    string // base URL of the gateway
	admin   string // base URL of the admin listener
	waitErr error
}

// writeConfig writes yaml to a file in dir and returns its path.
func writeConfig(t testing.TB, dir, yaml string) string {
	t.Helper()
	p := filepath.Join(dir, "sluice.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// startSluice runs `sluice serve -c cfg` and waits until it logs ready.
func startSluice(t testing.TB, cfgPath string, env ...string) *proc {
	t.Helper()
	return startSluiceBin(t, sluiceBin(t), cfgPath, env...)
}

// startSluiceBin is startSluice with the sluice binary at bin.
func startSluiceBin(t testing.TB, bin, cfgPath string, env ...string) *proc {
	t.Helper()
	p := startProcBin(t, bin, []string{"serve", "-c", cfgPath}, env...)
	p.waitLog("ready", 60*time.Second)
	waitFor(t, 10*time.Second, "both listening lines", func() bool {
		return len(p.findLog("listening", map[string]any{"listener": "http"})) > 0 && len(p.findLog("listening", map[string]any{"listener": "admin"})) > 0
	})
	p.http = "http://" + p.listenAddr("http")
	p.admin = "http://" + p.listenAddr("admin")
	return p
}

// startProcBin runs the sluice binary at bin with args.
func startProcBin(t testing.TB, bin string, args []string, env ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			line := sc.Text()
			var m map[string]any
			_ = json.Unmarshal([]byte(line), &m)
			p.mu.Lock()
			p.raw = append(p.raw, line)
			p.lines = append(p.lines, m)
			p.mu.Unlock()
		}
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop(syscall.SIGTERM, 30*time.Second)
		if t.Failed() {
			t.Logf("sluice log:\n%s", p.log())
		}
	})
	return p
}

// stop signals the process and waits for it to exit, killing its group
// after d.
func (p *proc) stop(sig syscall.Signal, d time.Duration) {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(d):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.exited
	}
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.raw, "\n")
}

// findLog returns the log lines whose message is msg and which have every
// field of match.
func (p *proc) findLog(msg string, match map[string]any) []map[string]any {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []map[string]any
	for _, l := range p.lines {
		if l == nil || l["message"] != msg {
			continue
		}
		ok := true
		for k, v := range match {
			if fmt.Sprint(l[k]) != fmt.Sprint(v) {
				ok = false
			}
		}
		if ok {
			out = append(out, l)
		}
	}
	return out
}

func (p *proc) waitLog(msg string, d time.Duration) map[string]any {
	p.t.Helper()
	var got map[string]any
	waitFor(p.t, d, "log line "+msg, func() bool {
		if ls := p.findLog(msg, nil); len(ls) > 0 {
			got = ls[len(ls)-1]
			return true
		}
		select {
		case <-p.exited:
			p.t.Fatalf("sluice exited (%v) before logging %q:\n%s", p.waitErr, msg, p.log())
		default:
		}
		return false
	})
	return got
}

func (p *proc) listenAddr(listener string) string {
	p.t.Helper()
	ls := p.findLog("listening", map[string]any{"listener": listener})
	if len(ls) == 0 {
		p.t.Fatalf("no listening line for %s:\n%s", listener, p.log())
	}
	return ls[len(ls)-1]["addr"].(string)
}

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testtool.WaitFor(t, d, what, cond)
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

type response struct {
	code   int
	header http.Header
	body   []byte
}

func do(t testing.TB, method, url, contentType string, body []byte, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{code: resp.StatusCode, header: resp.Header, body: b}
}

// runSluice runs a one-shot sluice command and returns its exit code,
// stdout and stderr.
func runSluice(t testing.TB, stdin []byte, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(sluiceBin(t), args...)
	cmd.Dir = repo
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// metric returns the value of one series on the admin /metrics page, or -1.
func (p *proc) metric(series string) float64 {
	p.t.Helper()
	r := do(p.t, "GET", p.admin+"/metrics", "", nil)
	for _, line := range strings.Split(string(r.body), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return -1
}
