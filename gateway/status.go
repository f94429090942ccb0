package gateway

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"html"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/sluicehq/sluice/invoker"
)

// statusWindow is the span the status page's rates, error rates and
// percentiles are computed over.
const statusWindow = time.Minute

// Status sizes.
const (
	// DefaultStatusRecent is how many recent invocations, and recent errors,
	// NewStatus(0) keeps.
	DefaultStatusRecent = 50
	// statusSamples is how many invocations per function the rates and
	// percentiles are computed from: the last ones within statusWindow.
	statusSamples = 1024
	// maxStatusError bounds an error message kept for the page.
	maxStatusError = 300
)

//go:embed status.html
var statusHTML string

// Status is what the admin listener's status page shows: each function
// with its runtime, instances busy and idle, rate, error rate, p50/p99 over
// the last minute and cold starts; each trigger with its Kafka lag; the
// last invocations and the last errors with their request ids. It holds
// bounded rings only (per function: statusSamples invocations, its n recent
// invocations and its n recent errors), so it costs the same however long
// the process runs. Observe is its invoker hook; its methods are safe for
// concurrent use.
type Status struct {
	start time.Time
	n     int

	// byName is read on every invocation without a lock: AddFunction
	// replaces the map, it never changes one that was published.
	byName atomic.Pointer[map[string]*statusFn]
	// other keeps the recent invocations of functions not added.
	other *statusFn

	mu       sync.Mutex // serialises AddFunction and AddTrigger
	fns      []*statusFn
	triggers []StatusTrigger
}

// StatusFunction describes a function for the status page.
type StatusFunction struct {
	Name    string
	Runtime string
	// Instances is how many instances (processes, runtimes, concurrent
	// batches of a Go function) it runs at most.
	Instances int
}

// StatusTrigger describes a trigger for the status page.
type StatusTrigger struct {
	Name     string
	Kind     string // http, kafka, cloudevents, schedule, …
	Function string
	// Group is a Kafka trigger's consumer group, whose lag the page shows.
	Group string
}

// statusFn is one function's share of the page. One lock guards its
// samples and its recent rings, so an invocation costs one uncontended
// lock: functions settle apart, and the page merges their rings.
type statusFn struct {
	StatusFunction
	mu      sync.Mutex
	samples [statusSamples]statusSample
	next    int
	filled  bool
	recent  ring
	errs    ring
}

func newStatusFn(f StatusFunction, n int) *statusFn {
	return &statusFn{StatusFunction: f,
		recent: ring{items: make([]invoker.Invocation, n)}, errs: ring{items: make([]invoker.Invocation, n)}}
}

type statusSample struct {
	at  time.Time
	dur time.Duration
	err bool
}

type ring struct {
	items []invoker.Invocation
	next  int
	full  bool
}

func (r *ring) add(inv invoker.Invocation) {
	r.items[r.next] = inv
	r.next++
	if r.next == len(r.items) {
		r.next, r.full = 0, true
	}
}

// newest returns the ring's items, newest first.
func (r *ring) newest() []invoker.Invocation {
	n := r.next
	if r.full {
		n = len(r.items)
	}
	out := make([]invoker.Invocation, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, r.items[(r.next-i+len(r.items))%len(r.items)])
	}
	return out
}

// NewStatus returns an empty Status keeping the last n invocations and the
// last n errors (0: DefaultStatusRecent).
func NewStatus(n int) *Status {
	if n <= 0 {
		n = DefaultStatusRecent
	}
	s := &Status{start: time.Now(), n: n, other: newStatusFn(StatusFunction{}, n)}
	s.byName.Store(&map[string]*statusFn{})
	return s
}

// AddFunction adds a function to the page.
func (s *Status) AddFunction(f StatusFunction) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.byName.Load()
	if old[f.Name] != nil {
		return
	}
	sf := newStatusFn(f, s.n)
	s.fns = append(s.fns, sf)
	m := make(map[string]*statusFn, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[f.Name] = sf
	s.byName.Store(&m)
}

// AddTrigger adds a trigger to the page.
func (s *Status) AddTrigger(t StatusTrigger) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.triggers = append(s.triggers, t)
}

// Observe records one invocation; it has the signature of
// invoker.Deps.OnInvocation. An invocation of a function not added is kept
// in the recent lists only.
func (s *Status) Observe(inv invoker.Invocation) {
	f := (*s.byName.Load())[inv.Function]
	failed := inv.Outcome != "success"
	if f == nil {
		f = s.other
	}
	f.mu.Lock()
	if f != s.other {
		f.samples[f.next] = statusSample{at: inv.Start.Add(inv.Duration), dur: inv.Duration, err: failed}
		f.next++
		if f.next == len(f.samples) {
			f.next, f.filled = 0, true
		}
	}
	f.recent.add(inv)
	if failed {
		f.errs.add(inv)
	}
	f.mu.Unlock()
}

