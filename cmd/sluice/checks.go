package main

import (
	"github.com/sluicehq/sluice/cmd/sluice/internal/config"
	"github.com/sluicehq/sluice/configs"
)

func defaultConfig() []byte { return configs.Default }

// checkRuntime runs the checks that need more than the file: none yet
// beyond the loader's own; plugin and filter checks hook in here.
func checkRuntime(f *config.File) error { return nil }
