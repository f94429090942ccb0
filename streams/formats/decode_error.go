package formats

import (
	"errors"
	"strconv"
	"strings"
)

// ErrMalformed is wrapped by every error a decoder of this package returns
// for input it cannot decode: the gateway answers it with 400, a Kafka
// trigger sends the record to dead letter.
var ErrMalformed = errors.New("formats: malformed input")

// DecodeError is malformed input, located by the path of the bad field.
type DecodeError struct {
	// Format names the decoder: "s3", "debezium", "schedule".
	Format string
	// Path leads to the bad field, for example Records[1].s3.object.key;
	// empty when the input as a whole is wrong.
	Path string
	// Msg says what is wrong.
	Msg string
}

// Error returns "formats: FORMAT: PATH: MSG".
func (e *DecodeError) Error() string {
	if e.Path == "" {
		return "formats: " + e.Format + ": " + e.Msg
	}
	return "formats: " + e.Format + ": " + e.Path + ": " + e.Msg
}

// Unwrap returns ErrMalformed.
func (e *DecodeError) Unwrap() error { return ErrMalformed }

// jsonPath builds the paths of DecodeError.
type jsonPath []string

func (p jsonPath) key(k string) jsonPath {
	return append(p[:len(p):len(p)], "."+k)
}

func (p jsonPath) index(i int) jsonPath {
	return append(p[:len(p):len(p)], "["+strconv.Itoa(i)+"]")
}

func (p jsonPath) String() string {
	return strings.TrimPrefix(strings.Join(p, ""), ".")
}

// describe names the JSON type of a value decoded with UseNumber, for
// messages such as "want a string, got a number".
func describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return "a number"
}