// StatusReport is the document of /status.json.
type StatusReport struct {
	Time        time.Time          `json:"time"`
	UptimeS     float64            `json:"uptime_s"`
	WindowS     float64            `json:"window_s"`
	Functions   []FunctionStatus   `json:"functions"`
	Triggers    []TriggerStatus    `json:"triggers"`
	Invocations []InvocationStatus `json:"recent_invocations"`
	Errors      []InvocationStatus `json:"recent_errors"`
}

// FunctionStatus is one function in a StatusReport. Rates and percentiles
// are over the last WindowS seconds (at most the last statusSamples
// invocations).
type FunctionStatus struct {
	Name        string  `json:"name"`
	Runtime     string  `json:"runtime"`
	Busy        int     `json:"instances_busy"`
	Idle        int     `json:"instances_idle"`
	Queued      int     `json:"queued"`
	Invocations int     `json:"invocations"`
	RatePerS    float64 `json:"rate_per_s"`
	ErrorRate   float64 `json:"error_rate"`
	P50MS       float64 `json:"p50_ms"`
	P99MS       float64 `json:"p99_ms"`
	ColdStarts  float64 `json:"cold_starts"`
}

// TriggerStatus is one trigger in a StatusReport; Lag is nil for a
// trigger without a consumer group.
type TriggerStatus struct {
	StatusTrigger
	Lag *float64 `json:"lag"`
}

// InvocationStatus is one recent invocation in a StatusReport.
type InvocationStatus struct {
	Time       time.Time `json:"time"`
	Function   string    `json:"function"`
	RequestID  string    `json:"request_id"`
	Trigger    string    `json:"trigger"`
	Outcome    string    `json:"outcome"`
	DurationMS float64   `json:"duration_ms"`
	BilledMS   int64     `json:"billed_ms"`
	Attempt    int       `json:"attempt"`
	Error      string    `json:"error,omitempty"`
}

// Report returns the page's figures now. Instances, queues, cold starts
// and lags come from the registered metrics (sluice_instances{state},
// sluice_concurrent_executions, sluice_queue_depth,
// sluice_cold_starts_total, sluice_kafka_lag_records), so the page shows
// what /metrics shows.
func (s *Status) Report() StatusReport {
	now := time.Now()
	m := scrape()
	rep := StatusReport{Time: now.UTC(), UptimeS: now.Sub(s.start).Seconds(), WindowS: statusWindow.Seconds(),
		Functions: []FunctionStatus{}, Triggers: []TriggerStatus{}}
	s.mu.Lock()
	fns := slices.Clone(s.fns)
	trigs := slices.Clone(s.triggers)
	s.mu.Unlock()
	for _, f := range fns {
		fs := FunctionStatus{Name: f.Name, Runtime: f.Runtime}
		fn := map[string]string{"function": f.Name}
		busy, hasBusy := m.sum("sluice_instances", map[string]string{"function": f.Name, "state": "busy"})
		idle, hasIdle := m.sum("sluice_instances", map[string]string{"function": f.Name, "state": "idle"})
		if !hasBusy && !hasIdle {
			busy, _ = m.sum("sluice_concurrent_executions", fn)
			idle = math.Max(float64(f.Instances)-busy, 0)
		}
		fs.Busy, fs.Idle = int(busy), int(idle)
		q, _ := m.sum("sluice_queue_depth", fn)
		fs.Queued = int(q)
		fs.ColdStarts, _ = m.sum("sluice_cold_starts_total", fn)
		f.window(now, min(now.Sub(s.start), statusWindow), &fs)
		rep.Functions = append(rep.Functions, fs)
	}
	for _, t := range trigs {
		ts := TriggerStatus{StatusTrigger: t}
		if t.Group != "" {
			if lag, ok := m.sum("sluice_kafka_lag_records", map[string]string{"group": t.Group}); ok {
				ts.Lag = &lag
			} else {
				zero := 0.0
				ts.Lag = &zero
			}
		}
		rep.Triggers = append(rep.Triggers, ts)
	}
	var recent, errs [][]invoker.Invocation
	for _, f := range append(fns, s.other) {
		f.mu.Lock()
		recent, errs = append(recent, f.recent.newest()), append(errs, f.errs.newest())
		f.mu.Unlock()
	}
	rep.Invocations = invocationStatuses(mergeNewest(recent, s.n))
	rep.Errors = invocationStatuses(mergeNewest(errs, s.n))
	return rep
}

