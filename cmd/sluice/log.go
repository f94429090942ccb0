package main

import (
	"io"
	"os"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/sluicehq/sluice/cmd/sluice/internal/config"
)

// generationEnv carries the reload generation from a process to the one
// that replaces it: 1 for the first process, +1 per reload.
const generationEnv = "SLUICE_GENERATION"

func generation() int {
	n, err := strconv.Atoi(os.Getenv(generationEnv))
	if err != nil || n < 1 {
		return 1
	}
	return n
}

// newLogger builds the process logger: zerolog JSON (or console) on w,
// every line tagged with the reload generation.
func newLogger(c config.Log, w io.Writer, gen int) zerolog.Logger {
	zerolog.TimeFieldFormat = time.RFC3339Nano
	zerolog.DurationFieldUnit = time.Millisecond // duration fields are named *_ms
	if c.Format == "console" {
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05.000"}
	}
	level, err := zerolog.ParseLevel(c.Level)
	if err != nil || c.Level == "" {
		level = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(level).Hook(levelHook{}).With().Timestamp().Int("generation", gen).Logger()
}

// levelHook gives the lines written with Log() (no level: they pass
// whatever the configured level, like "listening") level info, so that every
// line has a level to filter on.
type levelHook struct{}

func (levelHook) Run(e *zerolog.Event, level zerolog.Level, _ string) {
	if level == zerolog.NoLevel {
		e.Str(zerolog.LevelFieldName, zerolog.InfoLevel.String())
	}
}
