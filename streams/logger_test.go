package streams

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestKgoLoggerKeysAndLevels(t *testing.T) {
	tests := []struct {
		name    string
		level   zerolog.Level
		kgo     kgo.LogLevel
		want    string // the line's level, "" for no line
		minKafk kgo.LogLevel
	}{
		{"info chatter hidden at info", zerolog.InfoLevel, kgo.LogLevelInfo, "", kgo.LogLevelWarn},
		{"info chatter is debug", zerolog.DebugLevel, kgo.LogLevelInfo, "debug", kgo.LogLevelInfo},
		{"warn stays warn", zerolog.InfoLevel, kgo.LogLevelWarn, "warn", kgo.LogLevelWarn},
		{"client debug at trace", zerolog.TraceLevel, kgo.LogLevelDebug, "trace", kgo.LogLevelDebug},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			log := zerolog.New(&b).Level(tt.level).With().Int("generation", 3).Str("component", "streams").Str("group", "g").Logger()
			l := kgoLogger{log: log}
			if got := l.Level(); got != tt.minKafk {
				t.Fatalf("Level() = %v, want %v", got, tt.minKafk)
			}
			l.Log(tt.kgo, "joined", "group", "g", "generation", int32(7), "member_id", "m1")
			if tt.want == "" {
				if b.Len() != 0 {
					t.Fatalf("logged %s", b.String())
				}
				return
			}
			line := b.String()
			for _, k := range []string{`"generation":`, `"group":`, `"component":`} {
				if n := strings.Count(line, k); n != 1 {
					t.Errorf("%s appears %d times in %s", k, n, line)
				}
			}
			var m map[string]any
			if err := json.Unmarshal(b.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			if m["level"] != tt.want || m["kafka_generation"] != float64(7) || m["generation"] != float64(3) || m["kafka_group"] != "g" || m["member_id"] != "m1" {
				t.Fatalf("line %v", m)
			}
		})
	}
}