// mergeNewest merges lists that are each newest first into at most n
// invocations, newest first: each list keeps its order, and of the lists'
// heads the one that ended last comes next.
func mergeNewest(lists [][]invoker.Invocation, n int) []invoker.Invocation {
	var out []invoker.Invocation
	for len(out) < n {
		best := -1
		for i, l := range lists {
			if len(l) > 0 && (best < 0 || ended(l[0]).After(ended(lists[best][0]))) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		out = append(out, lists[best][0])
		lists[best] = lists[best][1:]
	}
	return out
}

func ended(inv invoker.Invocation) time.Time { return inv.Start.Add(inv.Duration) }

// window fills fs's rate, error rate and percentiles from f's samples in
// the last statusWindow; the rate is over span, the window or less in the
// process's first minute.
func (f *statusFn) window(now time.Time, span time.Duration, fs *FunctionStatus) {
	from := now.Add(-statusWindow)
	var durs []time.Duration
	errs := 0
	f.mu.Lock()
	n := f.next
	if f.filled {
		n = len(f.samples)
	}
	for i := 0; i < n; i++ {
		sm := f.samples[i]
		if sm.at.Before(from) {
			continue
		}
		durs = append(durs, sm.dur)
		if sm.err {
			errs++
		}
	}
	f.mu.Unlock()
	fs.Invocations = len(durs)
	if len(durs) == 0 {
		return
	}
	fs.RatePerS = float64(len(durs)) / max(span.Seconds(), 1)
	fs.ErrorRate = float64(errs) / float64(len(durs))
	slices.Sort(durs)
	pct := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(durs)))) - 1
		return float64(durs[max(i, 0)].Microseconds()) / 1000
	}
	fs.P50MS, fs.P99MS = pct(0.50), pct(0.99)
}

func invocationStatuses(invs []invoker.Invocation) []InvocationStatus {
	out := make([]InvocationStatus, 0, len(invs))
	for _, inv := range invs {
		is := InvocationStatus{
			Time: inv.Start.UTC(), Function: inv.Function, RequestID: inv.RequestID, Trigger: inv.Trigger,
			Outcome: inv.Outcome, DurationMS: float64(inv.Duration.Microseconds()) / 1000, BilledMS: inv.BilledMS, Attempt: inv.Attempt,
		}
		if inv.Err != nil {
			is.Error = inv.Err.Error()
			if len(is.Error) > maxStatusError {
				is.Error = strings.ToValidUTF8(is.Error[:maxStatusError], "") + "…"
			}
		}
		out = append(out, is)
	}
	return out
}

// serveStatus answers / (the page) and /status.json.
func (s *Status) serveStatus(ctx *fasthttp.RequestCtx, asJSON bool) {
	rep := s.Report()
	doc, err := json.Marshal(rep)
	if err != nil {
		ctx.Error("cannot encode the status: "+err.Error()+"\n", fasthttp.StatusInternalServerError)
		return
	}
	ctx.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	if asJSON {
		ctx.SetContentType("application/json")
		ctx.SetBody(doc)
		return
	}
	ctx.SetContentType("text/html; charset=utf-8")
	// The first figures travel in the page, so it shows them even where
	// its script cannot fetch /status.json (a token the browser does not
	// send on fetch). json.Marshal escapes <, > and &, so the JSON cannot
	// close the script element it sits in.
	page := strings.Replace(statusHTML, "{{STATUS}}", string(doc), 1)
	page = strings.Replace(page, "{{GENERATED}}", html.EscapeString(rep.Time.Format(time.RFC3339)), 1)
	ctx.SetBodyString(page)
}

// scraped holds the samples of the families the status page reads.
type scraped []scrapedSample

type scrapedSample struct {
	name   string
	labels map[string]string
	value  float64
}

var statusFamilies = []string{"sluice_instances", "sluice_concurrent_executions", "sluice_queue_depth", "sluice_cold_starts_total", "sluice_kafka_lag_records"}

// scrape reads the registered metrics (without the Go runtime's) and
// keeps the samples of statusFamilies.
func scrape() scraped {
	var b bytes.Buffer
	metrics.WritePrometheus(&b, false)
	var out scraped
	for _, line := range strings.Split(b.String(), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, "{")
		if !slices.Contains(statusFamilies, name) {
			continue
		}
		labels, value, ok := parseLabels(rest)
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		out = append(out, scrapedSample{name: name, labels: labels, value: v})
	}
	return out
}

// parseLabels parses `k="v",k2="v2"} value` into labels and the value.
func parseLabels(s string) (map[string]string, string, bool) {
	labels := map[string]string{}
	for {
		s = strings.TrimLeft(s, ", ")
		if strings.HasPrefix(s, "}") {
			return labels, s[1:], true
		}
		k, rest, ok := strings.Cut(s, `="`)
		if !ok {
			return nil, "", false
		}
		var v strings.Builder
		i := 0
		for ; i < len(rest) && rest[i] != '"'; i++ {
			if rest[i] == '\\' && i+1 < len(rest) {
				i++
				switch rest[i] {
				case 'n':
					v.WriteByte('\n')
				default:
					v.WriteByte(rest[i])
				}
				continue
			}
			v.WriteByte(rest[i])
		}
		if i >= len(rest) {
			return nil, "", false
		}
		labels[k] = v.String()
		s = rest[i+1:]
	}
}

// sum adds the values of name's samples having every label of match, and
// reports whether there was any.
func (m scraped) sum(name string, match map[string]string) (float64, bool) {
	var total float64
	found := false
next:
	for _, sm := range m {
		if sm.name != name {
			continue
		}
		for k, v := range match {
			if sm.labels[k] != v {
				continue next
			}
		}
		total += sm.value
		found = true
	}
	return total, found
}

// SetStatus makes the admin listener serve st's page on / and its figures
// on /status.json, behind the same token as every admin path. Call it
// before Serve.
func (a *Admin) SetStatus(st *Status) { a.status = st }
