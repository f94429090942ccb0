package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluicehq/sluice/bench"
	"github.com/sluicehq/sluice/streams"
)

// The reload tests drive `sluice reload` against a gateway the test
// started. After a reload the serving process is one the test did not
// start: its pid is in the pidfile, its log lines on the same stderr pipe.

// reloadYAML is a gateway with a pidfile in dir, on ports the kernel picks
// (a reload keeps them: the new process inherits the sockets).
func reloadYAML(dir, drain, rest string) string {
	return fmt.Sprintf(`
server:
  listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
  drain_timeout: %s
  pidfile: %s/sluice.pid
log: {level: warn}
%s`, drain, dir, rest)
}

// reloadable is a gateway under a reload test.
type reloadable struct {
	*proc
	cfg, pidfile string
}

func startReloadable(t *testing.T, dir, yaml string) *reloadable {
	t.Helper()
	return startReloadableBin(t, sluiceBin(t), dir, yaml)
}

// startReloadableBin is startReloadable with the sluice binary at bin,
// which a reload runs again.
func startReloadableBin(t *testing.T, bin, dir, yaml string) *reloadable {
	t.Helper()
	cfg := writeConfig(t, dir, yaml)
	g := &reloadable{proc: startSluiceBin(t, bin, cfg), cfg: cfg, pidfile: filepath.Join(dir, "sluice.pid")}
	// Runs before the harness's own cleanup, which signals the process it
	// started, long replaced: stop the current generation.
	t.Cleanup(func() {
		if pid := g.pid(); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	})
	return g
}

