package main

import (
	"github.com/sluicehq/sluice/cmd/sluice/internal/config"
	"github.com/sluicehq/sluice/streams/formats"
)

// decoderFor returns the decoder of a Kafka trigger's format.
func decoderFor(format string) formats.Decoder {
	switch format {
	case config.FormatS3:
		return formats.S3{}
	case config.FormatCDC:
		return formats.Debezium{}
	}
	return nil
}

// kafkaDecoder is the decoder of fn's first Kafka trigger, so that `sluice
// invoke --as kafka` builds the envelope that trigger would; raw without one.
func kafkaDecoder(cfg *config.File, fn *config.Function) formats.Decoder {
	for _, t := range cfg.Triggers {
		if t.Function == fn.Name && t.Kind == config.KindKafka {
			return decoderFor(t.Kafka.Format)
		}
	}
	return decoderFor(config.FormatRaw)
}
