// Package filter matches events against EventBridge-style patterns, the
// `filter:` of every trigger.
//
// A pattern is a JSON object over the CloudEvents envelope as a function
// receives it: top-level keys are attribute names (type, source, subject, id,
// time, datacontenttype, and extensions such as partitionkey, kafkatopic,
// kafkapartition, kafkaoffset) and "data", whose nested objects match fields
// of the JSON payload. A key maps either to an array of alternatives (any may
// match) or, below "data", to a nested object; several keys must all match.
// "$or" at any level takes an array of patterns, any of which may match.
//
// The alternatives of an array are exact values (strings, numbers, booleans,
// null) and content matchers, each an object with one key:
//
//	{"prefix": "img/"}            {"prefix": {"equals-ignore-case": "IMG/"}}
//	{"suffix": ".png"}            {"suffix": {"equals-ignore-case": ".PNG"}}
//	{"equals-ignore-case": "x"}   {"wildcard": "img/*.png"}
//	{"anything-but": "x"}         {"anything-but": ["x", 5]}
//	{"anything-but": {"prefix": "tmp/"}}   (also suffix, equals-ignore-case, wildcard)
//	{"numeric": [">", 0, "<=", 5]}         {"numeric": ["=", 3]}
//	{"exists": true}              {"exists": false}
//	{"cidr": "10.0.0.0/8"}
//
// Semantics follow Amazon EventBridge: strings match strings and numbers
// numbers (compared as float64, so 3 matches 3.0); an array in the event
// matches when any of its elements matches; under an array of objects, the
// fields of one nested pattern must all match within the same element.
// A field is missing when it is absent or an empty array; only
// {"exists": false} matches a missing field, and anything-but matches only a
// present value. Unlike EventBridge, {"exists": true} also matches a field
// holding an object.
//
// Data that is not JSON (data_base64 in the envelope) has no fields; text data
// (a text/* content type) is a string for matchers on "data" itself. The
// kafkaheaders extension (a string of JSON) cannot be matched.
//
// Compile checks a pattern once, when the configuration loads, and reports
// the path of every mistake; Match then scans the event's data once per
// object level the pattern names, without decoding it into Go values, and
// allocates nothing in the common case.
package filter