// pid is the serving process's, from the pidfile; 0 when there is none.
func (g *reloadable) pid() int {
	b, err := os.ReadFile(g.pidfile)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

func (g *reloadable) status() *reloadStatus { return readReloadStatus(reloadStatusPath(g.pidfile)) }

// reload runs `sluice reload --pidfile` and returns its exit code and
// output.
func (g *reloadable) reload(t *testing.T) (int, string, string) {
	t.Helper()
	return runSluice(t, nil, "reload", "--pidfile", g.pidfile)
}

// reloadOK reloads and waits until the old process has exited, so that
// the next reload is not refused.
func (g *reloadable) reloadOK(t *testing.T) {
	t.Helper()
	old := g.pid()
	code, out, errOut := g.reload(t)
	if code != 0 {
		t.Fatalf("sluice reload: exit %d: %s%s", code, out, errOut)
	}
	if !strings.HasPrefix(out, "reloaded: generation ") {
		t.Errorf("sluice reload printed %q", out)
	}
	waitFor(t, 30*time.Second, "the old process to exit", func() bool {
		st := g.status()
		return st != nil && st.State == reloadDone && st.PID == old && st.NewPID == g.pid()
	})
}

// tryDo is do for a goroutine: it returns the error instead of failing.
func tryDo(method, url, body string) (response, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return response{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return response{code: resp.StatusCode, header: resp.Header, body: b}, err
}

// TestE2EReloadUnderLoad reloads five times under open-loop load from
// fasthttp's client, which retries nothing: not one request may fail.
func TestE2EReloadUnderLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	g := startReloadable(t, dir, reloadYAML(dir, "5s", `
functions:
  work: {runtime: go, handler: sleep, timeout: 5s}
triggers:
  - http: {method: POST, path: /work, function: work}
`))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type outcome struct {
		res *bench.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		// 20ms a request: some are always in flight when a process hands over.
		res, err := bench.RunHTTP(ctx, bench.HTTPConfig{
			URL: g.http + "/work", Body: []byte(`{"ms":20}`), Headers: []string{"Content-Type: application/json"},
			Rate: 200, Duration: 5 * time.Minute, Timeout: 10 * time.Second,
		})
		done <- outcome{res, err}
	}()
	served := func() float64 {
		return g.metric(`sluice_invocations_total{function="work",trigger="http",outcome="success"}`)
	}
	waitFor(t, 10*time.Second, "load to flow", func() bool { return served() > 20 })
	const reloads = 5
	for range reloads {
		g.reloadOK(t)
		// The counter is the new process's own: it served this many.
		waitFor(t, 10*time.Second, "the new generation to serve the load", func() bool { return served() > 20 })
	}
	cancel()
	o := <-done
	if o.err != nil {
		t.Fatal(o.err)
	}
	t.Logf("%d requests across %d reloads: p50 %.1fms p99 %.1fms max %.1fms, errors %v",
		o.res.Requests, reloads, o.res.Latency.P50, o.res.Latency.P99, o.res.Latency.Max, o.res.Errors)
	if o.res.ErrorCount() != 0 || o.res.OK == 0 {
		t.Errorf("%d ok, failed requests by kind: %v", o.res.OK, o.res.Errors)
	}
	if n := g.metric(`sluice_reloads_total{result="ok"}`); n != reloads {
		t.Errorf("sluice_reloads_total{result=\"ok\"} = %v on the last generation, want %d", n, reloads)
	}
	for gen := 1; gen <= reloads+1; gen++ {
		if len(g.findLog("ready", map[string]any{"generation": gen})) != 1 {
			t.Errorf("generation %d: no ready line", gen)
		}
	}
	for gen := 1; gen <= reloads; gen++ {
		for _, msg := range []string{"reload: new process ready", "reload: old process drained, exiting"} {
			if len(g.findLog(msg, map[string]any{"generation": gen})) != 1 {
				t.Errorf("generation %d: no %q line", gen, msg)
			}
		}
		if len(g.findLog("reload: previous process exited", map[string]any{"generation": gen + 1})) != 1 {
			t.Errorf("generation %d: no line for its predecessor's exit", gen+1)
		}
	}
	for _, l := range strings.Split(g.log(), "\n") {
		if strings.HasPrefix(l, "{") && !strings.Contains(l, `"generation":`) {
			t.Errorf("a log line without generation: %s", l)
		}
	}
}

// TestE2EReloadConfig: a broken config leaves the old process serving and
// `sluice reload` exits 2 with the file's problems; a good one changes a
// function's behaviour; a request still running at drain_timeout is
// answered 503, not cut off.
func TestE2EReloadConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	v1 := reloadYAML(dir, "300ms", `
functions:
  greet: {runtime: go, handler: fail}
  slow:  {runtime: go, handler: sleep, timeout: 30s}
triggers:
  - http: {method: POST, path: /greet, function: greet}
  - http: {method: POST, path: /slow, function: slow}
`)
	g := startReloadable(t, dir, v1)
	if r := do(t, "POST", g.http+"/greet", "application/json", []byte(`{"error":"v1"}`)); r.code != 502 {
		t.Fatalf("v1: status %d: %s", r.code, r.body)
	}

	pid := g.pid()
	writeConfig(t, dir, strings.Replace(v1, "handler: fail", "hander: echo", 1))
	code, _, errOut := g.reload(t)
	if code != 2 || !regexp.MustCompile(regexp.QuoteMeta(g.cfg)+`:\d+:\d+: unknown key "hander"`).MatchString(errOut) {
		t.Errorf("broken config: exit %d: %s", code, errOut)
	}
	if g.pid() != pid {
		t.Errorf("the pidfile moved to %d after a failed reload", g.pid())
	}
	if r := do(t, "POST", g.http+"/greet", "application/json", []byte(`{"error":"v1"}`)); r.code != 502 {
		t.Errorf("after the failed reload: status %d: %s", r.code, r.body)
	}
	if n := g.metric(`sluice_reloads_total{result="failed"}`); n != 1 {
		t.Errorf(`sluice_reloads_total{result="failed"} = %v`, n)
	}

	slow := make(chan response, 1)
	go func() {
		r, err := tryDo("POST", g.http+"/slow", `{"ms":20000}`)
		if err != nil {
			t.Errorf("the request in flight at drain_timeout was cut off: %v", err)
		}
		slow <- r
	}()
	waitFor(t, 10*time.Second, "the slow request in flight", func() bool {
		return g.metric(`sluice_concurrent_executions{function="slow"}`) > 0
	})
	writeConfig(t, dir, strings.Replace(v1, "handler: fail", "handler: echo", 1))
	g.reloadOK(t)
	if r := <-slow; r.code != 503 || r.header.Get("X-Sluice-Request-Id") == "" {
		t.Errorf("in flight at drain_timeout: status %d: %s", r.code, r.body)
	}
	if r := do(t, "POST", g.http+"/greet", "application/json", []byte(`{"error":"v1"}`)); r.code != 200 || !strings.Contains(string(r.body), `"type":"sluice.http.request"`) {
		t.Errorf("after the reload to echo: status %d: %s", r.code, r.body)
	}
}

