package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/configs"
)

// TestEmptySecrets checks that a secret empty after ${VAR} expansion is an
// error at its position, for every secret key, and that ${VAR:-} opts in
// to empty where no secret means no authentication.
func TestEmptySecrets(t *testing.T) {
	t.Parallel()
	lookup := env(map[string]string{"SET": "s3cret", "EMPTY": "", "BLANK": "  "})
	const fn = "functions:\n  f: {runtime: go, handler: echo}\n"
	for _, tc := range []struct {
		name string
		src  string
		want []string // nil: parses
	}{
		{"webhook token unset", fn + "triggers:\n  - storage: {path: /h, function: f, token: \"${HOOK_TOKEN}\"}\n", []string{
			`t.yaml:4:45: token: ${HOOK_TOKEN} is unset or empty, which would turn authentication off: set HOOK_TOKEN, or write ${HOOK_TOKEN:-} to run without one`,
		}},
		{"webhook token set but empty", fn + "triggers:\n  - storage: {path: /h, function: f, token: \"${EMPTY}\"}\n", []string{
			`t.yaml:4:45: token: ${EMPTY} is unset or empty, which would turn authentication off: set EMPTY, or write ${EMPTY:-} to run without one`,
		}},
		{"webhook token written empty", fn + "triggers:\n  - storage: {path: /h, function: f, token: \"\"}\n", []string{
			`t.yaml:4:45: token: must not be empty (remove the key to run without one)`,
		}},
		{"webhook token null", fn + "triggers:\n  - storage:\n      path: /h\n      function: f\n      token:\n", []string{
			`t.yaml:7:7: token: must not be empty (remove the key to run without one)`,
		}},
		{"webhook token blank", fn + "triggers:\n  - storage: {path: /h, function: f, token: \"${BLANK}\"}\n", []string{
			`t.yaml:4:45: token: ${BLANK} is unset or empty, which would turn authentication off: set BLANK, or write ${BLANK:-} to run without one`,
		}},
		{"webhook token opted out", fn + "triggers:\n  - storage: {path: /h, function: f, token: \"${HOOK_TOKEN:-}\"}\n", nil},
		{"webhook token set", fn + "triggers:\n  - storage: {path: /h, function: f, token: \"${SET}\"}\n", nil},
		{"admin token unset", "server:\n  admin_token: ${ADMIN}\n", []string{
			`t.yaml:2:16: admin_token: ${ADMIN} is unset or empty, which would turn authentication off: set ADMIN, or write ${ADMIN:-} to run without one`,
		}},
		{"admin token opted out on loopback", "server:\n  admin_token: ${ADMIN:-}\n", nil},
		{"admin token prefix of an unset var", "server:\n  admin_token: \"${A}${B}\"\n", []string{
			`t.yaml:2:16: admin_token: ${A} is unset or empty, which would turn authentication off: set A, or write ${A:-} to run without one`,
		}},
		{"invoke key secret unset", "server:\n  invoke_api: {auth: sigv4, keys: {AKID: \"${SECRET}\"}}\n", []string{
			`t.yaml:2:42: AKID: ${SECRET} is unset or empty; a secret must not be empty: set SECRET`,
		}},
		{"invoke key secret defaulted empty", "server:\n  invoke_api: {auth: sigv4, keys: {AKID: \"${SECRET:-}\"}}\n", []string{
			`t.yaml:2:42: AKID: expands to an empty string; a secret must not be empty`,
		}},
		{"invoke key secret written empty", "server:\n  invoke_api: {auth: sigv4, keys: {AKID: \"\"}}\n", []string{
			`t.yaml:2:42: AKID: must not be empty`,
		}},
		{"invoke token unset", "server:\n  invoke_api: {auth: token, token: \"${T}\"}\n", []string{
			`t.yaml:2:36: token: ${T} is unset or empty; a secret must not be empty: set T`,
		}},
		{"invoke token defaulted empty", "server:\n  invoke_api: {auth: token, token: \"${T:-}\"}\n", []string{
			`t.yaml:2:36: token: expands to an empty string; a secret must not be empty`,
		}},
		{"invoke secrets set", "server:\n  invoke_api: {auth: sigv4, keys: {AKID: \"${SET}\", AKID2: x}}\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := problems(t, tc.src, lookup)
			equalLines(t, got, tc.want)
			if strings.Contains(strings.Join(got, "\n"), "s3cret") {
				t.Errorf("a message holds the secret: %v", got)
			}
		})
	}
}

