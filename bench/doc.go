// Package bench is the load generator behind `sluice bench http` and
// `sluice bench kafka`, the ceiling servers, and the suite `make bench`
// runs: every figure is printed beside a ceiling measured in the same run
// (a bare fasthttp handler, raw franz-go consumption), as a ratio, because
// absolute numbers from a shared machine mean little.
//
// Nothing imports bench but cmd/sluice.
package bench