// TestE2EReloadBrokenBinary: a binary on disk that fails to start fails
// the reload, with the reason, and the old process serves on; the good
// binary back, the reload succeeds.
func TestE2EReloadBrokenBinary(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "sluice")
	good, err := os.ReadFile(sluiceBin(t))
	if err != nil {
		t.Fatal(err)
	}
	install := func(b []byte) { // as a deploy does: a new file, renamed over the old
		t.Helper()
		if err := os.WriteFile(bin+".new", b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(bin+".new", bin); err != nil {
			t.Fatal(err)
		}
	}
	install(good)
	g := startReloadableBin(t, bin, dir, reloadYAML(dir, "5s", `
functions:
  echo: {runtime: go, handler: echo}
triggers:
  - http: {method: POST, path: /echo, function: echo}
`))
	pid := g.pid()
	install([]byte("#!/bin/sh\necho 'cannot start: broken build' >&2\nexit 3\n"))
	code, _, errOut := g.reload(t)
	if code != 1 || !strings.Contains(errOut, "exit status 3") || !strings.Contains(errOut, "still serving") {
		t.Errorf("broken binary: exit %d: %s", code, errOut)
	}
	if !strings.Contains(g.log(), "cannot start: broken build") {
		t.Error("the broken binary's output is not in the gateway's log")
	}
	if r := do(t, "POST", g.http+"/echo", "application/json", []byte(`{}`)); r.code != 200 || g.pid() != pid {
		t.Errorf("after the failed reload: status %d, pid %d (was %d)", r.code, g.pid(), pid)
	}
	install(good)
	g.reloadOK(t)
	if r := do(t, "POST", g.http+"/echo", "application/json", []byte(`{}`)); r.code != 200 || g.pid() == pid {
		t.Errorf("after the reload: status %d, pid %d", r.code, g.pid())
	}
}

// buildReloadPlugin builds version v of the test plugin to so, as the
// binary under test was built, and moves it into place as a deploy would.
func buildReloadPlugin(t *testing.T, v, so string) {
	t.Helper()
	tmp := so + ".new"
	args := []string{"build", "-buildmode=plugin", "-o", tmp}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/sluice/testdata/reloadplugin/"+v)...)
	cmd.Dir = repo0(t)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if err := os.Rename(tmp, so); err != nil {
		t.Fatal(err)
	}
}

// TestE2EReloadPlugin: the new process loads the plugin on disk now.
func TestE2EReloadPlugin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	so := filepath.Join(dir, "version.so")
	buildReloadPlugin(t, "v1", so)
	g := startReloadable(t, dir, reloadYAML(dir, "5s", fmt.Sprintf(`
functions:
  version: {runtime: plugin, path: %s}
triggers:
  - http: {method: POST, path: /version, function: version}
`, so)))
	if r := do(t, "POST", g.http+"/version", "application/json", []byte(`{}`)); string(r.body) != `{"version":"v1"}` {
		t.Fatalf("before: %d %s", r.code, r.body)
	}
	buildReloadPlugin(t, "v2", so)
	g.reloadOK(t)
	if r := do(t, "POST", g.http+"/version", "application/json", []byte(`{}`)); string(r.body) != `{"version":"v2"}` {
		t.Errorf("after the reload: %d %s", r.code, r.body)
	}
}

// produceLoop produces {"n":i} records to topic until stop closes, and
// returns how many it produced, all acknowledged.
func produceLoop(t *testing.T, broker, topic string, stop <-chan struct{}) <-chan int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan int, 1)
	go func() {
		defer cl.Close()
		n := 0
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				out <- n
				return
			case <-tick.C:
			}
			rs := make([]*kgo.Record, 20)
			for i := range rs {
				rs[i] = &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, `{"n":%d}`, n+i)}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := cl.ProduceSync(ctx, rs...).FirstErr()
			cancel()
			if err != nil {
				t.Errorf("produce: %v", err)
				out <- n
				return
			}
			n += len(rs)
		}
	}()
	return out
}

