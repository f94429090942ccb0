package main

import (
	"errors"
	"io"
)

func cmdReload(args []string, stdout, stderr io.Writer) error {
	return errors.New("reload: not wired yet")
}
