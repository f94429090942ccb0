package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// SoakConfig is one soak run: mixed HTTP and Kafka load on one gateway for
// Duration, while its process-function workers are killed and it is
// reloaded.
type SoakConfig struct {
	// Sluice is the sluice binary. Required.
	Sluice string
	// Dir is the repository root, where plugins/examples/hello.py is.
	// Required.
	Dir string
	// Duration of the load. Defaults to 5m.
	Duration time.Duration
	// HTTPRate is the open-loop rate of requests to the builtin echo
	// function; a quarter of it more go to hello.py, a process function.
	// Defaults to 400/s.
	HTTPRate int
	// KafkaRate is the rate of records produced to the topic a process sink
	// consumes. Defaults to 400/s.
	KafkaRate int
	// Reloads are spread evenly over Duration. Defaults to 10.
	Reloads int
	// CrashEvery is how often one process-function worker is killed
	// (SIGKILL), the sink's and hello.py's in turn. Defaults to 10s.
	CrashEvery time.Duration
	// Drain bounds the wait, after the load, for the sink to consume every
	// record produced. Defaults to 2m.
	Drain time.Duration
	// Out receives the report, Progress a line every ten seconds.
	Out, Progress io.Writer
}

func (c *SoakConfig) defaults() error {
	if c.Sluice == "" || c.Dir == "" {
		return errors.New("bench: soak needs the sluice binary and the repository root")
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return err
	}
	c.Dir = dir
	if c.Duration <= 0 {
		c.Duration = 5 * time.Minute
	}
	if c.HTTPRate <= 0 {
		c.HTTPRate = 400
	}
	if c.KafkaRate <= 0 {
		c.KafkaRate = 400
	}
	if c.Reloads < 0 {
		c.Reloads = 0
	} else if c.Reloads == 0 {
		c.Reloads = 10
	}
	if c.CrashEvery <= 0 {
		c.CrashEvery = 10 * time.Second
	}
	if c.Drain <= 0 {
		c.Drain = 2 * time.Minute
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	return nil
}

// SoakResult is what a soak run counted.
type SoakResult struct {
	// HTTP is each route's load result, by route ("echo", "hello-py").
	HTTP map[string]*Result
	// Produced is the records the broker acknowledged; ProduceErrors the
	// others by kind.
	Produced      int64
	ProduceErrors map[string]int64
	// Consumed is the distinct records the sink function received,
	// Redelivered how many more times it received some of them (at least
	// once: after a crash or a reload).
	Consumed, Redelivered int64
	// Lost is Produced − Consumed: must be 0.
	Lost int64
	// Reloads made and waited for; ReloadErrors those that failed.
	Reloads      int
	ReloadErrors []string
	ReadyMS      []float64
	// Crashes is the workers killed, by function.
	Crashes map[string]int
	// ReloadAt and CrashAt are when each reload and crash began, since the
	// start of the load.
	ReloadAt, CrashAt []time.Duration
	// PeakRSS is the highest peak resident memory (VmHWM) of any gateway
	// generation, in bytes.
	PeakRSS int64
}

// soakGatewayYAML: dir (config, pidfile, sink), broker, repository root.
const soakGatewayYAML = `
server:
  listen: "127.0.0.1:0"
  admin_listen: "127.0.0.1:0"
  drain_timeout: 20s
  pidfile: %[1]s/sluice.pid
kafka:
  brokers: ["%[2]s"]
log: {level: warn, format: json}
functions:
  echo: {runtime: go, handler: echo, concurrency: 256, queue: 4096}
  hello-py:
    runtime: process
    command: ["python3", "%[3]s/plugins/examples/hello.py"]
    instances: 2
  sink:
    runtime: process
    command: ["python3", "%[1]s/sink.py"]
    instances: 2
    env: {SOAK_SINK_DIR: "%[1]s/consumed"}
    retry: {attempts: 20, backoff: 50ms, max_backoff: 1s}
triggers:
  - http: {method: POST, path: /echo, function: echo}
  - http: {method: POST, path: /hello, function: hello-py}
  - kafka: {topics: [soak], group: soak, function: sink, start: earliest, format: raw}
`

// soakSinkPy is the sink: it appends the id of every event it gets
// ("<topic>-<partition>-<offset>", the same on a redelivery) to a file of
// its own, one write per batch before it answers, so that a record it
// answered for is on disk even if it is killed the next moment.
const soakSinkPy = `import json, os, sys
fd = os.open(os.path.join(os.environ["SOAK_SINK_DIR"], "ids.%d" % os.getpid()), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
for line in sys.stdin:
    if not line.strip():
        continue
    batch = json.loads(line)
    events = batch.get("events") or []
    os.write(fd, "".join(e["id"] + "\n" for e in events).encode())
    sys.stdout.write(json.dumps({"batch": batch["batch"], "results": [{"id": e["id"], "ok": True} for e in events]}) + "\n")
    sys.stdout.flush()
`

// RunSoak runs the soak and reports it to cfg.Out. It returns the result,
// and an error when the run could not be made, a reload failed or a record
// was lost.
func RunSoak(ctx context.Context, cfg SoakConfig) (*SoakResult, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "sluice-soak-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	sinkDir := filepath.Join(dir, "consumed")
	if err := os.Mkdir(sinkDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "sink.py"), []byte(soakSinkPy), 0o644); err != nil {
		return nil, err
	}

	// The broker runs in a process of its own, which is never reloaded: the
	// embedded broker of a reloaded gateway starts empty.
	suite := &SuiteConfig{Sluice: cfg.Sluice, Dir: cfg.Dir}
	broker, err := startGateway(ctx, suite, fmt.Sprintf(kafkaBrokerYAML, 4))
	if err != nil {
		return nil, fmt.Errorf("soak: broker: %w", err)
	}
	defer broker.Stop()
	brokerAddr := broker.LoggedAddr(brokerLogLine)
	if brokerAddr == "" {
		return nil, fmt.Errorf("soak: no broker address:\n%s", broker.Tail())
	}

	cfgFile := filepath.Join(dir, "sluice.yaml")
	pidfile := filepath.Join(dir, "sluice.pid")
	if err := os.WriteFile(cfgFile, fmt.Appendf(nil, soakGatewayYAML, dir, brokerAddr, cfg.Dir), 0o644); err != nil {
		return nil, err
	}
	gw, err := StartProc(ctx, cfg.Dir, cfg.Sluice, []string{"serve", "-c", cfgFile}, nil, true, "http", "admin")
	if err != nil {
		return nil, fmt.Errorf("soak: gateway: %w", err)
	}
	defer func() {
		// The serving process is the last generation, not the one started.
		if pid := readPID(pidfile); pid > 0 && pid != gw.PID() {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
		gw.Stop()
	}()
	base := "http://" + gw.Addr("http")
	res := &SoakResult{HTTP: map[string]*Result{}, Crashes: map[string]int{}}
	fmt.Fprintf(cfg.Out, "soak: %s; HTTP open loop %d/s to echo (runtime: go) and %d/s to hello.py (runtime: process, 2 instances); Kafka %d records/s to a process sink (2 instances) through a broker process of its own; %d reloads; a worker killed every %s\n",
		cfg.Duration, cfg.HTTPRate, max(cfg.HTTPRate/4, 1), cfg.KafkaRate, cfg.Reloads, cfg.CrashEvery)

	lctx, stopLoad := context.WithTimeout(ctx, cfg.Duration)
	defer stopLoad()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var loadErr error
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if loadErr == nil {
			loadErr = err
		}
	}
	for _, r := range []struct {
		name, path string
		body       []byte
		rate       int
	}{
		{"echo", "/echo", benchBody, cfg.HTTPRate},
		{"hello-py", "/hello", []byte(`{"name":"soak"}`), max(cfg.HTTPRate/4, 1)},
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := RunHTTP(lctx, HTTPConfig{
				URL: base + r.path, Name: r.name, Body: r.body, Headers: []string{"Content-Type: application/json"},
				Rate: r.rate, Duration: cfg.Duration,
			})
			if err != nil {
				fail(fmt.Errorf("soak: HTTP %s: %w", r.name, err))
				return
			}
			mu.Lock()
			res.HTTP[r.name] = out
			mu.Unlock()
		}()
	}
	var produced *Result
	wg.Add(1)
	go func() {
		defer wg.Done()
		// Not cancelled at the end of the load: a record failed by a
		// cancelled context may have been written all the same. It ends
		// by itself, with Duration of records at the rate.
		out, err := RunKafka(ctx, KafkaConfig{
			Brokers: []string{brokerAddr}, Topic: "soak", Records: max(int64(cfg.KafkaRate)*int64(cfg.Duration)/int64(time.Second), 1),
			Size: 100, Rate: cfg.KafkaRate, JSON: true, Name: "soak",
		})
		if err != nil {
			fail(fmt.Errorf("soak: Kafka: %w", err))
			return
		}
		mu.Lock()
		produced = out
		mu.Unlock()
	}()

	// Peak RSS of every generation, read until the end of the drain.
	sctx, stopSampling := context.WithCancel(ctx)
	var sampled sync.WaitGroup
	sampled.Add(1)
	go func() {
		defer sampled.Done()
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			if pid := readPID(pidfile); pid > 0 {
				if _, peak := RSS(pid); peak > 0 {
					mu.Lock()
					res.PeakRSS = max(res.PeakRSS, peak)
					mu.Unlock()
				}
			}
			select {
			case <-sctx.Done():
				return
			case <-t.C:
			}
		}
	}()

	// Crashes and reloads, on their own schedules, until the load ends.
	start := time.Now()
	wg.Add(1)
	go func() {
		defer wg.Done()
		victims := []string{"sink.py", "hello.py"}
		for i := 0; sleepUntil(lctx, start.Add(time.Duration(i+1)*cfg.CrashEvery)); i++ {
			name := victims[i%len(victims)]
			if pid := childRunning(readPID(pidfile), name); pid > 0 && syscall.Kill(pid, syscall.SIGKILL) == nil {
				mu.Lock()
				res.CrashAt = append(res.CrashAt, time.Since(start))
				res.Crashes[strings.TrimSuffix(name, ".py")]++
				mu.Unlock()
			}
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		if cfg.Reloads == 0 {
			return
		}
		interval := cfg.Duration / time.Duration(cfg.Reloads)
		for i := 0; i < cfg.Reloads && sleepUntil(lctx, start.Add(interval/2+time.Duration(i)*interval)); i++ {
			// Waited for past the end of the load, if need be: the old
			// process drains before it exits.
			at := time.Since(start)
			st, err := reloadOnce(ctx, cfg.Sluice, pidfile)
			mu.Lock()
			res.ReloadAt = append(res.ReloadAt, at)
			if err != nil {
				res.ReloadErrors = append(res.ReloadErrors, fmt.Sprintf("reload %d: %v", i+1, err))
			} else {
				res.Reloads++
				res.ReadyMS = append(res.ReadyMS, st.ReadyMS)
			}
			mu.Unlock()
		}
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-lctx.Done():
				return
			case <-t.C:
			}
			got, _, _ := countConsumed(sinkDir)
			mu.Lock()
			fmt.Fprintf(cfg.Progress, "soak: %s: %d reloads, %d crashes, %d records consumed, peak RSS %d MiB\n",
				time.Since(start).Round(time.Second), res.Reloads, res.Crashes["sink"]+res.Crashes["hello"], got, res.PeakRSS>>20)
			mu.Unlock()
		}
	}()
	wg.Wait()
	if loadErr != nil {
		stopSampling()
		sampled.Wait()
		return nil, loadErr
	}
	res.Produced = produced.OK
	res.ProduceErrors = produced.Errors

	// Then every record produced must reach the sink.
	deadline := time.Now().Add(cfg.Drain)
	for {
		var err error
		if res.Consumed, res.Redelivered, err = countConsumed(sinkDir); err != nil {
			stopSampling()
			sampled.Wait()
			return nil, err
		}
		if res.Consumed >= res.Produced || time.Now().After(deadline) || !sleepUntil(ctx, time.Now().Add(200*time.Millisecond)) {
			break
		}
	}
	stopSampling()
	sampled.Wait()
	res.Lost = res.Produced - res.Consumed
	res.print(cfg.Out)
	switch {
	case res.Lost > 0:
		return res, fmt.Errorf("soak: %d records lost", res.Lost)
	case len(res.ReloadErrors) > 0:
		return res, fmt.Errorf("soak: %d reloads failed", len(res.ReloadErrors))
	}
	return res, nil
}