// TestE2EReloadKafka produces continuously across ten reloads to a broker
// outside the gateway (in the test process, as a real cluster would be):
// every record reaches the sink, and the duplicates are at most what was in
// flight at the handovers.
func TestE2EReloadKafka(t *testing.T) {
	t.Parallel()
	broker, err := streams.StartEmbedded("127.0.0.1:0", 4, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	dir := t.TempDir()
	const maxItems, partitions = 50, 4
	g := startReloadable(t, dir, reloadYAML(dir, "10s", fmt.Sprintf(`
kafka: {brokers: ["%s"]}
functions:
  sink:
    runtime: go
    handler: sink
    env: {SINK_FILE: %[2]s/sink.jsonl}
    batch: {max_items: %[3]d, max_wait: 5ms}
  tick: {runtime: go, handler: sink, env: {SINK_FILE: %[2]s/ticks.jsonl}}
triggers:
  - kafka: {topics: [events], group: e2e-reload, function: sink, start: earliest, format: raw}
  - schedule: {rate: 1s, function: tick, name: heartbeat}
`, broker.Addr(), dir, maxItems)))
	sink := filepath.Join(dir, "sink.jsonl")
	stop := make(chan struct{})
	produced := produceLoop(t, broker.Addr(), "events", stop)
	waitFor(t, 30*time.Second, "records in the sink", func() bool { return countLines(sink) > 100 })
	const reloads = 10
	for range reloads {
		g.reloadOK(t)
		n := countLines(sink)
		waitFor(t, 30*time.Second, "the new generation to consume", func() bool { return countLines(sink) > n+40 })
	}
	close(stop)
	n := <-produced
	waitFor(t, 60*time.Second, fmt.Sprintf("all %d records in the sink", n), func() bool {
		_, ns := sinkRecords(t, sink, "events")
		return len(ns) >= n
	})
	offsets, ns := sinkRecords(t, sink, "events")
	dups := 0
	for _, c := range offsets {
		dups += c - 1
	}
	t.Logf("%d records produced across %d reloads, %d duplicates", n, reloads, dups)
	if len(ns) != n || len(offsets) != n {
		t.Errorf("%d distinct payloads and %d distinct offsets for %d records", len(ns), len(offsets), n)
	}
	// A handover redelivers at most what the old process had fetched but
	// not finished: a batch per partition.
	if limit := reloads * maxItems * partitions; dups > limit {
		t.Errorf("%d duplicates, more than the %d that can be in flight at %d handovers", dups, limit, reloads)
	}

	// The schedule's owner changes at every reload: still once per tick.
	ticks := map[string]int{}
	var times []time.Time
	for _, ev := range sinkEvents(t, filepath.Join(dir, "ticks.jsonl")) {
		if ticks[ev.ID]++; ticks[ev.ID] == 1 {
			times = append(times, ev.Time)
		}
	}
	for id, n := range ticks {
		if n != 1 {
			t.Errorf("tick %s fired %d times", id, n)
		}
	}
	gaps := 0
	for i := 1; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); d != time.Second {
			gaps++
			t.Logf("ticks %s and %s are %s apart", times[i-1].Format(time.TimeOnly), times[i].Format(time.TimeOnly), d)
		}
	}
	t.Logf("%d ticks across the reloads, each fired once; %d gaps", len(times), gaps)
	if len(times) < 3 {
		t.Errorf("only %d ticks fired across %d reloads", len(times), reloads)
	}
}

// TestE2EReloadEmbeddedBroker: with kafka.embedded the new process starts
// its broker, empty, once the old one has exited; Kafka triggers and async
// topics work again after the reload, and it neither hangs nor fails.
func TestE2EReloadEmbeddedBroker(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr := freeAddr(t)
	g := startReloadable(t, dir, reloadYAML(dir, "5s", fmt.Sprintf(`
kafka: {embedded: true, embedded_partitions: 2, brokers: ["%s"]}
functions:
  sink:
    runtime: go
    handler: sink
    env: {SINK_FILE: %s/sink.jsonl}
triggers:
  - kafka: {topics: [events], group: e2e-embedded, function: sink, start: earliest, format: raw}
  - http:  {method: POST, path: /jobs, function: sink, mode: async, async_topic: jobs}
`, addr, dir)))
	sink := filepath.Join(dir, "sink.jsonl")
	var next atomic.Int64
	produce := func() {
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.AllowAutoTopicCreation())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "events", Value: fmt.Appendf(nil, `{"n":%d}`, next.Add(1))}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	sinkHas := func(want int) func() bool {
		return func() bool {
			_, ns := sinkRecords(t, sink, "events")
			return len(ns) == want && countLines(sink) == 2*want
		}
	}
	produce()
	if r := do(t, "POST", g.http+"/jobs", "application/json", []byte(`{"job":1}`)); r.code != 202 {
		t.Fatalf("async: status %d: %s", r.code, r.body)
	}
	waitFor(t, 30*time.Second, "a record and an async job in the sink", sinkHas(1))

	g.reloadOK(t)
	waitFor(t, 30*time.Second, "the broker and the triggers back", func() bool {
		return len(g.findLog("reload: embedded broker and Kafka triggers started", map[string]any{"generation": 2})) == 1
	})
	produce()
	if r := do(t, "POST", g.http+"/jobs", "application/json", []byte(`{"job":2}`)); r.code != 202 {
		t.Fatalf("async after the reload: status %d: %s", r.code, r.body)
	}
	waitFor(t, 30*time.Second, "the second record and job in the sink", sinkHas(2))
}

