package config

import (
	"errors"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse: no input may panic, and the
// result is either a File or a sorted, positioned *Errors, the same on
// every run.
func FuzzParse(f *testing.F) {
	f.Add([]byte(specExample))
	f.Add([]byte("server: {listen: \":8080\"}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lookup := env(map[string]string{"A": "1", "B": "x:1"})
		file, err := ParseEnv("f.yaml", data, lookup)
		if err == nil {
			if file == nil {
				t.Fatal("neither a File nor an error")
			}
			for _, tr := range file.Triggers {
				if file.Function(tr.Function) == nil {
					t.Fatalf("trigger names a missing function %q", tr.Function)
				}
			}
			return
		}
		var errs *Errors
		if !errors.As(err, &errs) || len(errs.List) == 0 {
			t.Fatalf("error %T without problems: %v", err, err)
		}
		for i, e := range errs.List {
			if e.Pos.Line < 1 || e.Pos.Col < 1 || e.Msg == "" || e.File != "f.yaml" {
				t.Fatalf("bad problem %#v", e)
			}
			if i > 0 {
				p := errs.List[i-1].Pos
				if p.Line > e.Pos.Line || p.Line == e.Pos.Line && p.Col > e.Pos.Col {
					t.Fatalf("problems out of order: %v", err)
				}
			}
		}
		if _, err2 := ParseEnv("f.yaml", data, lookup); err2 == nil || err2.Error() != err.Error() {
			t.Fatalf("second run differs:\n%v\n---\n%v", err, err2)
		}
	})
}
