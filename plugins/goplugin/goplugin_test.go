package goplugin

import (
	"context"
	"encoding/json"
	"errors"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/plugins"
)

// moduleRoot is the root of the sluice module, from this package's
// directory.
const moduleRoot = "../.."

// buildPlugin builds the package in dir (relative to the working
// directory, or absolute) as a plugin the way the running test binary was
// built: the same -race, -trimpath, tags, CGO_ENABLED and GO* settings, so
// that the check passes for an unchanged plugin.
func buildPlugin(t *testing.T, workdir, pkg, out string) {
	t.Helper()
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("the test binary has no build info")
	}
	if setting(bi, "CGO_ENABLED") != "1" {
		t.Skip("Go plugins need cgo, and this test binary was built with CGO_ENABLED=0")
	}
	args := []string{"build", "-buildmode=plugin", "-o", out}
	for _, f := range []string{"-race", "-msan", "-asan", "-trimpath"} {
		if setting(bi, f) == "true" {
			args = append(args, f)
		}
	}
	if tags := setting(bi, "-tags"); tags != "" {
		args = append(args, "-tags="+tags)
	}
	args = append(args, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = workdir
	cmd.Env = os.Environ()
	for _, s := range bi.Settings {
		if strings.HasPrefix(s.Key, "GO") || s.Key == "CGO_ENABLED" {
			cmd.Env = append(cmd.Env, s.Key+"="+s.Value)
		}
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
}

func storageEvent(bucket, key string) *plugins.Event {
	data, _ := json.Marshal(map[string]any{
		"eventName": "ObjectCreated:Put",
		"s3":        map[string]any{"bucket": map[string]any{"name": bucket}, "object": map[string]any{"key": key}},
	})
	return &plugins.Event{ID: plugins.NewID(), Source: "test", Type: plugins.TypeStorageCreated, DataContentType: "application/json", Data: data}
}

func TestThumbsPlugin(t *testing.T) {
	dir := t.TempDir()
	so := filepath.Join(dir, "thumbs.so")
	buildPlugin(t, moduleRoot, "./plugins/examples/thumbs", so)
	if err := Check(so); err != nil {
		t.Fatalf("Check of a plugin built like the host: %v", err)
	}

	root, out := t.TempDir(), t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 400, 100))
	for y := 0; y < 100; y++ {
		for x := 0; x < 400; x++ {
			img.SetRGBA(x, y, color.RGBA{0, 128, 255, 255})
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "media"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(root, "media", "wide.png"))
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	f.Close()

	w, err := New("thumbs", so, map[string]string{"OBJECT_ROOT": root, "THUMB_DIR": out})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	b := &plugins.Batch{
		ID: "b", Function: "thumbs", Deadline: time.Now().Add(10 * time.Second),
		Events:  []*plugins.Event{storageEvent("media", "wide.png"), storageEvent("media", "missing.png")},
		Results: make([]plugins.Result, 2),
	}
	if err := w.Invoke(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if b.Results[0].Err != nil {
		t.Fatalf("thumbnail: %v", b.Results[0].Err)
	}
	var ans struct {
		Thumbnail struct {
			Path          string
			Width, Height int
		}
	}
	if err := json.Unmarshal(b.Results[0].Output, &ans); err != nil {
		t.Fatal(err)
	}
	if ans.Thumbnail.Path != filepath.Join(out, "media", "wide.png.thumb.png") || ans.Thumbnail.Width != 128 || ans.Thumbnail.Height != 32 {
		t.Errorf("output %s", b.Results[0].Output)
	}
	tf, err := os.Open(ans.Thumbnail.Path)
	if err != nil {
		t.Fatal(err)
	}
	thumb, err := png.Decode(tf)
	tf.Close()
	if err != nil || thumb.Bounds().Dx() != 128 || thumb.Bounds().Dy() != 32 {
		t.Fatalf("thumbnail file: %v %v", err, thumb)
	}
	if r, g, bl, _ := thumb.At(64, 16).RGBA(); r>>8 != 0 || g>>8 != 128 || bl>>8 != 255 {
		t.Errorf("thumbnail pixel = %d %d %d", r>>8, g>>8, bl>>8)
	}
	if !errors.Is(b.Results[1].Err, fs.ErrNotExist) {
		t.Errorf("missing object: %v", b.Results[1].Err)
	}

	// Opening the same unchanged file again returns the loaded plugin.
	if _, err := Open(so); err != nil {
		t.Errorf("second Open: %v", err)
	}
	// A changed file at the same path cannot be loaded by this process.
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(so, later, later); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(so); err == nil || !strings.Contains(err.Error(), "sluice reload") {
		t.Errorf("Open of a changed plugin: %v", err)
	}
}

func TestHandleSymbol(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		pkg   string
		check func(t *testing.T, h plugins.Handler, err error)
	}{
		{"varhandle", func(t *testing.T, h plugins.Handler, err error) {
			if err != nil {
				t.Fatal(err)
			}
			out, err := h(context.Background(), &plugins.Event{Subject: "s"})
			if err != nil || string(out) != `"s"` {
				t.Errorf("Handle = %s, %v", out, err)
			}
		}},
		{"badhandle", func(t *testing.T, _ plugins.Handler, err error) {
			if err == nil || !strings.Contains(err.Error(), "Handle is a func(string) error, want func(context.Context, *plugins.Event) ([]byte, error)") {
				t.Errorf("err = %v", err)
			}
		}},
		{"nohandle", func(t *testing.T, _ plugins.Handler, err error) {
			if err == nil || !strings.Contains(err.Error(), "exports no Handle") {
				t.Errorf("err = %v", err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.pkg, func(t *testing.T) {
			so := filepath.Join(dir, tt.pkg+".so")
			buildPlugin(t, ".", "./testdata/"+tt.pkg, so)
			h, err := Open(so)
			tt.check(t, h, err)
		})
	}
}

// copyModule copies what a plugin needs of the sluice module (go.mod,
// go.sum, the plugins package, the thumbs example) to a new directory, and
// returns it.
func copyModule(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	copyFile := func(from, to string) {
		b, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(filepath.Join(moduleRoot, "go.mod"), filepath.Join(dst, "go.mod"))
	copyFile(filepath.Join(moduleRoot, "go.sum"), filepath.Join(dst, "go.sum"))
	for _, dir := range []string{"plugins", "plugins/examples/thumbs"} {
		ents, err := os.ReadDir(filepath.Join(moduleRoot, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".go") && !strings.HasSuffix(e.Name(), "_test.go") {
				to := dir
				if dir != "plugins" {
					to = "plugins/examples/otherthumbs" // another plugin path than the thumbs loaded by other tests
				}
				copyFile(filepath.Join(moduleRoot, dir, e.Name()), filepath.Join(dst, to, e.Name()))
			}
		}
	}
	return dst
}

func TestRefusesPluginBuiltAgainstAnotherPluginsPackage(t *testing.T) {
	mod := copyModule(t)
	// Another version of the function API: one more exported function.
	api := filepath.Join(mod, "plugins", "doc.go")
	b, err := os.ReadFile(api)
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, "\n// AddedLater exists only in this other version.\nfunc AddedLater() int { return 2 }\n"...)
	if err := os.WriteFile(api, b, 0o644); err != nil {
		t.Fatal(err)
	}
	so := filepath.Join(t.TempDir(), "other.so")
	buildPlugin(t, mod, "./plugins/examples/otherthumbs", so)

	_, err = Open(so)
	var me *MismatchError
	if !errors.Is(err, ErrMismatch) || !errors.As(err, &me) {
		t.Fatalf("Open = %v, want a mismatch", err)
	}
	if me.Mismatches[0].What != "package github.com/sluicehq/sluice/plugins" {
		t.Errorf("first mismatch = %+v, want the plugins package", me.Mismatches[0])
	}
	if !strings.Contains(err.Error(), "package github.com/sluicehq/sluice/plugins: host ") {
		t.Errorf("message does not name the package: %v", err)
	}
	if _, err := New("other", so, nil); !errors.Is(err, ErrMismatch) || !strings.HasPrefix(err.Error(), `function "other": `) {
		t.Errorf("New = %v", err)
	}

	// Without the check, the Go runtime refuses it too: the check is not
	// stricter than the runtime, only earlier and clearer, and a refused
	// plugin is an error, not a crash.
	if _, err := open(so); err == nil || !strings.Contains(err.Error(), "different version of package") {
		t.Errorf("unchecked open = %v", err)
	}
}

func TestCheckRefusesWhatIsNotAPlugin(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(exe); err == nil || !strings.Contains(err.Error(), "-buildmode=exe") {
		t.Errorf("Check(test binary) = %v", err)
	}
	notGo := filepath.Join(t.TempDir(), "x.so")
	if err := os.WriteFile(notGo, []byte("not an ELF file"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(notGo); err == nil || !strings.Contains(err.Error(), "cannot read its Go build info") {
		t.Errorf("Open(garbage) = %v", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.so")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v", err)
	}
}

func TestCompareBuilds(t *testing.T) {
	host := func() *debug.BuildInfo {
		return &debug.BuildInfo{
			GoVersion: "go1.26.8",
			Main:      debug.Module{Path: "github.com/sluicehq/sluice", Version: "(devel)"},
			Deps: []*debug.Module{
				{Path: "github.com/valyala/fasthttp", Version: "v1.78.0", Sum: "h1:aaa"},
				{Path: "golang.org/x/sys", Version: "v0.49.0", Sum: "h1:bbb"},
			},
			Settings: []debug.BuildSetting{
				{Key: "-buildmode", Value: "exe"}, {Key: "-compiler", Value: "gc"},
				{Key: "CGO_ENABLED", Value: "1"}, {Key: "GOARCH", Value: "amd64"},
				{Key: "GOOS", Value: "linux"}, {Key: "GOAMD64", Value: "v1"},
				{Key: "-ldflags", Value: "-X main.version=1"},
			},
		}
	}
	plugin := func() *debug.BuildInfo {
		return &debug.BuildInfo{
			GoVersion: "go1.26.8",
			Main:      debug.Module{Path: "example.com/myplugin", Version: "(devel)"},
			Deps: []*debug.Module{
				{Path: "github.com/sluicehq/sluice", Version: "v0.0.0-20260101000000-abcdef012345", Sum: "h1:ccc",
					Replace: &debug.Module{Path: "../sluice"}},
				{Path: "golang.org/x/sys", Version: "v0.49.0", Sum: "h1:bbb"},
			},
			Settings: []debug.BuildSetting{
				{Key: "-buildmode", Value: "plugin"}, {Key: "-compiler", Value: "gc"},
				{Key: "CGO_ENABLED", Value: "1"}, {Key: "GOARCH", Value: "amd64"},
				{Key: "GOOS", Value: "linux"}, {Key: "GOAMD64", Value: "v1"},
			},
		}
	}
	tests := []struct {
		name   string
		change func(h, p *debug.BuildInfo)
		want   []string // What of each mismatch, in order
	}{
		{"alike (ldflags and build mode may differ; local builds of the API module compare by fingerprint)", func(h, p *debug.BuildInfo) {}, nil},
		{"Go version", func(h, p *debug.BuildInfo) { p.GoVersion = "go1.26.7" }, []string{"Go version"}},
		{"race", func(h, p *debug.BuildInfo) {
			h.Settings = append(h.Settings, debug.BuildSetting{Key: "-race", Value: "true"})
		}, []string{"-race"}},
		{"trimpath and tags", func(h, p *debug.BuildInfo) {
			p.Settings = append(p.Settings, debug.BuildSetting{Key: "-trimpath", Value: "true"}, debug.BuildSetting{Key: "-tags", Value: "b,a"})
			h.Settings = append(h.Settings, debug.BuildSetting{Key: "-tags", Value: "a"})
		}, []string{"-tags", "-trimpath"}},
		{"tags as a set", func(h, p *debug.BuildInfo) {
			p.Settings = append(p.Settings, debug.BuildSetting{Key: "-tags", Value: "b,a"})
			h.Settings = append(h.Settings, debug.BuildSetting{Key: "-tags", Value: "a,b"})
		}, nil},
		{"cgo and arch level", func(h, p *debug.BuildInfo) {
			p.Settings[2].Value = "0"
			p.Settings[5].Value = "v3"
		}, []string{"CGO_ENABLED", "GOAMD64"}},
		{"a released API module against a development host", func(h, p *debug.BuildInfo) {
			p.Deps[0].Replace = nil
		}, []string{"module github.com/sluicehq/sluice"}},
		{"a shared module's version", func(h, p *debug.BuildInfo) { p.Deps[1].Version = "v0.50.0" }, []string{"module golang.org/x/sys"}},
		{"a shared module's checksum", func(h, p *debug.BuildInfo) { p.Deps[1].Sum = "h1:zzz" }, []string{"module golang.org/x/sys"}},
		{"the API module first", func(h, p *debug.BuildInfo) {
			p.Deps[1].Version = "v0.50.0"
			h.Main.Version = "v1.2.0"
			p.Deps[0] = &debug.Module{Path: "github.com/sluicehq/sluice", Version: "v1.1.0", Sum: "h1:x"}
		}, []string{"module github.com/sluicehq/sluice", "module golang.org/x/sys"}},
		{"a plugin not using the API", func(h, p *debug.BuildInfo) { p.Deps = p.Deps[1:] }, []string{"module github.com/sluicehq/sluice"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, p := host(), plugin()
			tt.change(h, p)
			ms := compareBuilds(h, p)
			var got []string
			for _, m := range ms {
				got = append(got, m.What)
			}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("mismatches = %+v, want %v", ms, tt.want)
			}
		})
	}
	err := (&MismatchError{Path: "x.so", Mismatches: []Mismatch{{"Go version", "go1.26.8", "go1.26.7"}}}).Error()
	if !strings.Contains(err, "x.so") || !strings.Contains(err, "Go version: host go1.26.8, plugin go1.26.7") || !strings.Contains(err, "make plugins") {
		t.Errorf("message %q", err)
	}
}
