package plugins

import "math/rand/v2"

// IDLen is the length of an id of NewID or PutID.
const IDLen = 36

// hexPairs holds the two hex digits of every byte value.
var hexPairs = func() (t [256][2]byte) {
	for i := range t {
		t[i] = [2]byte{hexDigits[i>>4], hexDigits[i&0xf]}
	}
	return t
}()

// idOffsets is where each of the 16 bytes of a UUID goes in its text.
var idOffsets = [16]uint8{0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34}

// NewID returns a random version 4 UUID in its canonical text form, the
// shape of Lambda request ids. The runtime's per-thread ChaCha8 generator
// makes it cheap enough for every request and unpredictable to clients.
func NewID() string {
	var s [IDLen]byte
	PutID(&s)
	return string(s[:])
}

// PutID writes what NewID returns to dst. Writing into a caller's array
// rather than returning a string lets a caller that may not need the id as
// a string (an HTTP error answer) go without allocating.
func PutID(dst *[IDLen]byte) {
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
