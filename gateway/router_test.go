package gateway

import (
	"errors"
	"maps"
	"testing"
)

func testRouter(t testing.TB, routes ...[2]string) *router {
	t.Helper()
	r := &router{}
	for _, rt := range routes {
		if err := r.add(rt[0], rt[1], &endpoint{}); err != nil {
			t.Fatalf("add %s %s: %v", rt[0], rt[1], err)
		}
	}
	return r
}

func TestRouterLookup(t *testing.T) {
	r := testRouter(t,
		[2]string{"POST", "/echo/{id}"},
		[2]string{"GET", "/echo/{id}"},
		[2]string{"GET", "/users/me"},
		[2]string{"GET", "/users/{id}"},
		[2]string{"POST", "/users/{id}/posts/{post}"},
		[2]string{"GET", "/users/{user}/settings"},
		[2]string{"ANY", "/any"},
		[2]string{"GET", "/"},
		[2]string{"GET", "/files/{path+}"},
		[2]string{"GET", "/files/readme"},
		[2]string{"PUT", "/a/b/c"},
		[2]string{"GET", "/a/{x}/c"},
		[2]string{"DELETE", "/trail/"},
		[2]string{"POST", "/2015-03-31/functions/{name}/invocations"},
	)
	tests := []struct {
		name, method, path string
		wantKey            string // "" means no match
		wantParams         map[string]string
		wantAllow          string // for a 405
	}{
		{"param", "POST", "/echo/42", "POST /echo/{id}", map[string]string{"id": "42"}, ""},
		{"same path other method", "GET", "/echo/42", "GET /echo/{id}", map[string]string{"id": "42"}, ""},
		{"trailing slash ignored", "POST", "/echo/42/", "POST /echo/{id}", map[string]string{"id": "42"}, ""},
		{"param needs a segment", "POST", "/echo/", "", nil, ""},
		{"param is one segment", "POST", "/echo/4/2", "", nil, ""},
		{"static beats param", "GET", "/users/me", "GET /users/me", map[string]string{}, ""},
		{"param when static differs", "GET", "/users/ann", "GET /users/{id}", map[string]string{"id": "ann"}, ""},
		{"backtrack from static", "GET", "/users/me/settings", "GET /users/{user}/settings", map[string]string{"user": "me"}, ""},
		{"two params", "POST", "/users/7/posts/9", "POST /users/{id}/posts/{post}", map[string]string{"id": "7", "post": "9"}, ""},
		{"any method", "PATCH", "/any", "ANY /any", map[string]string{}, ""},
		{"root", "GET", "/", "GET /", map[string]string{}, ""},
		{"greedy one segment", "GET", "/files/a", "GET /files/{path+}", map[string]string{"path": "a"}, ""},
		{"greedy many segments", "GET", "/files/a/b/c.txt", "GET /files/{path+}", map[string]string{"path": "a/b/c.txt"}, ""},
		{"static beats greedy", "GET", "/files/readme", "GET /files/readme", map[string]string{}, ""},
		{"greedy needs a segment", "GET", "/files", "", nil, ""},
		{"param route through backtracking", "GET", "/a/b/c", "GET /a/{x}/c", map[string]string{"x": "b"}, ""},
		{"trailing slash route", "DELETE", "/trail", "DELETE /trail/", map[string]string{}, ""},
		{"lambda invoke path", "POST", "/2015-03-31/functions/echo/invocations", "POST /2015-03-31/functions/{name}/invocations", map[string]string{"name": "echo"}, ""},
		{"unknown path", "GET", "/nope", "", nil, ""},
		{"unknown deeper", "GET", "/users/1/2/3", "", nil, ""},
		{"prefix of a route", "GET", "/users", "", nil, ""},
		{"405 lists methods", "DELETE", "/echo/1", "", nil, "GET, POST"},
		{"405 on static", "POST", "/users/me", "", nil, "GET"},
		{"405 first path match", "PUT", "/users/me/settings", "", nil, "GET"},
		{"method case matters", "post", "/echo/1", "", nil, "GET, POST"},
		{"put on static while param has get", "PUT", "/a/b/c", "PUT /a/b/c", map[string]string{}, ""},
		{"empty path", "GET", "", "GET /", map[string]string{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p Params
			ep, miss := r.lookup([]byte(tt.method), []byte(tt.path), &p)
			if tt.wantKey == "" {
				if ep != nil {
					t.Fatalf("matched %q, want no match", ep.key)
				}
				switch {
				case tt.wantAllow == "" && miss != nil:
					t.Fatalf("405 with Allow %q, want 404", miss.allow)
				case tt.wantAllow != "" && miss == nil:
					t.Fatalf("404, want 405 with Allow %q", tt.wantAllow)
				case miss != nil && miss.allow != tt.wantAllow:
					t.Fatalf("Allow = %q, want %q", miss.allow, tt.wantAllow)
				}
				if p.Len() != 0 {
					t.Fatalf("%d params left on a miss", p.Len())
				}
				return
			}
			if ep == nil {
				t.Fatalf("no match (405 node %v), want %q", miss != nil, tt.wantKey)
			}
			if ep.key != tt.wantKey || p.RouteKey() != tt.wantKey {
				t.Fatalf("matched %q, want %q", ep.key, tt.wantKey)
			}
			got := map[string]string{}
			for i := 0; i < p.Len(); i++ {
				got[p.Name(i)] = string(p.Value(i))
			}
			if !maps.Equal(got, tt.wantParams) {
				t.Fatalf("params = %v, want %v", got, tt.wantParams)
			}
			for k, v := range tt.wantParams {
				if p.Get(k) != v {
					t.Fatalf("Get(%q) = %q, want %q", k, p.Get(k), v)
				}
			}
			if p.Get("missing") != "" {
				t.Fatal("Get of a missing name is not empty")
			}
		})
	}
}

