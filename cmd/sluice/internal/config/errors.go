package config

import (
	"fmt"
	"slices"
	"strings"
)

// Error is one problem of a file, at a position.
type Error struct {
	File string
	Pos  Pos // of the offending key or value; {1, 1} when the file as a whole is at fault
	Msg  string
}

// Error returns "FILE:LINE:COL: message".
func (e Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Pos.Line, e.Pos.Col, e.Msg)
}

// Errors is every problem Parse found in a file, sorted by position (problems
// at one position keep the order they were found in), without duplicates.
// Parse returns it as a *Errors; use errors.As to get the list.
type Errors struct {
	List []Error
}

// Error returns the problems, one "FILE:LINE:COL: message" per line.
func (e *Errors) Error() string {
	var b strings.Builder
	for i, x := range e.List {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(x.Error())
	}
	return b.String()
}

// sortErrors orders errs by position and drops exact duplicates, which an
// anchor used twice produces.
func sortErrors(errs []Error) []Error {
	slices.SortStableFunc(errs, func(a, b Error) int {
		if a.Pos.Line != b.Pos.Line {
			return a.Pos.Line - b.Pos.Line
		}
		return a.Pos.Col - b.Pos.Col
	})
	out := errs[:0]
	seen := make(map[Error]bool, len(errs))
	for _, e := range errs {
		if !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	return out
}
