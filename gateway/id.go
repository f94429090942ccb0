package gateway

import "math/rand/v2"

const idLen = 36

const hexDigits = "0123456789abcdef"

// newRequestID writes a random version 4 UUID in canonical form to dst, the
// shape plugins.NewID returns. Writing into a caller's array rather than
// returning a string keeps the error paths (404, 405, 429) free of
// allocations; only requests that become events convert it to a string.
func newRequestID(dst *[idLen]byte) {
	var u [16]byte
	a, b := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		u[i] = byte(a >> (8 * i))
		u[8+i] = byte(b >> (8 * i))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst[j] = '-'
			j++
		}
		dst[j] = hexDigits[c>>4]
		dst[j+1] = hexDigits[c&0xf]
		j += 2
	}
}
