package subproc_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/subproc"
)

// FuzzParseStatus checks ParseStatus against a plain strings-based reading
// of the same text. Seeds are in testdata/fuzz/FuzzParseStatus.
func FuzzParseStatus(f *testing.F) {
	f.Add([]byte("VmPeak:\t  100 kB\nVmHWM:\t    2048 kB\nVmRSS:\t 1 kB\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rss, peak, ok := subproc.ParseStatus(b)
		wantRSS, wantPeak, wantOK := referenceStatus(string(b))
		if rss != wantRSS || peak != wantPeak || ok != wantOK {
			t.Fatalf("ParseStatus(%q) = %d, %d, %v; the reference reads %d, %d, %v", b, rss, peak, ok, wantRSS, wantPeak, wantOK)
		}
		if rss < 0 || peak < 0 || rss%1024 != 0 || peak%1024 != 0 {
			t.Fatalf("ParseStatus(%q) = %d, %d: not whole non-negative KiB", b, rss, peak)
		}
	})
}

// referenceStatus is the obvious reading of VmRSS and VmHWM: "KEY:", blanks,
// decimal digits, " kB"; values over 2^40 kB are refused, as no process has
// them; the last valid line of each key wins.
func referenceStatus(s string) (rss, peak int64, ok bool) {
	for _, line := range strings.Split(s, "\n") {
		key, val, found := strings.Cut(line, ":")
		if !found || key != "VmRSS" && key != "VmHWM" {
			continue
		}
		val = strings.TrimLeft(val, " \t")
		num, isKB := strings.CutSuffix(val, " kB")
		if !isKB || num == "" || strings.Trim(num, "0123456789") != "" {
			continue
		}
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil || v > 1<<40 {
			continue
		}
		if key == "VmRSS" {
			rss = v << 10
		} else {
			peak, ok = v<<10, true
		}
	}
	return rss, peak, ok
}
