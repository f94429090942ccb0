// Package plugins is the function API of Sluice: the CloudEvents 1.0 envelope
// (Event), a Batch of events with one Result per event, the Handler signature
// of Go functions (builtins and Go plugins) and the Worker interface every
// runtime implements.
//
// The package imports the standard library only. Go plugins are built against
// it, and a plugin must not drag fasthttp, franz-go or any other third-party
// version into its ABI: the Go runtime refuses a plugin whose packages differ
// from the host's.
//
// Custom metrics: a Go function records one with PutMetric; the
// subprocess runtimes' output lines in CloudWatch Embedded Metric Format
// are decoded by DecodeEMF. The host turns both into Prometheus series.
//
// The workers live below it: plugins/builtin (Go functions compiled in),
// plugins/goplugin (.so files), plugins/process (long-lived subprocesses
// speaking JSON lines) and plugins/lambda (unmodified AWS Lambda custom
// runtimes). They import this package and nothing else of Sluice.
package plugins
