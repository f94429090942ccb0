// Package main is a plugin that exports no Handle.
package main

// Handler is not the name a plugin must export.
func Handler() {}

func main() {}
