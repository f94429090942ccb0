package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
	"github.com/schollz/progressbar/v3"
	"github.com/valyala/fasthttp"
)

// HTTPConfig is one HTTP load run.
type HTTPConfig struct {
	// URL is the target, http://host:port/path. Required.
	URL string
	// Method defaults to POST when Body is set, GET otherwise.
	Method string
	// Body is sent with every request.
	Body []byte
	// Headers are added to every request ("Name: value").
	Headers []string
	// Concurrency is the number of connections of a closed-loop run (each
	// sends its next request when the previous answered). Defaults to 64.
	Concurrency int
	// Rate, when positive, makes the run open-loop: requests are started at
	// this many per second whatever the latency, and each latency counts from
	// when its request was due, so a stalled server shows up in the figures
	// instead of hiding (coordinated omission). Concurrency then bounds the
	// requests in flight (defaults to 1024 in this mode).
	Rate int
	// Duration of the measured run. Defaults to 10s.
	Duration time.Duration
	// Warmup runs before the measured run and is not counted. Defaults to 0.
	Warmup time.Duration
	// Timeout of one request. Defaults to 10s.
	Timeout time.Duration
	// Name labels the result.
	Name string
	// Progress receives a live progress bar; nil for none.
	Progress io.Writer
}

func (c *HTTPConfig) defaults() error {
	if c.URL == "" {
		return errors.New("bench: --url is required")
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("bench: bad --url %q: want http://host:port/path", c.URL)
	}
	if c.Method == "" {
		c.Method = "GET"
		if len(c.Body) > 0 {
			c.Method = "POST"
		}
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 64
		if c.Rate > 0 {
			c.Concurrency = 1024
		}
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Name == "" {
		c.Name = "http"
	}
	for _, h := range c.Headers {
		if !strings.Contains(h, ":") {
			return fmt.Errorf("bench: header %q: want \"Name: value\"", h)
		}
	}
	return nil
}

// RunHTTP drives load at cfg.URL and measures it. It returns an error only
// when the run could not be made; failed requests are counted by kind in
// Result.Errors.
func RunHTTP(ctx context.Context, cfg HTTPConfig) (*Result, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.URL)
	client := &fasthttp.HostClient{
		Addr:                          hostPort(u),
		IsTLS:                         u.Scheme == "https",
		MaxConns:                      cfg.Concurrency,
		MaxIdemponentCallAttempts:     1, // a retried request would hide a failure
		ReadTimeout:                   cfg.Timeout,
		WriteTimeout:                  cfg.Timeout,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
		Dial: func(addr string) (net.Conn, error) {
			return (&net.Dialer{Timeout: cfg.Timeout}).Dial("tcp", addr)
		},
	}
	if cfg.Warmup > 0 {
		wcfg := cfg
		wcfg.Duration, wcfg.Warmup, wcfg.Progress = cfg.Warmup, 0, nil
		if _, err := runHTTP(ctx, wcfg, client); err != nil {
			return nil, err
		}
	}
	// Its connections go with the run: left idle, they would hold the
	// next scenario's server (a draining one, say) for nothing.
	defer client.CloseIdleConnections()
	return runHTTP(ctx, cfg, client)
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return u.Host + ":443"
	}
	return u.Host + ":80"
}

// recorder is one load goroutine's private tally; merged at the end so the
// hot loop shares nothing but two atomic counters.
type recorder struct {
	hist    *hdrhistogram.Histogram
	seconds []*hdrhistogram.Histogram
	errSecs []int64
	errors  map[string]int64
	ok      int64
	bytes   int64
}

func newRecorder(secs int) *recorder {
	return &recorder{hist: newHist(), seconds: make([]*hdrhistogram.Histogram, secs), errSecs: make([]int64, secs), errors: map[string]int64{}}
}

func (r *recorder) record(sec int, lat time.Duration, kind string, n int) {
	us := max(lat.Microseconds(), 1)
	_ = r.hist.RecordValue(min(us, histMax))
	if sec >= 0 && sec < len(r.seconds) {
		if r.seconds[sec] == nil {
			r.seconds[sec] = newCoarseHist()
		}
		_ = r.seconds[sec].RecordValue(min(us, histMax))
		if kind != "" {
			r.errSecs[sec]++
		}
	}
	if kind != "" {
		r.errors[kind]++
		return
	}
	r.ok++
	r.bytes += int64(n)
}

