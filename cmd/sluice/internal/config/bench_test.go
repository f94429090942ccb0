package config

import "testing"

func BenchmarkParse(b *testing.B) {
	data := []byte(specExample)
	lookup := env(map[string]string{"SLUICE_ADMIN_TOKEN": "x"})
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := ParseEnv("b.yaml", data, lookup); err != nil {
			b.Fatal(err)
		}
	}
}
