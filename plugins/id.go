package plugins

import "math/rand/v2"

// NewID returns a random version 4 UUID in its canonical text form, the
// shape of Lambda request ids. The runtime's per-thread ChaCha8 generator
// makes it cheap enough for every request and unpredictable to clients.
func NewID() string {
	var u [16]byte
	a, b := rand.Uint64(), rand.Uint64()
	for i := 0; i < 8; i++ {
		u[i] = byte(a >> (8 * i))
		u[8+i] = byte(b >> (8 * i))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s[j] = '-'
			j++
		}
		s[j] = hexDigits[c>>4]
		s[j+1] = hexDigits[c&0xf]
		j += 2
	}
	return string(s[:])
}
