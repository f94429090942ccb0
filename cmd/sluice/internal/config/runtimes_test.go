package config

import (
	"reflect"
	"strings"
	"testing"
)

// TestManagedRuntimes reads the keys of runtime python and nodejs, the
// spelled Lambda runtime names, and handler and dir of runtime lambda.
func TestManagedRuntimes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, src string
		want      Function
	}{
		{"python", `{runtime: python, handler: lambda_function.lambda_handler, code: fns/py}`,
			Function{Runtime: RuntimePython, Handler: "lambda_function.lambda_handler", Code: "fns/py", Instances: 1}},
		{"python3.12", `{runtime: python3.12, handler: src/app.handler}`,
			Function{Runtime: RuntimePython, RuntimeVersion: "3.12", Handler: "src/app.handler", Instances: 1}},
		{"nodejs", `{runtime: nodejs, handler: index.handler, code: web, instances: 3}`,
			Function{Runtime: RuntimeNodejs, Handler: "index.handler", Code: "web", Instances: 3}},
		{"nodejs20.x", `{runtime: nodejs20.x, handler: index.handler, interpreter: /opt/node/bin/node}`,
			Function{Runtime: RuntimeNodejs, RuntimeVersion: "20", Handler: "index.handler", Interpreter: "/opt/node/bin/node", Instances: 1}},
		{"java21", `{runtime: java21, handler: example.Hello::handleRequest, code: build/fn.jar}`,
			Function{Runtime: RuntimeJava, RuntimeVersion: "21", Handler: "example.Hello::handleRequest", Code: "build/fn.jar", Instances: 1}},
		{"lambda handler and dir", `{runtime: lambda, command: [./bootstrap], handler: function.handler, dir: fns/bash}`,
			Function{Runtime: RuntimeLambda, Command: []string{"./bootstrap"}, Handler: "function.handler", Dir: "fns/bash", Instances: 1}},
		{"lambda env", `{runtime: lambda, command: [b], env: {MY_VAR: x}}`,
			Function{Runtime: RuntimeLambda, Command: []string{"b"}, Env: map[string]string{"MY_VAR": "x"}, Instances: 1}},
		{"process may set _HANDLER", `{runtime: process, command: [p], env: {_HANDLER: x}}`,
			Function{Runtime: RuntimeProcess, Command: []string{"p"}, Env: map[string]string{"_HANDLER": "x"}, Instances: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := mustParse(t, "functions:\n  f: "+tc.src+"\n", noEnv)
			got := f.Functions[0]
			got.Name, got.Pos = "", Pos{}
			if !tc.want.Scaling.Set && tc.want.Instances > 0 {
				tc.want.Scaling = Scaling{Min: tc.want.Instances, Max: tc.want.Instances} // instances: N is min = max = N
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
			if name := got.RuntimeName(); tc.name != name && strings.HasPrefix(tc.name, got.Runtime) && !strings.Contains(tc.name, " ") {
				t.Errorf("RuntimeName() = %q, want %q", name, tc.name)
			}
		})
	}
}

// TestManagedRuntimeProblems: every problem of the new keys, positioned.
func TestManagedRuntimeProblems(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, src string
		want      []string
	}{
		{"no handler", `{runtime: python}`, []string{
			`t.yaml:2:3: function "f": runtime python needs handler, FILE.FUNCTION (as lambda_function.lambda_handler)`}},
		{"no handler node", `{runtime: nodejs20.x}`, []string{
			`t.yaml:2:3: function "f": runtime nodejs needs handler, FILE.FUNCTION (as index.handler)`}},
		{"handler without function", `{runtime: python, handler: lambda_function}`, []string{
			`t.yaml:2:33: handler: "lambda_function" is not FILE.FUNCTION (as lambda_function.lambda_handler or src/index.handler)`}},
		{"handler empty", `{runtime: nodejs, handler: ""}`, []string{
			`t.yaml:2:33: handler: must not be empty`}},
		{"handler outside code", `{runtime: nodejs, handler: ../x/index.handler}`, []string{
			`t.yaml:2:33: handler: "../x/index.handler": FILE must stay inside the code folder`}},
		{"handler absolute", `{runtime: nodejs, handler: /x/index.handler}`, []string{
			`t.yaml:2:33: handler: "/x/index.handler": FILE is relative to code:, not absolute`}},
		{"command on python", `{runtime: python, handler: a.b, command: [x]}`, []string{
			`t.yaml:2:38: command: only used by runtime process and lambda, not python`}},
		{"code on lambda", `{runtime: lambda, command: [x], code: y}`, []string{
			`t.yaml:2:38: code: only used by runtime python, nodejs and java, not lambda`}},
		{"dir on nodejs", `{runtime: nodejs, handler: a.b, dir: y}`, []string{
			`t.yaml:2:38: dir: only used by runtime lambda, not nodejs`}},
		{"interpreter on process", `{runtime: process, command: [x], interpreter: y}`, []string{
			`t.yaml:2:39: interpreter: only used by runtime python, nodejs and java, not process`}},
		{"empty code", `{runtime: python, handler: a.b, code: ""}`, []string{
			`t.yaml:2:44: code: must not be empty`}},
		{"empty lambda handler", `{runtime: lambda, command: [x], handler: ""}`, []string{
			`t.yaml:2:47: handler: must not be empty`}},
		{"reserved _HANDLER on lambda", `{runtime: lambda, command: [x], env: {_HANDLER: index.handler}}`, []string{
			`t.yaml:2:44: env._HANDLER: reserved: Sluice sets it for the Lambda runtime from the function's handler: key`}},
		{"reserved on python", `{runtime: python, handler: a.b, env: {AWS_REGION: eu-west-1, LAMBDA_TASK_ROOT: /x}}`, []string{
			`t.yaml:2:44: env.AWS_REGION: reserved: Sluice sets it for the Lambda runtime`,
			`t.yaml:2:67: env.LAMBDA_TASK_ROOT: reserved: Sluice sets it for the Lambda runtime from the function's dir: (or code:) key`}},
		{"java without handler", `{runtime: java21}`, []string{
			`t.yaml:2:3: function "f": runtime java needs handler, pkg.Class::method (as example.Hello::handleRequest)`}},
		{"java handler spelled as python's", `{runtime: java, handler: src/app.handler}`, []string{
			`t.yaml:2:31: handler: "src/app.handler" is not pkg.Class::method or pkg.Class (as example.Hello::handleRequest)`}},
		{"dir on java", `{runtime: java, handler: a.B, dir: y}`, []string{
			`t.yaml:2:36: dir: only used by runtime lambda, not java`}},
		{"provided", `{runtime: provided.al2023}`, []string{
			`t.yaml:2:16: runtime: "provided.al2023" is Lambda's custom runtime: write runtime: lambda with the bootstrap as its command`}},
		{"python2", `{runtime: python2.7}`, []string{
			`t.yaml:2:16: runtime: unknown runtime "python2.7" (want go, plugin, process, lambda, python, nodejs or java; python3.12, nodejs20.x and java21 are read as python, nodejs and java)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			equalLines(t, problems(t, "functions:\n  f: "+tc.src+"\n", noEnv), tc.want)
		})
	}
}
