// Package config loads and validates the sluice YAML configuration into
// plain structs, and reports every problem of a file in one run as
// FILE:LINE:COL: message lines, sorted by position (what sluice validate
// prints).
//
// The file is parsed with github.com/goccy/go-yaml into an AST and decoded by
// hand against the schema, rather than by reflection, so that each value keeps
// its line and column, an unknown key can be reported next to a bad duration
// three lines below it, and decoding goes on after the first problem.
//
// # Values
//
//   - ${VAR} and ${VAR:-default} in string values (never in keys) expand from
//     the environment after parsing, so positions stay those of the file. An
//     unset VAR expands to "" (":-" also applies the default to a set but
//     empty VAR, as in sh); "$${" writes a literal "${". A malformed
//     reference ("${", "${1X}") is an error. Numbers, booleans, durations and
//     sizes may be written as ${VAR} too: the expanded text is then parsed.
//   - Secrets (a storage trigger's token, server.admin_token,
//     server.invoke_api.keys and .token) must not be empty, as written or
//     after expansion: "token: ${HOOK_TOKEN}" with HOOK_TOKEN unset would
//     otherwise turn authentication off without a word. ${VAR:-} (a
//     reference with a default) says that empty is meant, for the webhook
//     and admin tokens only, where no token means no authentication (and
//     the admin listener must then be on loopback). Messages never hold a
//     secret's value.
//   - Durations use Go syntax (300ms, 3s, 1h30m); a bare number is an error,
//     as its unit would be a guess.
//   - Sizes are a plain integer of bytes, or an integer followed by a unit,
//     with or without a space, case-insensitive: B, KiB, MiB, GiB, TiB (powers
//     of 1024) or KB, MB, GB, TB (powers of 1000, as in SI and Kubernetes).
//   - Lists of brokers and topics may also be one string of comma-separated
//     items, so that a single ${VAR} can hold them. A command is always a list.
//   - Braces right after '/' or '$' may stay unquoted, even inside a flow
//     mapping ({path: /echo/{id}, token: ${TOKEN}}) where YAML itself
//     would refuse them; other braces in unquoted values of a flow mapping
//     are YAML syntax errors, and quoting the value fixes them.
//
// Anchors, aliases and merge keys work as in YAML; a duplicate key is an
// error. Top-level keys starting with "x-" are ignored, as in Compose files,
// to hold anchored values:
//
//	x-defaults: &defaults {runtime: process, timeout: 5s}
//	functions:
//	  a: {<<: *defaults, command: [a]}
//
// # Defaults
//
// Defaults that belong to the file are applied here and listed on each
// field (server listen addresses, sizes and timeouts, the embedded broker,
// the log, instances and scaling, trigger modes, Kafka start/format/ordering,
// schedule time zone and catch-up). A process or lambda function without
// instances or scaling is instances: 1; instances: N is scaling min = max =
// N; a scaling block's omitted keys are Lambda-like: min 0 (scale to zero),
// max 16, idle 5m. The per-function execution policy (timeout,
// memory, concurrency, queue, batch, retry) is left zero when unset: the
// invoker applies its own defaults, documented in package invoker.
//
// # Positions
//
// Every key read is recorded under a dotted path, so that problems found
// later (a plugin that fails to load, a port in use) can be reported at
// their place in the file with File.Where:
//
//	server.listen
//	functions.NAME, functions.NAME.path, functions.NAME.retry.backoff
//	triggers[I], triggers[I].http, triggers[I].http.path, triggers[I].kafka.filter
//
// I counts from 0 in file order. Function and Trigger also carry the
// position of their own key. Lines and columns count from 1, columns in
// characters (not bytes), as editors do.
package config
