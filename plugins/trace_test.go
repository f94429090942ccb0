package plugins

import (
	"context"
	"testing"
)

const tpSampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestParseTraceParent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   string
		ok   bool
		flag byte
	}{
		{"sampled", tpSampled, true, 1},
		{"not sampled", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true, 0},
		{"spaces around", " " + tpSampled + " ", true, 1},
		{"later version with more fields", "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-the-future-holds", true, 9},
		{"later version, exact length", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true, 1},
		{"version 00 with more fields", tpSampled + "-x", false, 0},
		{"later version, no dash after flags", "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", false, 0},
		{"version ff", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, 0},
		{"uppercase", "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", false, 0},
		{"zero trace id", "00-00000000000000000000000000000000-00f067aa0ba902b7-01", false, 0},
		{"zero span id", "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false, 0},
		{"short", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", false, 0},
		{"wrong separators", "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01", false, 0},
		{"not hex", "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", false, 0},
		{"empty", "", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, ok := ParseTraceParent(tc.in)
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				if c != (TraceContext{}) {
					t.Errorf("a failed parse returned %+v", c)
				}
				return
			}
			if c.Flags != tc.flag {
				t.Errorf("flags = %x, want %x", c.Flags, tc.flag)
			}
			if got := c.String(); got[3:52] != "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7" {
				t.Errorf("String() = %q", got)
			}
		})
	}
}

// TestXRay checks the conversions between W3C traceparent and X-Ray's
// trace header both ways.
func TestXRay(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		w3c  string
		xray string
		back string // TraceParentFromXRay(xray); defaults to w3c
	}{
		{"sampled", tpSampled, "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1", ""},
		{"not sampled", "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-00",
			"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0", ""},
		{"other flags dropped", "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-03",
			"Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
			"00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"},
		{"malformed traceparent", "00-xyz", "", "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := XRayTraceID(tc.w3c); got != tc.xray {
				t.Errorf("XRayTraceID(%q) = %q, want %q", tc.w3c, got, tc.xray)
			}
			if tc.back == "-" {
				return
			}
			want := tc.back
			if want == "" {
				want = tc.w3c
			}
			if got := TraceParentFromXRay(tc.xray); got != want {
				t.Errorf("TraceParentFromXRay(%q) = %q, want %q", tc.xray, got, want)
			}
		})
	}
	for _, tc := range []struct {
		name, in, want string
	}{
		{"fields in another order", "Sampled=1;Parent=53995c3f42cd8ad8;Root=1-5759e988-bd862e3fe1be46a994272793",
			"00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"},
		{"lineage and spaces", "Root=1-5759e988-bd862e3fe1be46a994272793; Parent=53995c3f42cd8ad8; Lineage=a87bd80c:1|68fd508a:5",
			"00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-00"},
		{"no parent", "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1", ""},
		{"no root", "Parent=53995c3f42cd8ad8;Sampled=1", ""},
		{"root version 2", "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8", ""},
		{"short root", "Root=1-5759e988-bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8", ""},
		{"bad parent", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8adZ", ""},
		{"zero root", "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8", ""},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := TraceParentFromXRay(tc.in); got != tc.want {
				t.Errorf("TraceParentFromXRay(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestBatchTraceParent(t *testing.T) {
	t.Parallel()
	b := &Batch{Events: []*Event{{TraceParent: "a"}, {TraceParent: "b"}}}
	if b.TraceParent(0) != "a" || b.TraceParent(1) != "b" {
		t.Errorf("without TraceParents: %q %q", b.TraceParent(0), b.TraceParent(1))
	}
	b.TraceParents = []string{"x", ""}
	if b.TraceParent(0) != "x" || b.TraceParent(1) != "b" {
		t.Errorf("with TraceParents: %q %q", b.TraceParent(0), b.TraceParent(1))
	}
	ctx := WithTraceParent(context.Background(), tpSampled)
	if TraceParentFrom(ctx) != tpSampled || TraceParentFrom(context.Background()) != "" {
		t.Error("TraceParentFrom does not return what WithTraceParent stored")
	}
}

// FuzzParseTraceParent checks that the parser never panics, that whatever it
// accepts formats back to the same ids, and that the X-Ray form of it
// converts back.
func FuzzParseTraceParent(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := ParseTraceParent(s)
		if !ok {
			if XRayTraceID(s) != "" {
				t.Fatalf("XRayTraceID accepts %q that ParseTraceParent refuses", s)
			}
			return
		}
		out := c.String()
		c2, ok := ParseTraceParent(out)
		if !ok || c2 != c {
			t.Fatalf("%q parsed to %+v, formats as %q, which parses to %+v, %v", s, c, out, c2, ok)
		}
		back := TraceParentFromXRay(XRayTraceID(s))
		c3, ok := ParseTraceParent(back)
		if !ok || c3.TraceID != c.TraceID || c3.SpanID != c.SpanID || c3.Sampled() != c.Sampled() {
			t.Fatalf("%q round-trips through X-Ray as %q", s, back)
		}
	})
}
