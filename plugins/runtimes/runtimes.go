package runtimes

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Kinds of managed runtime.
const (
	Python = "python"
	Node   = "nodejs"
	Java   = "java"
)

var (
	//go:embed python/bootstrap.py
	pythonClient []byte
	//go:embed node/bootstrap.mjs
	nodeClient []byte
	//go:embed java/SluiceRuntime.java
	javaClient []byte
)

// Client file names inside an installed folder.
const (
	pythonFile = "bootstrap.py"
	nodeFile   = "bootstrap.mjs"
	javaFile   = "SluiceRuntime.java"
	javaClass  = "SluiceRuntime"
)

// Parse reads a runtime name as a config writes it: "python", "python3" or
// Lambda's "python3.12" is Python (version "3.12"); "nodejs", "node" or
// Lambda's "nodejs20.x" is Node.js (version "20"); "java" or Lambda's
// "java21" and "java8.al2" is Java (version "21", "8.al2"). ok is false
// for any other name.
func Parse(name string) (kind, version string, ok bool) {
	switch name {
	case "python", "python3":
		return Python, "", true
	case "nodejs", "node":
		return Node, "", true
	case "java":
		return Java, "", true
	}
	if v, found := strings.CutPrefix(name, "java"); found {
		if d, found := strings.CutSuffix(v, ".al2"); digits(v) || found && digits(d) {
			return Java, v, true
		}
	}
	if v, found := strings.CutPrefix(name, "python3."); found && digits(v) {
		return Python, "3." + v, true
	}
	if v, found := strings.CutPrefix(name, "nodejs"); found {
		if v, found = strings.CutSuffix(v, ".x"); found && digits(v) {
			return Node, v, true
		}
	}
	return "", "", false
}

func digits(s string) bool {
	if s == "" || len(s) > 3 {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Candidates returns the programs tried, in order, for a kind and version:
// "python3.12" then "python3" for python3.12; "node" then "nodejs" for
// Node.js (one node serves every nodejsNN.x).
func Candidates(kind, version string) []string {
	switch kind {
	case Python:
		if version != "" {
			return []string{"python" + version, "python3"}
		}
		return []string{"python3", "python"}
	case Node:
		return []string{"node", "nodejs"}
	case Java:
		return []string{"java"}
	}
	return nil
}

// Interpreter finds the program that runs kind's handlers: override when
// set (a name looked up in PATH, or a path), else the first of Candidates
// found in PATH (a version-named one only if `--version` runs). A script
// in front of the interpreter (a version manager's shim, as pyenv's) is
// asked for the interpreter it runs, and that is returned: the shim's own
// start would be paid again by every cold start. The error names what was
// looked for.
func Interpreter(kind, version, override string) (string, error) {
	if override != "" {
		p, err := exec.LookPath(override)
		if err != nil {
			return "", fmt.Errorf("interpreter %s: %w", override, err)
		}
		return behindShim(kind, p), nil
	}
	cs := Candidates(kind, version)
	for i, c := range cs {
		p, err := exec.LookPath(c)
		if err != nil {
			continue
		}
		// A version-named program may be a shim that only knows it is not
		// installed (pyenv's): try it before settling on it.
		if i < len(cs)-1 && !runs(p) {
			continue
		}
		return behindShim(kind, p), nil
	}
	return "", fmt.Errorf("no %s in PATH (set interpreter: to the program)", strings.Join(cs, " or "))
}

// behindShim returns the interpreter a script at prog runs (its
// sys.executable, process.execPath), or prog itself when prog is not a
// script or does not answer. A real interpreter (or a virtual
// environment's link to one) is returned as it is, not run.
func behindShim(kind, prog string) string {
	f, err := os.Open(prog)
	if err != nil {
		return prog
	}
	var head [2]byte
	_, err = io.ReadFull(f, head[:])
	f.Close()
	if err != nil || string(head[:]) != "#!" {
		return prog
	}
	var args []string
	switch kind {
	case Python:
		args = []string{"-c", "import sys; print(sys.executable)"}
	case Node:
		args = []string{"-p", "process.execPath"}
	default:
		return prog
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, prog, args...).Output()
	real := strings.TrimSpace(string(out))
	if err != nil || !filepath.IsAbs(real) {
		return prog
	}
	if st, err := os.Stat(real); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		return prog
	}
	return real
}

func runs(prog string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, prog, "--version").Run() == nil
}

// CheckHandlerOf checks a handler's spelling for a runtime of kind:
// CheckJavaHandler's for Java, CheckHandler's for the others.
func CheckHandlerOf(kind, handler string) error {
	if kind == Java {
		return CheckJavaHandler(handler)
	}
	return CheckHandler(handler)
}

// CheckJavaHandler checks a Java handler's spelling, as Lambda's Java
// runtime reads it: pkg.Class::method, or pkg.Class (its handleRequest
// method), where the class is a binary name (pkg.Outer$Inner for a nested
// class).
func CheckJavaHandler(handler string) error {
	class, method, hasMethod := strings.Cut(handler, "::")
	switch {
	case handler == "":
		return errors.New("must not be empty")
	case !javaName(class, true) || hasMethod && !javaName(method, false):
		return fmt.Errorf("%q is not pkg.Class::method or pkg.Class (as example.Hello::handleRequest)", handler)
	}
	return nil
}

// javaName reports whether s is a Java identifier, or with dotted set,
// identifiers joined by dots.
func javaName(s string, dotted bool) bool {
	if s == "" {
		return false
	}
	start := true
	for _, c := range s {
		switch {
		case c == '.' && dotted && !start:
			start = true
			continue
		case c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c > 0x7f && c != 0xfffd:
		case c >= '0' && c <= '9' && !start:
		default:
			return false
		}
		start = false
	}
	return !start
}

