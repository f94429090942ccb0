package main

import (
	"encoding/json"

	"github.com/sluicehq/sluice/cmd/sluice/internal/config"
	"github.com/sluicehq/sluice/configs"
	"github.com/sluicehq/sluice/invoker/filter"
)

func defaultConfig() []byte { return configs.Default }

// checkRuntime runs the checks that need more than the file: none yet
// beyond the loader's own; plugin and filter checks hook in here.
func checkRuntime(f *config.File) error { return nil }

func init() {
	// The loader reports filter problems at their position in the file.
	config.ValidateFilter = func(p json.RawMessage) error {
		_, err := filter.Compile(p)
		return err
	}
}
