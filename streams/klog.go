package streams

import (
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ClientLogger is the franz-go client logger of every Kafka client of
// Sluice (triggers, the publisher, the scheduler): zerolog, with franz-go's
// info lines (group membership) kept and its per-request debug lines only
// at trace level.
func ClientLogger(log zerolog.Logger) kgo.Logger { return kgoLogger{log: log} }