// JavaClassFile is the class file a Java handler's class lives in, as a
// path inside its code: example/Hello.class for example.Hello::handle.
func JavaClassFile(handler string) string {
	class, _, _ := strings.Cut(handler, "::")
	return strings.ReplaceAll(class, ".", "/") + ".class"
}

// CheckHandler checks a handler's spelling, FILE.FUNCTION (FILE may hold
// slashes, as src/app.handler), without looking at any file.
func CheckHandler(handler string) error {
	slash := strings.LastIndexByte(handler, '/')
	base := handler[slash+1:]
	dot := strings.IndexByte(base, '.')
	switch {
	case handler == "":
		return errors.New("must not be empty")
	case dot <= 0 || dot == len(base)-1:
		return fmt.Errorf("%q is not FILE.FUNCTION (as lambda_function.lambda_handler or src/index.handler)", handler)
	case strings.HasPrefix(handler, "/"):
		return fmt.Errorf("%q: FILE is relative to code:, not absolute", handler)
	case strings.Contains("/"+handler[:slash+1], "/../"):
		return fmt.Errorf("%q: FILE must stay inside the code folder", handler)
	}
	return nil
}

// HandlerFile returns the file a handler lives in, under code: FILE.py (or
// FILE/__init__.py) for Python, FILE.js, FILE.mjs or FILE.cjs for Node.js,
// as the runtimes look for them; for Java, the class file in the code
// folder or in one of its lib/*.jar, or in the code jar (a jar's entry
// as JAR!/ENTRY). The error names the files looked for.
func HandlerFile(kind, code, handler string) (string, error) {
	if kind == Java {
		return javaHandlerFile(code, handler)
	}
	if err := CheckHandler(handler); err != nil {
		return "", err
	}
	slash := strings.LastIndexByte(handler, '/')
	var module string
	switch kind {
	case Python:
		module = handler[:strings.LastIndexByte(handler, '.')]
	default:
		module = handler[:slash+1+strings.IndexByte(handler[slash+1:], '.')]
	}
	var tried []string
	try := func(name string) bool {
		p := filepath.Join(code, filepath.FromSlash(name))
		tried = append(tried, p)
		st, err := os.Stat(p)
		return err == nil && !st.IsDir()
	}
	switch kind {
	case Python:
		for _, n := range []string{module + ".py", module + "/__init__.py"} {
			if try(n) {
				return tried[len(tried)-1], nil
			}
		}
	case Node:
		for _, n := range []string{module + ".js", module + ".mjs", module + ".cjs"} {
			if try(n) {
				return tried[len(tried)-1], nil
			}
		}
	default:
		return "", fmt.Errorf("unknown runtime %q", kind)
	}
	return "", fmt.Errorf("no %s (Runtime.ImportModuleError at start)", strings.Join(tried, " or "))
}

// Check looks at a handler as far as can be done without running the
// function's code: its file exists under code, and it parses — for Python
// also that its module defines the function at top level (by its syntax
// tree), for Node.js that the file passes node --check; for Java that its
// class file is there (its method is looked up when the runtime starts).
// interpreter is the program Interpreter found. The error reads as
// Lambda's init error would.
func Check(ctx context.Context, kind, interpreter, code, handler string) error {
	file, err := HandlerFile(kind, code, handler)
	if err != nil || kind == Java {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var cmd *exec.Cmd
	switch kind {
	case Python:
		// The client reads itself from stdin: nothing is written anywhere.
		cmd = exec.CommandContext(ctx, interpreter, "-B", "-", "--check", handler)
		cmd.Stdin = bytes.NewReader(pythonClient)
	case Node:
		cmd = exec.CommandContext(ctx, interpreter, "--check", file)
	}
	cmd.Dir = code
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	msg := strings.TrimSpace(string(out))
	if typ, text, ok := strings.Cut(msg, "\t"); ok && kind == Python && !strings.Contains(typ, " ") {
		return fmt.Errorf("%s: %s", typ, text)
	}
	if msg == "" {
		msg = err.Error()
	}
	if kind == Node {
		return fmt.Errorf("Runtime.UserCodeSyntaxError: %s", clip(msg))
	}
	return fmt.Errorf("cannot check the handler: %s", clip(msg))
}

func clip(s string) string {
	s = strings.ReplaceAll(s, "\n", " | ")
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}

// Clients is a private folder holding the runtime interface clients,
// written out of the binary. Remove it when the runtimes it serves have
// stopped.
type Clients struct {
	dir string

	javaOnce sync.Once
	javaErr  error
}

// Install writes the clients into a new folder only this user can read.
func Install() (*Clients, error) {
	dir, err := os.MkdirTemp("", "sluice-runtimes-")
	if err != nil {
		return nil, fmt.Errorf("cannot write the runtime clients: %w", err)
	}
	for name, b := range map[string][]byte{pythonFile: pythonClient, nodeFile: nodeClient, javaFile: javaClient} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("cannot write the runtime clients: %w", err)
		}
	}
	return &Clients{dir: dir}, nil
}

// Dir returns the folder.
func (c *Clients) Dir() string { return c.dir }

// Command returns the program and arguments of a runtime of kind run by
// interpreter: the Lambda pool's Command. For Java use JavaCommand.
func (c *Clients) Command(kind, interpreter string) []string {
	switch kind {
	case Python:
		// -B: no __pycache__ written into the function's code folder.
		return []string{interpreter, "-B", filepath.Join(c.dir, pythonFile)}
	case Node:
		return []string{interpreter, filepath.Join(c.dir, nodeFile)}
	}
	return nil
}

// Close removes the folder.
func (c *Clients) Close() error { return os.RemoveAll(c.dir) }