// TestE2EReloadRefusedAndSIGTERM starts a reload whose new process is slow
// to start: a second reload, by `sluice reload` or by SIGHUP, is refused;
// then SIGTERM to the old process stops the new one too, the request in
// flight is answered and `sluice reload` reports the abort.
func TestE2EReloadRefusedAndSIGTERM(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	v1 := reloadYAML(dir, "10s", `
functions:
  slow: {runtime: go, handler: sleep, timeout: 10s}
triggers:
  - http: {method: POST, path: /slow, function: slow}
`)
	g := startReloadable(t, dir, v1)
	pid := g.pid()
	// Its process does not answer for 30s: the new process stays starting.
	writeConfig(t, dir, strings.Replace(v1, "functions:\n", `functions:
  slowstart:
    runtime: process
    command: ["sh", "-c", "sleep 30; exec python3 plugins/examples/hello.py"]
`, 1))
	first := make(chan [3]string, 1)
	go func() {
		cmd := exec.Command(sluiceBin(t), "reload", "--pidfile", g.pidfile)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		first <- [3]string{fmt.Sprint(err), out.String(), errb.String()}
	}()
	waitFor(t, 10*time.Second, "the reload to start", func() bool {
		st := g.status()
		return st != nil && st.State == reloadStarting && st.PID == pid
	})
	code, _, errOut := g.reload(t)
	if code != 1 || !strings.Contains(errOut, "reload refused: a reload is already in progress") {
		t.Errorf("second reload: exit %d: %s", code, errOut)
	}
	_ = syscall.Kill(pid, syscall.SIGHUP)
	waitFor(t, 10*time.Second, "the SIGHUP refused", func() bool {
		return len(g.findLog("reload refused", map[string]any{"generation": 1})) == 1
	})
	if n := g.metric(`sluice_reloads_total{result="refused"}`); n != 1 {
		t.Errorf(`sluice_reloads_total{result="refused"} = %v`, n)
	}
	if rf := readReloadRefusal(reloadStatusPath(g.pidfile)); rf == nil || rf.PID != pid || rf.Count != 1 || rf.Reason != "a reload is already in progress" {
		t.Errorf("refusal file: %+v", rf)
	}

	inflight := make(chan response, 1)
	go func() {
		r, err := tryDo("POST", g.http+"/slow", `{"ms":1000}`)
		if err != nil {
			t.Errorf("request in flight at SIGTERM: %v", err)
		}
		inflight <- r
	}()
	waitFor(t, 10*time.Second, "a request in flight", func() bool {
		return g.metric(`sluice_concurrent_executions{function="slow"}`) > 0
	})
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if r := <-inflight; r.code != 200 {
		t.Errorf("request in flight at SIGTERM: status %d: %s", r.code, r.body)
	}
	select {
	case <-g.exited: // every process that wrote to the log has exited
	case <-time.After(30 * time.Second):
		t.Fatal("the gateway did not stop")
	}
	res := <-first
	if res[0] == "<nil>" || !strings.Contains(res[2], "reload aborted") || !strings.Contains(res[2], "terminated") {
		t.Errorf("the reload in progress at SIGTERM: %s: %s%s", res[0], res[1], res[2])
	}
	if st := g.status(); st == nil || st.State != reloadFailed || st.Aborted == "" {
		b, _ := json.Marshal(st)
		t.Errorf("status after the abort: %s", b)
	}
	if _, err := os.Stat(g.pidfile); !os.IsNotExist(err) {
		t.Errorf("the pidfile outlives the gateway: %v", err)
	}
}
