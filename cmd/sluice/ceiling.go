package main

import (
	"flag"
	"fmt"
	"io"
	"net"

	"github.com/sluicehq/sluice/bench"
)

// benchCeiling serves the bare fasthttp handler the suite measures the
// gateway against, in a process of its own like the gateway's.
func benchCeiling(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("sluice bench ceiling", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return usageErr("%v", err)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, `{"level":"info","component":"ceiling","addr":%q,"message":"listening"}`+"\n", ln.Addr().String())
	return bench.ServeCeiling(ln)
}
