package plugins

import (
	"context"
	"strings"
)

// TraceContext is a W3C trace context: a trace id, the id of the parent
// span and the trace flags (bit 0: sampled).
type TraceContext struct {
	TraceID [16]byte
	SpanID  [8]byte
	Flags   byte
}

// Sampled reports whether the sampled flag is set.
func (c TraceContext) Sampled() bool { return c.Flags&1 == 1 }

// ParseTraceParent parses a W3C traceparent header,
// "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>". A later
// version may add fields after the flags, which are ignored, as the W3C
// recommendation asks; version ff, uppercase hex and all-zero ids are
// invalid. ok is false for anything malformed.
func ParseTraceParent(s string) (c TraceContext, ok bool) {
	// Leading and trailing spaces are allowed by HTTP header syntax.
	s = strings.TrimSpace(s)
	if len(s) < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return c, false
	}
	var ver [1]byte
	if !decodeHex(ver[:], s[0:2]) || ver[0] == 0xff {
		return c, false
	}
	if ver[0] == 0 && len(s) != 55 {
		return c, false
	}
	if len(s) > 55 && s[55] != '-' {
		return c, false
	}
	var fl [1]byte
	if !decodeHex(c.TraceID[:], s[3:35]) || !decodeHex(c.SpanID[:], s[36:52]) || !decodeHex(fl[:], s[53:55]) {
		return TraceContext{}, false
	}
	if c.TraceID == ([16]byte{}) || c.SpanID == ([8]byte{}) {
		return TraceContext{}, false
	}
	c.Flags = fl[0]
	return c, true
}

// AppendTraceParent appends c as a version 00 traceparent.
func AppendTraceParent(dst []byte, c TraceContext) []byte {
	dst = append(dst, "00-"...)
	dst = appendHex(dst, c.TraceID[:])
	dst = append(dst, '-')
	dst = appendHex(dst, c.SpanID[:])
	dst = append(dst, '-')
	return appendHex(dst, []byte{c.Flags})
}

// String returns c as a version 00 traceparent.
func (c TraceContext) String() string {
	var b [55]byte
	return string(AppendTraceParent(b[:0], c))
}

// XRayTraceID converts a W3C traceparent to the trace header Lambda passes
// to runtimes as Lambda-Runtime-Trace-Id (and runtimes export as
// _X_AMZN_TRACE_ID): "Root=1-<8 hex>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>",
// the 128-bit trace id split as X-Ray's epoch and unique parts. It returns
// "" for a malformed traceparent.
func XRayTraceID(traceparent string) string {
	c, ok := ParseTraceParent(traceparent)
	if !ok {
		return ""
	}
	var b [76]byte
	dst := append(b[:0], "Root=1-"...)
	dst = appendHex(dst, c.TraceID[:4])
	dst = append(dst, '-')
	dst = appendHex(dst, c.TraceID[4:])
	dst = append(dst, ";Parent="...)
	dst = appendHex(dst, c.SpanID[:])
	dst = append(dst, ";Sampled="...)
	dst = append(dst, '0'+c.Flags&1)
	return string(dst)
}

// TraceParentFromXRay converts an X-Ray trace header ("Root=1-…-…;
// Parent=…;Sampled=…", fields in any order, others ignored) back to a W3C
// traceparent. Without a Parent there is no span to name as the parent,
// so it returns "" then, as for anything malformed.
func TraceParentFromXRay(h string) string {
	var c TraceContext
	var root, parent bool
	for h != "" {
		var f string
		f, h, _ = strings.Cut(h, ";")
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		switch k {
		case "Root":
			// 1-<8 hex>-<24 hex>
			if len(v) != 35 || v[0] != '1' || v[1] != '-' || v[10] != '-' ||
				!decodeHex(c.TraceID[:4], v[2:10]) || !decodeHex(c.TraceID[4:], v[11:]) {
				return ""
			}
			root = true
		case "Parent":
			if len(v) != 16 || !decodeHex(c.SpanID[:], v) {
				return ""
			}
			parent = true
		case "Sampled":
			if v == "1" {
				c.Flags = 1
			}
		}
	}
	if !root || !parent || c.TraceID == ([16]byte{}) || c.SpanID == ([8]byte{}) {
		return ""
	}
	return c.String()
}

// TraceParent returns the traceparent the worker passes on with event i:
// the invocation's own when tracing set one, else the event's.
func (b *Batch) TraceParent(i int) string {
	if i < len(b.TraceParents) && b.TraceParents[i] != "" {
		return b.TraceParents[i]
	}
	return b.Events[i].TraceParent
}

type traceKey struct{}

// WithTraceParent returns a context carrying traceparent, for a Go
// function to read with TraceParentFrom. Workers call it for each event of
// a traced invocation.
func WithTraceParent(ctx context.Context, traceparent string) context.Context {
	return context.WithValue(ctx, traceKey{}, traceparent)
}

// TraceParentFrom returns the W3C traceparent of the invocation running
// under ctx, "" when it is not traced. A Go function continues the trace
// by parsing it (ParseTraceParent, or an OpenTelemetry propagator).
func TraceParentFrom(ctx context.Context) string {
	s, _ := ctx.Value(traceKey{}).(string)
	return s
}

func appendHex(dst, src []byte) []byte {
	for _, c := range src {
		dst = append(dst, hexDigits[c>>4], hexDigits[c&15])
	}
	return dst
}

// decodeHex decodes lowercase hex s into dst, len(s) == 2*len(dst).
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
