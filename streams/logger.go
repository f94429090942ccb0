package streams

import (
	"fmt"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kgoLogger adapts zerolog to franz-go's client logger. franz-go's info
// lines (connections, group joins and syncs, producer ids: dozens at every
// start) pass at debug level, since Sluice logs what matters of them
// itself (partitions assigned, revoked, lost); its debug lines are per
// request and only pass when the logger is at trace level.
type kgoLogger struct{ log zerolog.Logger }

func (l kgoLogger) Level() kgo.LogLevel {
	switch lvl := l.log.GetLevel(); {
	case lvl <= zerolog.TraceLevel:
		return kgo.LogLevelDebug
	case lvl <= zerolog.DebugLevel:
		return kgo.LogLevelInfo
	case lvl <= zerolog.InfoLevel:
		return kgo.LogLevelWarn
	case lvl <= zerolog.WarnLevel:
		return kgo.LogLevelWarn
	case lvl <= zerolog.ErrorLevel:
		return kgo.LogLevelError
	default:
		return kgo.LogLevelNone
	}
}

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var ev *zerolog.Event
	switch level {
	case kgo.LogLevelError:
		ev = l.log.Error()
	case kgo.LogLevelWarn:
		ev = l.log.Warn()
	case kgo.LogLevelInfo:
		ev = l.log.Debug()
	default:
		ev = l.log.Trace()
	}
	if !ev.Enabled() {
		return
	}
	for i := 0; i+1 < len(keyvals); i += 2 {
		k, ok := keyvals[i].(string)
		if !ok {
			k = fmt.Sprint(keyvals[i])
		}
		if ownKeys[k] {
			k = "kafka_" + k
		}
		ev = ev.Interface(k, keyvals[i+1])
	}
	ev.Msg(msg)
}

// ownKeys are the keys Sluice's own loggers carry already (the reload's
// generation, the trigger's group, zerolog's level and time…): franz-go's
// keys of the same names are written kafka_<key>, so that no line holds a
// key twice (franz-go's generation is the group's, not the reload's).
var ownKeys = map[string]bool{
	"generation": true, "group": true, "component": true, "function": true, "trigger": true,
	"mode": true, "instance": true, "level": true, "time": true, "message": true, "error": true,
}

// kfakeLogger adapts zerolog to the embedded broker's logger.
type kfakeLogger struct{ log zerolog.Logger }

func (l kfakeLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	var ev *zerolog.Event
	switch level {
	case kfake.LogLevelError:
		ev = l.log.Error()
	case kfake.LogLevelWarn:
		ev = l.log.Warn()
	case kfake.LogLevelInfo:
		ev = l.log.Debug() // one line per connection: noise at info
	default:
		ev = l.log.Trace()
	}
	if ev.Enabled() {
		ev.Msgf(format, args...)
	}
}