// TestInvokeAPI checks server.invoke_api: its defaults, and its problems
// with their positions.
func TestInvokeAPI(t *testing.T) {
	t.Parallel()
	lookup := env(map[string]string{"SECRET": "s3cret", "T": "tok"})
	for _, tc := range []struct {
		name string
		src  string
		want InvokeAPI
	}{
		{"default on loopback", "server: {listen: \"127.0.0.1:8080\"}\n", InvokeAPI{Enabled: true, Auth: AuthNone}},
		{"default on localhost", "server: {listen: \"localhost:8080\"}\n", InvokeAPI{Enabled: true, Auth: AuthNone}},
		{"default off on a public listener", "server: {listen: \":8080\"}\n", InvokeAPI{Enabled: false, Auth: AuthNone}},
		{"default on without listen: the default listen is loopback", "log: {level: info}\n", InvokeAPI{Enabled: true, Auth: AuthNone}},
		{"disabled on loopback", "server: {listen: \"127.0.0.1:8080\", invoke_api: {enabled: false}}\n", InvokeAPI{Auth: AuthNone}},
		{"written means on", "server:\n  listen: \":8080\"\n  invoke_api: {auth: token, token: \"${T}\"}\n", InvokeAPI{Enabled: true, Auth: AuthToken, Token: "tok"}},
		{"sigv4", "server:\n  listen: \"0.0.0.0:8080\"\n  invoke_api: {enabled: true, auth: sigv4, keys: {AKIDEXAMPLE: \"${SECRET}\"}, region: eu-west-1}\n",
			InvokeAPI{Enabled: true, Auth: AuthSigV4, Keys: map[string]string{"AKIDEXAMPLE": "s3cret"}, Region: "eu-west-1"}},
		{"as documented, unquoted", "server:\n  listen: \":8080\"\n  invoke_api: {enabled: true, auth: sigv4, keys: {AKIDEXAMPLE: ${SECRET}}}   # or auth: token, token: ${T}\n",
			InvokeAPI{Enabled: true, Auth: AuthSigV4, Keys: map[string]string{"AKIDEXAMPLE": "s3cret"}}},
		{"off on a public listener", "server:\n  listen: \":8080\"\n  invoke_api: {enabled: false}\n", InvokeAPI{Auth: AuthNone}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := mustParse(t, tc.src, lookup)
			if !reflect.DeepEqual(f.Server.InvokeAPI, tc.want) {
				t.Errorf("got %+v, want %+v", f.Server.InvokeAPI, tc.want)
			}
		})
	}

	for _, tc := range []struct {
		name string
		src  string
		want []string
	}{
		{"auth none on a public listener", "server:\n  listen: \":8080\"\n  invoke_api: {enabled: true, auth: none}\n", []string{
			`t.yaml:3:37: invoke_api: auth none on listen ":8080", which is not a loopback address, lets anyone who reaches the port invoke every function: set auth: sigv4 with keys, or auth: token with token, or enabled: false`,
		}},
		{"no auth on a public listener", "server:\n  listen: \"0.0.0.0:8080\"\n  invoke_api: {enabled: true}\n", []string{
			`t.yaml:3:3: invoke_api: auth none on listen "0.0.0.0:8080", which is not a loopback address, lets anyone who reaches the port invoke every function: set auth: sigv4 with keys, or auth: token with token, or enabled: false`,
		}},
		{"sigv4 without keys", "server:\n  invoke_api: {auth: sigv4}\n", []string{
			`t.yaml:2:3: invoke_api: auth sigv4 needs keys, a mapping of access key id to secret access key`,
		}},
		{"sigv4 with empty keys", "server:\n  invoke_api: {auth: sigv4, keys: {}}\n", []string{
			`t.yaml:2:35: keys: needs at least one access key (ACCESS_KEY_ID: SECRET)`,
		}},
		{"token without token", "server:\n  invoke_api: {auth: token}\n", []string{
			`t.yaml:2:3: invoke_api: auth token needs token`,
		}},
		{"keys with token auth", "server:\n  invoke_api: {auth: token, token: t, keys: {A: b}}\n", []string{
			`t.yaml:2:39: keys: only used with auth sigv4`,
		}},
		{"token with sigv4 auth", "server:\n  invoke_api: {auth: sigv4, keys: {A: b}, token: t}\n", []string{
			`t.yaml:2:43: token: only used with auth token`,
		}},
		{"unknown auth", "server:\n  invoke_api: {auth: basic}\n", []string{
			`t.yaml:2:22: auth: unknown auth "basic" (want none, sigv4 or token)`,
		}},
		{"bad key id", "server:\n  invoke_api: {auth: sigv4, keys: {\"AK/ID\": s}}\n", []string{
			`t.yaml:2:36: keys: access key id "AK/ID": want 1 to 128 letters, digits, '_' or '-'`,
		}},
		{"bad region", "server:\n  invoke_api: {region: US_EAST}\n", []string{
			`t.yaml:2:24: region: "US_EAST" is not a region name (want lower-case letters, digits and '-', like us-east-1)`,
		}},
		{"unknown key", "server:\n  invoke_api: {enabeld: true}\n", []string{
			`t.yaml:2:16: unknown key "enabeld" (did you mean "enabled"?)`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			equalLines(t, problems(t, tc.src, lookup), tc.want)
		})
	}
}

// TestDevDefaultLoopback checks that the embedded dev default, which
// serves the Lambda API without auth, listens on loopback only.
func TestDevDefaultLoopback(t *testing.T) {
	t.Parallel()
	f, err := ParseEnv("configs/sluice.yaml", configs.Default, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if s := f.Server; !isLoopback(s.Listen) || !s.InvokeAPI.Enabled || s.InvokeAPI.Auth != AuthNone {
		t.Fatalf("listen %q, invoke API %+v: want loopback with the API open", s.Listen, s.InvokeAPI)
	}
}
