package process_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testtool"
	"github.com/sluicehq/sluice/plugins/process"
)

// TestReadmeExamples runs the minimal functions of plugins/examples/README.md
// so that the documentation stays true.
func TestReadmeExamples(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../examples/README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```(python|js)\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(blocks) != 2 {
		t.Fatalf("found %d example blocks in the README, want 2", len(blocks))
	}
	for _, m := range blocks {
		lang, code := string(m[1]), m[2]
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			prog := map[string]string{"python": "python3", "js": "node"}[lang]
			path := testtool.Need(t, prog, "Debian package "+map[string]string{"python3": "python3", "node": "nodejs"}[prog])
			file := filepath.Join(t.TempDir(), "fn."+lang)
			if err := os.WriteFile(file, code, 0o644); err != nil {
				t.Fatal(err)
			}
			p := startPool(t, process.Config{Command: []string{path, file}}, nil)
			b := batch(event("a", map[string]any{"n": 1}), event("b", []int{2}))
			if err := invoke(p, b, 20*time.Second); err != nil {
				t.Fatal(err)
			}
			for i, want := range []string{`{"n":1}`, `[2]`} {
				r := b.Results[i]
				var got, w any
				_ = json.Unmarshal(r.Output, &got)
				_ = json.Unmarshal([]byte(want), &w)
				g, _ := json.Marshal(got)
				ww, _ := json.Marshal(w)
				if r.Err != nil || string(g) != string(ww) {
					t.Errorf("event %d: %s, %v; want %s", i, r.Output, r.Err, want)
				}
			}
		})
	}
}
