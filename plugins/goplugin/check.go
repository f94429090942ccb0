package goplugin

import (
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/plugins"
)

// ErrMismatch is matched (errors.Is) by the error of a plugin built
// differently from the running binary.
var ErrMismatch = errors.New("goplugin: plugin built differently from the host")

// Mismatch is one way a plugin's build differs from the host's.
type Mismatch struct {
	// What differs: "Go version", a build setting ("-race", "-tags",
	// "CGO_ENABLED", "GOARCH", …), "module PATH" or "package PATH".
	What string
	// Host and Plugin are the two values.
	Host, Plugin string
}

// MismatchError is the error of a plugin built with another toolchain,
// other build flags or other versions of the modules and packages it shares
// with the host. It names every mismatch.
type MismatchError struct {
	Path       string
	Mismatches []Mismatch
}

// maxListed bounds the mismatches an error message lists: another
// toolchain changes every standard package.
const maxListed = 8

func (e *MismatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "goplugin: %s was built differently from this binary; rebuild it with the same Go toolchain, flags and module versions (make plugins): ", e.Path)
	for i, m := range e.Mismatches {
		if i == maxListed {
			fmt.Fprintf(&b, "; and %d more", len(e.Mismatches)-maxListed)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s: host %s, plugin %s", m.What, m.Host, m.Plugin)
	}
	return b.String()
}

// Is reports whether target is ErrMismatch.
func (e *MismatchError) Is(target error) bool { return target == ErrMismatch }

// apiPackage is the import path of the function API a plugin's Handle is
// typed with.
var apiPackage = reflect.TypeFor[plugins.Event]().PkgPath()

// Check compares the plugin at path with the running binary before it is
// opened, and returns a *MismatchError naming every difference the Go
// runtime would refuse or crash on: the Go version, GOOS/GOARCH and the
// other GO* settings, -race, -msan, -asan, -trimpath, CGO_ENABLED, build
// tags, the version and checksum of every module both use (the one
// providing github.com/sluicehq/sluice/plugins above all), and — on ELF
// systems — the link-time fingerprint of every package both link, which
// differs whenever a shared package's source differs, even between two
// development builds of the same module version. Other errors: the file
// cannot be read, is not a Go program, or is not a plugin.
func Check(path string) error {
	host, ok := debug.ReadBuildInfo()
	if !ok {
		return errors.New("goplugin: the running binary has no build info to compare plugins with")
	}
	plug, err := buildinfo.ReadFile(path)
	if err != nil {
		return fmt.Errorf("goplugin: %s: cannot read its Go build info (is it a Go plugin?): %w", path, err)
	}
	if mode := setting(plug, "-buildmode"); mode != "" && mode != "plugin" {
		return fmt.Errorf("goplugin: %s is not a Go plugin: it was built with -buildmode=%s, want -buildmode=plugin", path, mode)
	}
	ms := compareBuilds(host, plug)
	hostHashes, err := hostPackageHashes()
	if err == nil && hostHashes != nil {
		plugHashes, err := packageHashes(path)
		if err != nil {
			return fmt.Errorf("goplugin: %s: %w", path, err)
		}
		ms = append(ms, comparePackages(hostHashes, plugHashes)...)
	}
	if len(ms) > 0 {
		return &MismatchError{Path: path, Mismatches: ms}
	}
	return nil
}

