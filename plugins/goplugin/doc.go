// Package goplugin runs Go plugins (runtime: plugin): .so files built with
// go build -buildmode=plugin that export
//
//	func Handle(ctx context.Context, ev *plugins.Event) ([]byte, error)
//
// the signature of builtin functions, and run in the gateway's process like
// them.
//
// A Go plugin must be built by the same toolchain, with the same flags and
// the same versions of every package it shares with the host; otherwise the
// Go runtime refuses it, or worse. So before plugin.Open, Check compares the
// plugin's build info and package fingerprints with the running binary's,
// and Open refuses a mismatch with an error naming it. Build plugins with
// the gateway (make plugins), from the same checkout.
//
// A process loads each plugin once and can never unload it: running a
// changed .so takes a new process (sluice reload, which starts one).
package goplugin
