package gateway

import "github.com/sluicehq/sluice/plugins"

const idLen = plugins.IDLen

// newRequestID writes a fresh request id, a random version 4 UUID
// (plugins.PutID), to dst: only requests that become events convert it to
// a string, so the error paths (404, 405, 429) do not allocate.
func newRequestID(dst *[idLen]byte) { plugins.PutID(dst) }
