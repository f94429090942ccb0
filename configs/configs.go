// Package configs holds the example deployments. The Go here only embeds
// sluice.yaml, the dev default that `sluice serve` runs without -c, so that
// the binary and the file in the repository can never differ.
package configs

import _ "embed"

// Default is configs/sluice.yaml.
//
//go:embed sluice.yaml
var Default []byte
