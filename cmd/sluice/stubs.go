package main

import (
	"context"
	"errors"
	"io"
)

func cmdServe(args []string, stderr io.Writer) error { return errors.New("serve: not wired yet") }
func cmdInvoke(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return errors.New("invoke: not wired yet")
}
func cmdReload(args []string, stdout, stderr io.Writer) error {
	return errors.New("reload: not wired yet")
}
func benchSuite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return errors.New("suite: not wired yet")
}
