package runtimes

import (
	"archive/zip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// IsJar reports whether a Java function's code is a jar (a file named
// .jar) rather than a folder of classes.
func IsJar(code string) bool { return strings.HasSuffix(strings.ToLower(code), ".jar") }

// javaHandlerFile finds the handler's class file: in the code jar, or in
// the code folder, then in the folder's lib/*.jar (Lambda's zip layout).
func javaHandlerFile(code, handler string) (string, error) {
	if err := CheckJavaHandler(handler); err != nil {
		return "", err
	}
	entry := JavaClassFile(handler)
	class, _, _ := strings.Cut(handler, "::")
	var tried []string
	if IsJar(code) {
		tried = append(tried, code)
		if ok, err := jarHas(code, entry); err != nil {
			return "", err
		} else if ok {
			return code + "!/" + entry, nil
		}
	} else {
		p := filepath.Join(code, filepath.FromSlash(entry))
		tried = append(tried, p)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
		jars, _ := filepath.Glob(filepath.Join(code, "lib", "*.jar"))
		sort.Strings(jars)
		for _, j := range jars {
			tried = append(tried, j)
			if ok, _ := jarHas(j, entry); ok {
				return j + "!/" + entry, nil
			}
		}
	}
	return "", fmt.Errorf("java.lang.ClassNotFoundException: Class not found: %s (looked in %s)", class, strings.Join(tried, ", "))
}

func jarHas(jar, entry string) (bool, error) {
	z, err := zip.OpenReader(jar)
	if err != nil {
		return false, fmt.Errorf("cannot read %s as a jar: %w", jar, err)
	}
	defer z.Close()
	for _, f := range z.File {
		if f.Name == entry {
			return true, nil
		}
	}
	return false, nil
}

// Javac finds the JDK compiler that builds the Java client for the java
// program: beside it (the same JDK, through its links), else in PATH.
func Javac(java string) (string, error) {
	if real, err := filepath.EvalSymlinks(java); err == nil {
		p := filepath.Join(filepath.Dir(real), "javac")
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	if p, err := exec.LookPath("javac"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("no javac beside %s or in PATH: runtime java compiles its runtime client once at start with the JDK's javac (install a JDK, not only a JRE)", java)
}

// BuildJava compiles the Java client into the folder with the javac of the
// JDK that java belongs to, once; later calls return the first result. It
// takes about a second.
func (c *Clients) BuildJava(ctx context.Context, java string) error {
	c.javaOnce.Do(func() {
		javac, err := Javac(java)
		if err != nil {
			c.javaErr = err
			return
		}
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, javac, "-nowarn", "-encoding", "UTF-8", "-d", filepath.Join(c.dir, "java"),
			filepath.Join(c.dir, javaFile)).CombinedOutput()
		if err != nil {
			c.javaErr = fmt.Errorf("cannot compile the Java runtime client with %s: %v: %s", javac, err, clip(strings.TrimSpace(string(out))))
		}
	})
	return c.javaErr
}

// JavaCommand returns the command of a Java runtime (after BuildJava): the
// JVM, tuned for short starts as Lambda's Java runtime is (serial GC,
// tiered compilation stopped at C1, no perf data file), its heap at most
// five eighths of memory (bytes; 0 leaves the JVM's default), the rest for
// its own structures, thread stacks and code, and starting small (the
// JVM's default initial heap is a sixty-fourth of the machine's memory,
// which alone can pass a function's limit), running the client on code (a
// folder or a jar).
func (c *Clients) JavaCommand(java, code string, memory int64) []string {
	cmd := []string{java, "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:-UsePerfData", "-Xshare:auto"}
	if memory > 0 {
		heap := max(memory/8*5, 16<<20)
		cmd = append(cmd, fmt.Sprintf("-Xms%dk", min(heap, 8<<20)>>10), fmt.Sprintf("-Xmx%dk", heap>>10))
	}
	return append(cmd, "-cp", filepath.Join(c.dir, "java"), javaClass, code)
}
