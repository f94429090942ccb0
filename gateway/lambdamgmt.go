package gateway

import (
	"crypto/subtle"
	"encoding/json"
	"runtime"
	"sort"
	"strconv"
	"time"

	"github.com/valyala/fasthttp"
)

// The management reads of the Lambda API: ListFunctions, GetFunction and
// GetFunctionConfiguration, so that `aws lambda list-functions` and SDK
// code that checks a function exists work against Sluice.

const (
	// lambdaTimeLayout is LastModified as Lambda writes it,
	// 2019-10-24T17:00:57.000+0000.
	lambdaTimeLayout = "2006-01-02T15:04:05.000-0700"
	// maskedValue stands for an environment value shown without the
	// admin token.
	maskedValue      = "****"
	defaultListItems = 50
	maxListItems     = 10000
)

var (
	strAdminTokenHeader = []byte("X-Sluice-Admin-Token")
	strMaxItems         = []byte("MaxItems")
	strMarker           = []byte("Marker")
)

// functionConfiguration is Lambda's FunctionConfiguration, the members
// Sluice can fill.
type functionConfiguration struct {
	FunctionName     string
	FunctionArn      string
	Runtime          string `json:",omitempty"`
	Handler          string `json:",omitempty"`
	CodeSize         int64
	Description      string
	Timeout          int
	MemorySize       int `json:",omitempty"`
	LastModified     string
	Version          string
	Environment      *environment `json:",omitempty"`
	State            string
	LastUpdateStatus string
	PackageType      string
	Architectures    []string
}

type environment struct {
	Variables map[string]string
}

// architecture is this machine's, in Lambda's words.
func architecture() string {
	if runtime.GOARCH == "arm64" {
		return "arm64"
	}
	return "x86_64"
}

// configuration describes f; env values are shown when showEnv.
func (a *LambdaAPI) configuration(f *lambdaFn, showEnv bool) functionConfiguration {
	info := a.cfg.Functions[f.name]
	c := functionConfiguration{
		FunctionName:     f.name,
		FunctionArn:      a.arn(f.name, ""),
		Runtime:          info.Runtime,
		Handler:          info.Handler,
		Timeout:          int((info.Timeout + time.Second - 1) / time.Second),
		MemorySize:       info.MemoryMB,
		LastModified:     a.cfg.LoadedAt.UTC().Format(lambdaTimeLayout),
		Version:          lambdaExecutedVersion,
		State:            "Active",
		LastUpdateStatus: "Successful",
		PackageType:      "Zip",
		Architectures:    []string{architecture()},
	}
	if len(info.Env) > 0 {
		vars := make(map[string]string, len(info.Env))
		for k, v := range info.Env {
			if !showEnv {
				v = maskedValue
			}
			vars[k] = v
		}
		c.Environment = &environment{Variables: vars}
	}
	return c
}

// showEnv reports whether the request carries the admin token.
func (a *LambdaAPI) showEnv(ctx *fasthttp.RequestCtx) bool {
	if a.admin == nil {
		return false
	}
	got := ctx.Request.Header.PeekBytes(strAdminTokenHeader)
	return len(got) > 0 && subtle.ConstantTimeCompare(got, a.admin) == 1
}

func writeJSON(ctx *fasthttp.RequestCtx, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("BUG: marshal a function configuration: " + err.Error())
	}
	setJSONBody(&ctx.Response, b)
}

// listFunctions serves ListFunctions, GET /2015-03-31/functions/, in name
// order, MaxItems (default 50) at a time; NextMarker is the last name of a
// page that has more after it.
func (a *LambdaAPI) listFunctions(ctx *fasthttp.RequestCtx, _ *Params) {
	args := ctx.QueryArgs()
	limit := defaultListItems
	if v := args.PeekBytes(strMaxItems); len(v) > 0 {
		n, err := strconv.Atoi(string(v))
		if err != nil || n < 1 || n > maxListItems {
			writeLambdaError(ctx, fasthttp.StatusBadRequest, "InvalidParameterValueException", "User",
				"MaxItems must be an integer from 1 to "+strconv.Itoa(maxListItems))
			return
		}
		limit = n
	}
	names := a.names
	if m := args.PeekBytes(strMarker); len(m) > 0 {
		marker := string(m)
		names = names[sort.SearchStrings(names, marker):]
		if len(names) > 0 && names[0] == marker {
			names = names[1:]
		}
	}
	out := struct {
		Functions  []functionConfiguration
		NextMarker string `json:",omitempty"`
	}{Functions: []functionConfiguration{}}
	show := a.showEnv(ctx)
	for i, n := range names {
		if i == limit {
			out.NextMarker = names[i-1]
			break
		}
		out.Functions = append(out.Functions, a.configuration(a.fns[n], show))
	}
	writeJSON(ctx, out)
}

// getFunction serves GetFunction, GET /2015-03-31/functions/{name}.
func (a *LambdaAPI) getFunction(ctx *fasthttp.RequestCtx, p *Params) {
	f := a.lookup(ctx, p)
	if f == nil {
		return
	}
	writeJSON(ctx, struct {
		Configuration functionConfiguration
		Tags          map[string]string
	}{a.configuration(f, a.showEnv(ctx)), map[string]string{}})
}

// getFunctionConfiguration serves GetFunctionConfiguration,
// GET /2015-03-31/functions/{name}/configuration.
func (a *LambdaAPI) getFunctionConfiguration(ctx *fasthttp.RequestCtx, p *Params) {
	f := a.lookup(ctx, p)
	if f == nil {
		return
	}
	writeJSON(ctx, a.configuration(f, a.showEnv(ctx)))
}
