package main

import (
	"context"
	"errors"
	"io"
)

func cmdReload(args []string, stdout, stderr io.Writer) error {
	return errors.New("reload: not wired yet")
}
func benchSuite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("suite: not wired yet")
}
