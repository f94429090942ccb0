package main

import (
	"encoding/json"
	"os"
	"path/filepath"

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

// enterCheckout makes the dev default's relative paths (bin/plugins/...,
// plugins/examples/...) resolve when bin/sluice is started from another
// folder: if the working directory is not a Sluice checkout but the folder
// above the binary is, work from there.
func enterCheckout() {
	if _, err := os.Stat("configs/sluice.yaml"); err == nil {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	root := filepath.Dir(filepath.Dir(exe))
	if _, err := os.Stat(filepath.Join(root, "configs", "sluice.yaml")); err == nil {
		_ = os.Chdir(root)
	}
}