func runHTTP(ctx context.Context, cfg HTTPConfig, client *fasthttp.HostClient) (*Result, error) {
	secs := int((cfg.Duration+time.Second-1)/time.Second) + 1
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var done atomic.Int64
	var bar *progressbar.ProgressBar
	if cfg.Progress != nil {
		bar = progressbar.NewOptions64(int64(cfg.Duration/time.Millisecond),
			progressbar.OptionSetWriter(cfg.Progress),
			progressbar.OptionSetDescription(cfg.Name),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	start := time.Now()
	recs := make([]*recorder, cfg.Concurrency)
	var wg sync.WaitGroup

	var due chan time.Time
	if cfg.Rate > 0 {
		// Open loop: a pacer hands out due times; a worker that takes one late
		// still measures from when it was due.
		due = make(chan time.Time, cfg.Concurrency)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(due)
			interval := time.Second / time.Duration(cfg.Rate)
			next := start
			t := time.NewTimer(0)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				now := time.Now()
				for !next.After(now) {
					select {
					case due <- next:
					case <-ctx.Done():
						return
					}
					next = next.Add(interval)
				}
				t.Reset(time.Until(next))
			}
		}()
	}

	for i := range recs {
		rec := newRecorder(secs)
		recs[i] = rec
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(cfg.URL)
			req.Header.SetMethod(cfg.Method)
			for _, h := range cfg.Headers {
				k, v, _ := strings.Cut(h, ":")
				req.Header.Set(strings.TrimSpace(k), strings.TrimSpace(v))
			}
			for {
				var t0 time.Time
				if due != nil {
					var ok bool
					if t0, ok = <-due; !ok {
						return
					}
				} else {
					if ctx.Err() != nil {
						return
					}
					t0 = time.Now()
				}
				req.SetBody(cfg.Body)
				err := client.DoTimeout(req, resp, cfg.Timeout)
				lat := time.Since(t0)
				sec := int(t0.Sub(start) / time.Second)
				kind := classify(err, resp.StatusCode())
				rec.record(sec, lat, kind, len(resp.Body()))
				if bar != nil && done.Add(1)%256 == 0 {
					_ = bar.Set64(int64(time.Since(start) / time.Millisecond))
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if bar != nil {
		_ = bar.Finish()
	}
	res := merge(recs, secs)
	res.Name, res.Target, res.Duration = cfg.Name, cfg.URL, elapsed
	if cfg.Rate > 0 {
		res.Mode = fmt.Sprintf("open-loop, %d/s, up to %d in flight", cfg.Rate, cfg.Concurrency)
	} else {
		res.Mode = fmt.Sprintf("closed-loop, %d connections", cfg.Concurrency)
	}
	res.Throughput = float64(res.OK) / elapsed.Seconds()
	return res, nil
}

// classify names a failed request's kind, or "" for a 2xx answer.
func classify(err error, status int) string {
	if err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, fasthttp.ErrTimeout), errors.As(err, &ne) && ne.Timeout():
			return "timeout"
		case errors.Is(err, fasthttp.ErrConnectionClosed), strings.Contains(err.Error(), "reset"):
			return "connection_reset"
		case strings.Contains(err.Error(), "refused"), strings.Contains(err.Error(), "dial"):
			return "connect"
		default:
			return "transport"
		}
	}
	if status < 200 || status > 299 {
		return "http_" + strconv.Itoa(status)
	}
	return ""
}

func merge(recs []*recorder, secs int) *Result {
	res := &Result{Errors: map[string]int64{}}
	all := newHist()
	series := make([]Second, 0, secs)
	for s := 0; s < secs; s++ {
		h := newCoarseHist()
		var errs int64
		for _, r := range recs {
			if r.seconds[s] != nil {
				h.Merge(r.seconds[s])
			}
			errs += r.errSecs[s]
		}
		if h.TotalCount() == 0 {
			continue
		}
		series = append(series, Second{T: s, Count: h.TotalCount(), Errors: errs, P50: ms(h.ValueAtQuantile(50)), P99: ms(h.ValueAtQuantile(99))})
	}
	for _, r := range recs {
		all.Merge(r.hist)
		res.OK += r.ok
		res.Bytes += r.bytes
		for k, n := range r.errors {
			res.Errors[k] += n
		}
	}
	res.Requests = all.TotalCount()
	res.hist = all
	res.Latency = summarize(all)
	res.Series = series
	res.Histogram = histogramBuckets(all)
	return res
}