// compareBuilds returns the differences between two builds' info that
// make a plugin unloadable or unsafe.
func compareBuilds(host, plug *debug.BuildInfo) []Mismatch {
	var ms []Mismatch
	if host.GoVersion != plug.GoVersion {
		ms = append(ms, Mismatch{"Go version", host.GoVersion, plug.GoVersion})
	}
	keys := map[string]bool{"-compiler": true, "-race": true, "-msan": true, "-asan": true,
		"-trimpath": true, "-tags": true, "CGO_ENABLED": true}
	for _, bi := range []*debug.BuildInfo{host, plug} {
		for _, s := range bi.Settings {
			// GOOS, GOARCH, GOAMD64, GOARM, GOEXPERIMENT, GOFIPS140, …
			if strings.HasPrefix(s.Key, "GO") {
				keys[s.Key] = true
			}
		}
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		h, p := normSetting(k, setting(host, k)), normSetting(k, setting(plug, k))
		if h != p {
			ms = append(ms, Mismatch{k, show(h), show(p)})
		}
	}

	hm, pm := modules(host), modules(plug)
	api := providerOf(apiPackage, hm)
	if api != "" {
		if _, ok := pm[api]; !ok {
			ms = append(ms, Mismatch{"module " + api, hm[api].String(), "not used (the plugin does not import " + apiPackage + ")"})
		}
	}
	paths := make([]string, 0, len(hm))
	for p := range hm {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, path := range paths {
		p, ok := pm[path]
		if !ok {
			continue
		}
		if h := hm[path]; !h.same(p) {
			ms = append(ms, Mismatch{"module " + path, h.String(), p.String()})
		}
	}
	// The module providing the function API first: it is the one users
	// must rebuild against.
	slices.SortStableFunc(ms, func(a, b Mismatch) int {
		ai, bi := a.What == "module "+api, b.What == "module "+api
		switch {
		case ai && !bi:
			return -1
		case bi && !ai:
			return 1
		}
		return 0
	})
	return ms
}

func setting(bi *debug.BuildInfo, key string) string {
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

// normSetting makes equal what the toolchain records differently: a flag
// that is off is left out; tags are a set.
func normSetting(key, v string) string {
	switch key {
	case "-race", "-msan", "-asan", "-trimpath":
		if v == "" {
			return "false"
		}
	case "-tags":
		tags := strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
		sort.Strings(tags)
		return strings.Join(slices.Compact(tags), ",")
	}
	return v
}

func show(v string) string {
	if v == "" {
		return "(unset)"
	}
	return v
}

// module is the code a module path resolves to in one build.
type module struct {
	version, sum, replace string
}

func (m module) String() string {
	s := m.version
	if m.replace != "" {
		s += " => " + m.replace
	}
	if m.sum != "" {
		s += " " + m.sum
	}
	return s
}

// same reports whether two builds used the same code of a module, as far
// as build info can tell: the same version, replacement and checksum. Two
// development builds ("(devel)" or a local replacement) look alike here;
// their packages' fingerprints tell them apart.
func (m module) same(o module) bool {
	if m.local() && o.local() {
		return true
	}
	return m.version == o.version && m.replace == o.replace && (m.sum == "" || o.sum == "" || m.sum == o.sum)
}

// local reports a module built from a directory rather than a version.
func (m module) local() bool {
	return m.version == "(devel)" || m.replace != "" && (strings.HasPrefix(m.replace, ".") || strings.HasPrefix(m.replace, "/"))
}

func modules(bi *debug.BuildInfo) map[string]module {
	out := make(map[string]module, len(bi.Deps)+1)
	if bi.Main.Path != "" {
		out[bi.Main.Path] = module{version: bi.Main.Version, sum: bi.Main.Sum}
	}
	for _, d := range bi.Deps {
		m := module{version: d.Version, sum: d.Sum}
		if r := d.Replace; r != nil {
			m.replace = r.Path
			if r.Version != "" {
				m.replace += "@" + r.Version
			}
			m.sum = r.Sum
		}
		out[d.Path] = m
	}
	return out
}

// providerOf returns the module of mods that provides package pkg: the
// longest module path that is a prefix of it.
func providerOf(pkg string, mods map[string]module) string {
	best := ""
	for p := range mods {
		if (pkg == p || strings.HasPrefix(pkg, p+"/")) && len(p) > len(best) {
			best = p
		}
	}
	return best
}

// pkgHashPrefix names the symbols holding the link-time fingerprint of each
// package (its export data hash), which the linker emits in plugins and in
// binaries that can load them, and the runtime compares when a plugin is
// opened ("plugin was built with a different version of package …").
// They are dynamic symbols, so they survive stripping.
const pkgHashPrefix = "go:link.pkghashbytes."

var (
	hostHashesOnce sync.Once
	hostHashes     map[string]string
	hostHashesErr  error
)

// hostPackageHashes returns the running binary's package fingerprints, nil
// when it has none (not ELF).
func hostPackageHashes() (map[string]string, error) {
	hostHashesOnce.Do(func() {
		exe, err := os.Executable()
		if err != nil {
			hostHashesErr = err
			return
		}
		hostHashes, hostHashesErr = packageHashes(exe)
	})
	return hostHashes, hostHashesErr
}

// packageHashes reads the package fingerprints of an ELF file: nil, nil
// for a file of another format.
func packageHashes(path string) (map[string]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		var fe *elf.FormatError
		if errors.As(err, &fe) {
			return nil, nil
		}
		return nil, err
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		return nil, fmt.Errorf("cannot read dynamic symbols: %w", err)
	}
	out := make(map[string]string)
	for _, s := range syms {
		pkg, ok := strings.CutPrefix(s.Name, pkgHashPrefix)
		if !ok || s.Size == 0 || s.Size > 64 {
			continue
		}
		for _, sec := range f.Sections {
			if sec.Type == elf.SHT_NOBITS || s.Value < sec.Addr || s.Value+s.Size > sec.Addr+sec.Size {
				continue
			}
			b := make([]byte, s.Size)
			if _, err := sec.ReadAt(b, int64(s.Value-sec.Addr)); err != nil {
				return nil, fmt.Errorf("cannot read the fingerprint of %s: %w", pkg, err)
			}
			out[pkg] = hex.EncodeToString(b)
			break
		}
	}
	return out, nil
}

// comparePackages returns the packages both link with different
// fingerprints, the function API first.
func comparePackages(host, plug map[string]string) []Mismatch {
	var ms []Mismatch
	for pkg, p := range plug {
		if h, ok := host[pkg]; ok && h != p {
			ms = append(ms, Mismatch{"package " + pkg, h, p})
		}
	}
	sort.Slice(ms, func(i, j int) bool {
		ai, bj := ms[i].What == "package "+apiPackage, ms[j].What == "package "+apiPackage
		if ai != bj {
			return ai
		}
		return ms[i].What < ms[j].What
	})
	return ms
}
