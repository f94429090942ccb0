package gateway

import "math/rand/v2"

const idLen = 36

const hexDigits = "0123456789abcdef"

// hexPairs holds the two hex digits of every byte value.
var hexPairs = func() (t [256][2]byte) {
	for i := range t {
		t[i] = [2]byte{hexDigits[i>>4], hexDigits[i&0xf]}
	}
	return t
}()

// idOffsets is where each of the 16 bytes of a UUID goes in its text.
var idOffsets = [16]uint8{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// newRequestID writes a random version 4 UUID in canonical form to dst, the
// shape plugins.NewID returns. Writing into a caller's array rather than
// returning a string keeps the error paths (404, 405, 429) free of
// allocations; only requests that become events convert it to a string.
func newRequestID(dst *[idLen]byte) {
	a, b := rand.Uint64(), rand.Uint64()
	// Byte i of the UUID is byte i of a (i < 8) or of b (i >= 8), little
	// end first: set the version (byte 6) and the variant (byte 8).
	a = a&^(0xf0<<48) | 0x40<<48
	b = b&^0xc0 | 0x80
	for i := range 8 {
		p := hexPairs[byte(a>>(8*i))]
		o := idOffsets[i]
		dst[o], dst[o+1] = p[0], p[1]
		p = hexPairs[byte(b>>(8*i))]
		o = idOffsets[8+i]
		dst[o], dst[o+1] = p[0], p[1]
	}
	dst[8], dst[13], dst[18], dst[23] = '-', '-', '-', '-'
}
