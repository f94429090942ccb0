package gateway

import (
	"bufio"
	"fmt"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func TestTooManyHeaders(t *testing.T) {
	s := &Server{cfg: Config{MaxHeaders: 3}.withDefaults()}
	lines := func(n int, value string) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "X-%d: %s\r\n", i, value)
		}
		return b.String()
	}
	for _, tt := range []struct {
		name   string
		header string
		want   bool
	}{
		{"host only", "", false},
		{"at the limit, short", lines(2, ""), false},
		{"at the limit, long", lines(2, strings.Repeat("v", 100)), false},
		{"one over, short", lines(3, ""), true},
		{"one over, long", lines(3, strings.Repeat("v", 100)), true},
		{"far over", lines(500, "v"), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var h fasthttp.RequestHeader
			raw := "GET / HTTP/1.1\r\nHost: x\r\n" + tt.header + "\r\n"
			if err := h.Read(bufio.NewReaderSize(strings.NewReader(raw), 64<<10)); err != nil {
				t.Fatal(err)
			}
			if got := s.tooManyHeaders(&h); got != tt.want {
				t.Fatalf("tooManyHeaders = %v, want %v (raw header %q)", got, tt.want, h.RawHeaders())
			}
		})
	}
}
