package streams

import (
	"context"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Headers added to every dead-lettered record.
const (
	// HeaderError holds the error that finally failed the record.
	HeaderError = "sluice-error"
	// HeaderFunction names the function the record was for.
	HeaderFunction = "sluice-function"
	// HeaderAttempts is the number of invocations tried, in decimal; 0 for
	// a poison record that could not be decoded.
	HeaderAttempts = "sluice-attempts"
	// HeaderOrigin is "topic/partition/offset" of the original record.
	HeaderOrigin = "sluice-origin"
	// HeaderTrigger names the trigger that consumed the record.
	HeaderTrigger = "sluice-trigger"
)

// deadLetterRecord copies r for the dead-letter topic: the original key,
// value and headers, plus Sluice's headers.
func (t *Trigger) deadLetterRecord(r *rec, cause error) (dl *kgo.Record, origin string) {
	kr := r.kr
	hs := make([]kgo.RecordHeader, 0, len(kr.Headers)+5)
	hs = append(hs, kr.Headers...)
	if t.tr != nil {
		// The dead letter continues the record's trace from its span.
		hs = setTraceparent(hs, r.span.TraceParent())
	}
	o := make([]byte, 0, len(kr.Topic)+24)
	o = append(o, kr.Topic...)
	o = append(o, '/')
	o = strconv.AppendInt(o, int64(kr.Partition), 10)
	o = append(o, '/')
	o = strconv.AppendInt(o, kr.Offset, 10)
	msg := "unknown error"
	if cause != nil {
		msg = cause.Error()
	}
	hs = append(hs,
		kgo.RecordHeader{Key: HeaderError, Value: []byte(msg)},
		kgo.RecordHeader{Key: HeaderFunction, Value: []byte(t.fn.Name())},
		kgo.RecordHeader{Key: HeaderAttempts, Value: strconv.AppendInt(nil, int64(r.attempts), 10)},
		kgo.RecordHeader{Key: HeaderOrigin, Value: o},
		kgo.RecordHeader{Key: HeaderTrigger, Value: []byte(t.cfg.Name)},
	)
	return &kgo.Record{Topic: t.cfg.DeadLetterTopic, Key: kr.Key, Value: kr.Value, Headers: hs, Timestamp: kr.Timestamp}, string(o)
}

// produceDeadLetter writes dl until the broker acknowledges it, backing off
// between tries, or until the record's partition is abandoned or the
// trigger closes: a record is never committed before its dead letter is
// safe.
func (t *Trigger) produceDeadLetter(r *rec, dl *kgo.Record, origin string, cause error, attempts int, abandon <-chan struct{}) {
	defer t.dlqWG.Done()
	wait := t.retry.Backoff
	for {
		// A fresh record per try: kgo keeps the context and producer state of
		// a record it has seen, and a reused one fails with the old context.
		try := &kgo.Record{Topic: dl.Topic, Key: dl.Key, Value: dl.Value, Headers: dl.Headers, Timestamp: dl.Timestamp}
		ctx, cancel := context.WithTimeout(t.dlqCtx, 30*time.Second)
		err := t.cl.ProduceSync(ctx, try).FirstErr()
		cancel()
		if err == nil {
			t.slog.Warn().Str("origin", origin).AnErr("cause", cause).Int("attempts", attempts).
				Str("dead_letter_topic", dl.Topic).Msg("record dead-lettered")
			t.post(loopMsg{dead: r})
			return
		}
		t.m.deadLetterErrors.Inc()
		t.slog.Error().Err(err).Str("dead_letter_topic", dl.Topic).Str("origin", origin).
			Msg("cannot produce dead letter; retrying, the partition does not commit past it")
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-abandon:
			timer.Stop()
			t.post(loopMsg{dead: r, deadErr: err})
			return
		case <-t.dlqCtx.Done():
			timer.Stop()
			t.post(loopMsg{dead: r, deadErr: err})
			return
		}
		wait = min(2*wait, t.retry.MaxBackoff)
	}
}
