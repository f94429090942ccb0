package memlimit

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// The test binary is the shim of its own limited commands.
func TestMain(m *testing.M) {
	Main()
	os.Exit(m.Run())
}

func TestLimitIsInForceBeforeTheCommandRuns(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	sh, reexec := Detect(), Detect()
	reexec.sh = ""
	t.Log(sh.Describe())
	t.Run("sh", func(t *testing.T) {
		if sh.sh == "" {
			t.Skip("no /bin/sh with ulimit -d")
		}
		checkLimit(t, sh)
	})
	t.Run("re-exec", func(t *testing.T) { checkLimit(t, reexec) })
}

func checkLimit(t *testing.T, l *Limiter) {
	tests := []struct {
		name    string
		alloc   int // MiB
		wantErr bool
	}{
		{"under the limit", 16, false},
		{"past the limit", 512, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command("python3", "-c", "x = bytearray("+strconv.Itoa(tt.alloc)+" << 20); print('allocated')")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			g, err := l.Apply(cmd, 128<<20)
			if err != nil {
				t.Fatal(err)
			}
			out, err := cmd.Output()
			g.Started()
			g.Release()
			switch {
			case tt.wantErr && (err == nil || !LooksAny(strings.Split(stderr.String(), "\n")) && !g.OOMKilled()):
				t.Errorf("err %v, stderr %q: want a failed allocation", err, stderr.String())
			case !tt.wantErr && (err != nil || strings.TrimSpace(string(out)) != "allocated"):
				t.Errorf("err %v, out %q, stderr %q", err, out, stderr.String())
			}
		})
	}
}

func TestNoLimitLeavesTheCommand(t *testing.T) {
	cmd := exec.Command("true")
	path := cmd.Path
	for _, l := range []*Limiter{nil, Detect()} {
		if g, err := l.Apply(cmd, 0); g != nil || err != nil || cmd.Path != path {
			t.Errorf("limit 0: guard %v, err %v, path %q", g, err, cmd.Path)
		}
	}
}

func TestShimRefusesBadArguments(t *testing.T) {
	tests := [][]string{{}, {"x", "/bin/true", "true"}, {"0", "/bin/true", "true"}, {"100"}}
	for _, args := range tests {
		if code := shim(args); code != 2 {
			t.Errorf("shim(%q) = %d, want 2", args, code)
		}
	}
}

func TestLooks(t *testing.T) {
	tests := []struct {
		line string
		want bool
	}{
		{"MemoryError", true},
		{"fatal error: runtime: out of memory", true},
		{"FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory", true},
		{"terminate called after throwing an instance of 'std::bad_alloc'", true},
		{"SIGSEGV: segmentation violation", true}, // Go faulting in its GC at the limit
		{"java.lang.OutOfMemoryError: Java heap space", true},
		{"# There is insufficient memory for the Java Runtime Environment to continue.", true},
		{"ValueError: bad input", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := Looks([]byte(tt.line)); got != tt.want {
			t.Errorf("Looks(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
}
