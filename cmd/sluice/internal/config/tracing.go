package config

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// Tracing defaults.
const (
	DefaultSampleRatio = 1.0
	DefaultServiceName = "sluice"
	// EnvOTLPEndpoint is the OpenTelemetry variable that turns tracing on
	// when the file does not set tracing.otlp_endpoint.
	EnvOTLPEndpoint = "OTEL_EXPORTER_OTLP_ENDPOINT"
)

// Tracing is the tracing section: OpenTelemetry spans exported over
// OTLP/HTTP. Tracing is off when OTLPEndpoint is empty.
type Tracing struct {
	// OTLPEndpoint is the collector's base URL (http or https; /v1/traces is
	// added when it has no path). Defaults to $OTEL_EXPORTER_OTLP_ENDPOINT,
	// and to "" (tracing off) when that is unset.
	OTLPEndpoint string
	// SampleRatio is the share of new traces sampled, 0 to 1; an incoming
	// traceparent's sampled flag is followed. Defaults to 1.
	SampleRatio float64
	// ServiceName is the service.name of the spans. Defaults to "sluice".
	ServiceName string

	ratioSet bool
}

// Enabled reports whether spans are exported.
func (t Tracing) Enabled() bool { return t.OTLPEndpoint != "" }

func (d *decoder) tracing(e kv, t *Tracing) {
	d.object(e, fields{
		"otlp_endpoint": func(e kv) {
			s, ok := d.str(e)
			if !ok || s == "" {
				return
			}
			if msg := checkEndpoint(s); msg != "" {
				d.errorf(e.vpos, "%s: %s", e.label(), msg)
				return
			}
			t.OTLPEndpoint = s
		},
		"sample_ratio": func(e kv) {
			if v, ok := d.ratio(e); ok {
				t.SampleRatio, t.ratioSet = v, true
			}
		},
		"service_name": func(e kv) {
			s, ok := d.str(e)
			if !ok {
				return
			}
			if strings.TrimSpace(s) == "" {
				d.errorf(e.vpos, "%s: must not be empty", e.label())
				return
			}
			t.ServiceName = s
		},
	})
}

// ratio returns e's value as a number from 0 to 1.
func (d *decoder) ratio(e kv) (float64, bool) {
	var v float64
	switch n := e.val.(type) {
	case nil:
		return 0, false
	case *ast.NullNode:
		return 0, false
	case *ast.FloatNode:
		v = n.Value
	case *ast.IntegerNode:
		switch x := n.Value.(type) {
		case int64:
			v = float64(x)
		case uint64:
			v = float64(x)
		}
	case *ast.StringNode:
		s, _, ok := d.text(e)
		if !ok {
			return 0, false
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			d.errorf(e.vpos, "%s: expected a number from 0 to 1, got %q", e.label(), s)
			return 0, false
		}
		v = f
	default:
		d.typeErr(e, "a number from 0 to 1")
		return 0, false
	}
	if !(v >= 0 && v <= 1) { // NaN fails both
		d.errorf(e.vpos, "%s: must be from 0 to 1, got %v", e.label(), v)
		return 0, false
	}
	return v, true
}

// checkEndpoint returns what is wrong with an OTLP endpoint, or "".
func checkEndpoint(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "want an http:// or https:// URL, got " + strconv.Quote(s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "a query or fragment has no place in " + strconv.Quote(s)
	}
	return ""
}

// tracingDefaults applies the tracing defaults, the environment's endpoint
// included.
func (d *decoder) tracingDefaults(t *Tracing) {
	if !t.ratioSet {
		t.SampleRatio = DefaultSampleRatio
	}
	setDefault(&t.ServiceName, DefaultServiceName)
	if t.OTLPEndpoint != "" {
		return
	}
	s, ok := d.lookup(EnvOTLPEndpoint)
	if !ok || s == "" {
		return
	}
	if msg := checkEndpoint(s); msg != "" {
		d.errorf(d.pos["tracing"], "%s: %s", EnvOTLPEndpoint, msg)
		return
	}
	t.OTLPEndpoint = s
}