func TestRouterAddErrors(t *testing.T) {
	tests := []struct {
		name, method, path string
		want               error
	}{
		{"no leading slash", "GET", "echo", ErrBadRoute},
		{"empty path", "GET", "", ErrBadRoute},
		{"empty segment", "GET", "/a//b", ErrBadRoute},
		{"unclosed param", "GET", "/a/{id", ErrBadRoute},
		{"empty param", "GET", "/a/{}", ErrBadRoute},
		{"mixed segment", "GET", "/a/x{id}", ErrBadRoute},
		{"greedy not last", "GET", "/a/{p+}/b", ErrBadRoute},
		{"duplicate param name", "GET", "/a/{id}/{id}", ErrBadRoute},
		{"too many params", "GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", ErrBadRoute},
		{"bad method", "GE T", "/a", ErrBadRoute},
		{"duplicate", "POST", "/echo/{id}", ErrDuplicateRoute},
		{"duplicate under another param name", "POST", "/echo/{name}", ErrDuplicateRoute},
		{"duplicate with trailing slash", "POST", "/echo/{id}/", ErrDuplicateRoute},
		{"duplicate ANY", "", "/any", ErrDuplicateRoute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testRouter(t, [2]string{"POST", "/echo/{id}"}, [2]string{"ANY", "/any"})
			err := r.add(tt.method, tt.path, &endpoint{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("add(%q, %q) = %v, want %v", tt.method, tt.path, err, tt.want)
			}
		})
	}
}

// TestRoutingAllocs holds route matching, hits and misses, to zero
// allocations per request.
func TestRoutingAllocs(t *testing.T) {
	r := testRouter(t,
		[2]string{"POST", "/echo/{id}"},
		[2]string{"GET", "/users/me"},
		[2]string{"GET", "/users/{user}/settings"},
		[2]string{"GET", "/files/{path+}"},
	)
	for _, c := range []struct{ method, path string }{
		{"POST", "/echo/42"},
		{"GET", "/users/me/settings"},
		{"GET", "/files/a/b/c"},
		{"DELETE", "/echo/42"},
		{"GET", "/nothing/here"},
	} {
		method, path := []byte(c.method), []byte(c.path)
		p := new(Params)
		allocs := testing.AllocsPerRun(1000, func() {
			r.lookup(method, path, p)
		})
		if allocs != 0 {
			t.Errorf("%s %s: %v allocations per lookup, want 0", c.method, c.path, allocs)
		}
	}
}

func BenchmarkRouter(b *testing.B) {
	r := testRouter(b,
		[2]string{"POST", "/echo/{id}"},
		[2]string{"GET", "/users/me"},
		[2]string{"GET", "/users/{id}"},
		[2]string{"GET", "/users/{user}/settings"},
		[2]string{"POST", "/2015-03-31/functions/{name}/invocations"},
		[2]string{"GET", "/files/{path+}"},
		[2]string{"POST", "/hooks/storage"},
	)
	for _, c := range []struct{ name, method, path string }{
		{"static", "POST", "/hooks/storage"},
		{"param", "POST", "/echo/42"},
		{"backtrack", "GET", "/users/me/settings"},
		{"invoke", "POST", "/2015-03-31/functions/echo/invocations"},
		{"miss", "GET", "/nothing/here"},
	} {
		b.Run(c.name, func(b *testing.B) {
			method, path := []byte(c.method), []byte(c.path)
			var p Params
			b.ReportAllocs()
			for b.Loop() {
				r.lookup(method, path, &p)
			}
		})
	}
}