// countConsumed reads the ids the sink wrote: distinct ones, and how many
// lines repeated one.
func countConsumed(dir string) (distinct, repeats int64, err error) {
	files, err := filepath.Glob(filepath.Join(dir, "ids.*"))
	if err != nil {
		return 0, 0, err
	}
	seen := map[string]struct{}{}
	var lines int64
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, 0, err
		}
		for _, l := range bytes.Split(b, []byte("\n")) {
			if len(l) == 0 || !bytes.HasPrefix(l, []byte("soak-")) {
				continue
			}
			lines++
			seen[string(l)] = struct{}{}
		}
	}
	return int64(len(seen)), lines - int64(len(seen)), nil
}

// childRunning returns the pid of a child of parent whose command line
// holds name, chosen at random among them, or 0.
func childRunning(parent int, name string) int {
	if parent <= 0 {
		return 0
	}
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid …: comm may hold spaces, so read after ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[1] != strconv.Itoa(parent) {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if bytes.Contains(cmdline, []byte(name)) {
			pids = append(pids, pid)
		}
	}
	if len(pids) == 0 {
		return 0
	}
	return pids[rand.IntN(len(pids))]
}

func (r *SoakResult) print(w io.Writer) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	names := make([]string, 0, len(r.HTTP))
	for n := range r.HTTP {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		h := r.HTTP[n]
		fmt.Fprintf(bw, "requests %-9s %d, ok %d, errors: %s; p50 %.1fms p99 %.1fms max %.0fms\n",
			n, h.Requests, h.OK, kinds(h.Errors), h.Latency.P50, h.Latency.P99, h.Latency.Max)
		var secs []string
		for _, sec := range h.Series {
			if sec.Errors > 0 {
				secs = append(secs, fmt.Sprintf("%ds: %d", sec.T, sec.Errors))
			}
		}
		if len(secs) > 0 {
			fmt.Fprintf(bw, "          failed requests by second of the run: %s\n", strings.Join(secs, ", "))
		}
	}
	fmt.Fprintf(bw, "records   produced %d (errors: %s), consumed %d distinct (%d redelivered), lost %d\n",
		r.Produced, kinds(r.ProduceErrors), r.Consumed, r.Redelivered, r.Lost)
	fmt.Fprintf(bw, "reloads   %d, new process ready %s after the signal", r.Reloads, spread(r.ReadyMS))
	for _, e := range r.ReloadErrors {
		fmt.Fprintf(bw, "; %s", e)
	}
	fmt.Fprintf(bw, "\n          at %s\n", seconds(r.ReloadAt))
	fmt.Fprintf(bw, "crashes   %d (sink %d, hello.py %d), each worker killed with SIGKILL, at %s\n",
		r.Crashes["sink"]+r.Crashes["hello"], r.Crashes["sink"], r.Crashes["hello"], seconds(r.CrashAt))
	fmt.Fprintf(bw, "peak RSS  %d MiB (the gateway, highest of its generations)\n", r.PeakRSS>>20)
}

// seconds lists moments of the run in seconds.
func seconds(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%.1fs", d.Seconds())
	}
	return strings.Join(parts, ", ")
}

// kinds lists error counts by kind, "none" for none.
func kinds(m map[string]int64) string {
	var parts []string
	for k, n := range m {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, n))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}
