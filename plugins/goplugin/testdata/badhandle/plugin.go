// Package main is a plugin whose Handle has the wrong signature.
package main

// Handle is not a plugins.Handler.
func Handle(s string) error { return nil }

func main() {}
