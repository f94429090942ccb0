package config

import (
	"fmt"
	"strings"

	"github.com/goccy/go-yaml/ast"
)

// secret returns e's value, a secret: a token or a secret access key. A
// secret that is empty or blank, as written or after ${VAR} expansion, is
// an error:
// "token: ${HOOK_TOKEN}" with HOOK_TOKEN unset would otherwise turn
// authentication off without a word. When emptyOK (where no secret means
// no authentication, and that is harmless or refused elsewhere), a
// reference with a default, ${VAR:-}, says that empty is meant. Messages
// never hold the value.
func (d *decoder) secret(e kv, emptyOK bool) (string, bool) {
	s, ok := d.str(e)
	if !ok || strings.TrimSpace(s) != "" {
		return s, ok
	}
	// Blank is empty: spaces are no secret.
	raw := ""
	if _, null := e.val.(*ast.NullNode); !null {
		raw, _ = scalarText(e.val)
	}
	names, defaulted := references(raw)
	switch {
	case defaulted && emptyOK:
		return "", true
	case defaulted:
		d.errorf(e.vpos, "%s: expands to an empty string; a secret must not be empty", e.label())
	case len(names) > 0 && emptyOK:
		d.errorf(e.vpos, "%s: ${%s} is unset or empty, which would turn authentication off: set %s, or write ${%s:-} to run without one",
			e.label(), names[0], names[0], names[0])
	case len(names) > 0:
		d.errorf(e.vpos, "%s: ${%s} is unset or empty; a secret must not be empty: set %s", e.label(), names[0], names[0])
	case emptyOK:
		d.errorf(e.vpos, "%s: must not be empty (remove the key to run without one)", e.label())
	default:
		d.errorf(e.vpos, "%s: must not be empty", e.label())
	}
	return "", false
}

// setSecret stores e's secret value in *dst.
func (d *decoder) setSecret(dst *string, emptyOK bool) func(kv) {
	return func(e kv) {
		if s, ok := d.secret(e, emptyOK); ok {
			*dst = s
		}
	}
}

// references returns the names of the ${NAME} and ${NAME:-default}
// references in raw, and whether any has a default.
func references(raw string) (names []string, defaulted bool) {
	for i := 0; i < len(raw); {
		switch {
		case strings.HasPrefix(raw[i:], "$${"):
			i += 3
		case strings.HasPrefix(raw[i:], "${"):
			end := strings.IndexByte(raw[i+2:], '}')
			if end < 0 {
				return names, defaulted
			}
			name, _, hasDef := strings.Cut(raw[i+2:i+2+end], ":-")
			names = append(names, name)
			defaulted = defaulted || hasDef
			i += 3 + end
		default:
			i++
		}
	}
	return names, defaulted
}

var authModes = []string{AuthNone, AuthSigV4, AuthToken}

// invokeAPI decodes server.invoke_api. What needs server.listen is
// checked with the whole file (checkInvokeAPI).
func (d *decoder) invokeAPI(e kv, a *InvokeAPI) {
	a.Enabled = true // writing the section asks for the API
	var keys, token kv
	ok := d.object(e, fields{
		"enabled": d.setBool(&a.Enabled),
		"auth":    d.setEnum(&a.Auth, "auth", authModes...),
		"keys":    func(x kv) { keys = x; a.Keys = d.accessKeys(x) },
		"token":   func(x kv) { token = x; d.setSecret(&a.Token, false)(x) },
		"region": func(x kv) {
			s, ok := d.str(x)
			if !ok || s == "" {
				return
			}
			if strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
				d.errorf(x.vpos, "region: %q is not a region name (want lower-case letters, digits and '-', like us-east-1)", s)
				return
			}
			a.Region = s
		},
	})
	if !ok {
		return
	}
	switch a.Auth {
	case AuthSigV4:
		if keys.path == "" {
			d.errorf(e.kpos, "invoke_api: auth sigv4 needs keys, a mapping of access key id to secret access key")
		} else if len(a.Keys) == 0 && !d.bad[keys.path] {
			d.errorf(keys.vpos, "keys: needs at least one access key (ACCESS_KEY_ID: SECRET)")
		}
	case AuthToken:
		if token.path == "" {
			d.errorf(e.kpos, "invoke_api: auth token needs token")
		}
	}
	if keys.path != "" && a.Auth != AuthSigV4 {
		d.errorf(keys.kpos, "keys: only used with auth sigv4")
	}
	if token.path != "" && a.Auth != AuthToken {
		d.errorf(token.kpos, "token: only used with auth token")
	}
}

// accessKeys decodes invoke_api.keys, access key id to secret.
func (d *decoder) accessKeys(e kv) map[string]string {
	es, ok := d.entries(e)
	if !ok {
		return nil
	}
	m := make(map[string]string, len(es))
	for _, x := range es {
		if !isAccessKeyID(x.key) {
			d.errorf(x.kpos, "keys: access key id %q: want 1 to 128 letters, digits, '_' or '-'", x.key)
			continue
		}
		if v, ok := d.secret(x, false); ok {
			m[x.key] = v
		}
	}
	return m
}

func isAccessKeyID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// checkInvokeAPI applies the invoke API's default, on when server.listen
// is loopback, and refuses it without auth on a listener that is not.
func (d *decoder) checkInvokeAPI(f *File) {
	s := &f.Server
	a := &s.InvokeAPI
	kp, written := d.pos["server.invoke_api"]
	if !written {
		a.Enabled = isLoopback(s.Listen)
	}
	if a.Auth == "" {
		a.Auth = AuthNone
	}
	if !a.Enabled || a.Auth != AuthNone || isLoopback(s.Listen) || d.bad["server.invoke_api"] {
		return
	}
	p := kp
	if ap, ok := d.vpos["server.invoke_api.auth"]; ok {
		p = ap
	}
	d.errorf(p, "invoke_api: auth none on listen %s, which is not a loopback address, lets anyone who reaches the port invoke every function: "+
		"set auth: sigv4 with keys, or auth: token with token, or enabled: false", fmt.Sprintf("%q", s.Listen))
}
