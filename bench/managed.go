package bench

import (
	"context"
	"fmt"
)

// managedConfigYAML runs the python-hello and node-hello examples twice
// each: on the managed runtimes (runtime: python and nodejs, Lambda pools
// over Sluice's runtime clients) and, as their ceilings, the same handler
// code behind the process protocol (bench/testdata/lambda-process.*). Both
// sides get the same instances and batch policy, so the ratio is what the
// Runtime API costs against JSON lines.
const managedConfigYAML = `
server:
  listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
  drain_timeout: 10s
log: {level: warn, format: json}
x-fn: &fn {instances: 2, queue: 4096, batch: {max_items: 1}}
functions:
  py-managed:   {<<: *fn, runtime: python, handler: lambda_function.lambda_handler, code: plugins/examples/python-hello}
  py-process:   {<<: *fn, runtime: process, command: [python3, bench/testdata/lambda-process.py, plugins/examples/python-hello, lambda_function.lambda_handler]}
  node-managed: {<<: *fn, runtime: nodejs, handler: index.handler, code: plugins/examples/node-hello}
  node-process: {<<: *fn, runtime: process, command: [node, bench/testdata/lambda-process.mjs, plugins/examples/node-hello, index.handler]}
triggers:
  - http: {method: POST, path: /py-managed, function: py-managed}
  - http: {method: POST, path: /py-process, function: py-process}
  - http: {method: POST, path: /node-managed, function: node-managed}
  - http: {method: POST, path: /node-process, function: node-process}
`

// runManagedScenarios measures HTTP → the Python and Node.js examples on
// their managed runtimes as a ratio to HTTP → the same handler as a
// runtime: process function, measured before and after in the same
// gateway (the better of the two is the ceiling).
func runManagedScenarios(ctx context.Context, cfg *SuiteConfig, res *SuiteResult) error {
	type pair struct{ lang, name, path string }
	pairs := []pair{
		{"python", "http → python-hello (runtime: python, 2 instances)", "/py"},
		{"node", "http → node-hello (runtime: nodejs, 2 instances)", "/node"},
	}
	var want []pair
	for _, p := range pairs {
		if cfg.wants(p.name) || cfg.wants("managed") {
			want = append(want, p)
		}
	}
	if len(want) == 0 {
		return nil
	}
	gw, err := startGateway(ctx, cfg, managedConfigYAML)
	if err != nil {
		return fmt.Errorf("managed runtimes gateway: %w", err)
	}
	defer gw.Stop()
	base := "http://" + gw.Addr("http")
	for _, p := range want {
		ceilName := fmt.Sprintf("http → %s-hello as runtime: process (2 instances)", p.path[1:])
		first, err := cfg.http(ctx, ceilName, base+p.path+"-process")
		if err != nil {
			return err
		}
		out, err := cfg.http(ctx, p.name, base+p.path+"-managed")
		if err != nil {
			return err
		}
		last, err := cfg.http(ctx, ceilName, base+p.path+"-process")
		if err != nil {
			return err
		}
		best := first
		if last.Throughput > best.Throughput {
			best = last
		}
		cs := &Scenario{Name: ceilName, Result: best, Notes: []string{
			fmt.Sprintf("first %.0f/s, last %.0f/s; the ratio uses the better", first.Throughput, last.Throughput)}}
		s := &Scenario{Name: p.name, Result: out, Ceiling: ceilName, Ratio: out.Throughput / best.Throughput, Target: "≥ 0.70× the process function"}
		met := s.Ratio >= 0.70 && out.ErrorCount() == 0
		s.Met = &met
		if n := out.ErrorCount(); n > 0 {
			s.Notes = append(s.Notes, fmt.Sprintf("%d failed requests", n))
		}
		if n := best.ErrorCount(); n > 0 {
			cs.Notes = append(cs.Notes, fmt.Sprintf("%d failed requests", n))
		}
		res.Scenarios = append(res.Scenarios, cs, s)
	}
	return nil
}
