package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// MaxParams is the most path parameters one route may declare.
const MaxParams = 8

// Errors of route registration.
var (
	// ErrBadRoute is wrapped by the error of a route whose method or path
	// cannot be compiled.
	ErrBadRoute = errors.New("gateway: bad route")
	// ErrDuplicateRoute is wrapped by the error of a route whose method and
	// path shape are already taken.
	ErrDuplicateRoute = errors.New("gateway: duplicate route")
)

// Params holds the path parameters of the request being handled. It is only
// valid until the handler returns: values point into the request's buffers.
// A Params is not safe for concurrent use.
type Params struct {
	path  []byte
	ep    *endpoint
	spans [MaxParams]span
	n     int
	id    [idLen]byte

	// Scratch space for gathering a request's pairs, here because Params
	// are pooled: the encoder's range-over-func loops make stack arrays
	// escape.
	hs     [48]kv
	cs, qs [16]kv
}

type span struct{ start, end int32 }

// Len returns the number of path parameters.
func (p *Params) Len() int { return p.n }

// Name returns the name of the i-th parameter, in path order.
func (p *Params) Name(i int) string { return p.ep.names[i] }

// Value returns the value of the i-th parameter, percent-decoded. It points
// into the request and must not be kept after the handler returns.
func (p *Params) Value(i int) []byte {
	s := p.spans[i]
	return p.path[s.start:s.end]
}

// Get returns a copy of the value of the parameter named name, or "".
func (p *Params) Get(name string) string {
	for i := 0; i < p.n; i++ {
		if p.ep.names[i] == name {
			return string(p.Value(i))
		}
	}
	return ""
}

// RequestID returns the request's id, the value of its X-Sluice-Request-Id
// response header. Its bytes are only valid until the handler returns.
func (p *Params) RequestID() []byte { return p.id[:] }

// RouteKey returns the matched route as API Gateway names it, e.g.
// "POST /echo/{id}" or "ANY /files/{path+}".
func (p *Params) RouteKey() string { return p.ep.key }

func (p *Params) reset(path []byte) {
	p.path = path
	p.ep = nil
	p.n = 0
}

// node is one path segment of the routing tree. A request segment is tried
// against the static children first, then the parameter child, then the
// greedy one, backtracking when a branch does not lead to a full match.
type node struct {
	statics []*node
	seg     string // this node's segment, for a static child
	param   *node
	greedy  *node
	ends    []*endpoint // routes ending here
	allow   string      // the Allow header of a 405 here
	anyEnd  bool        // an ANY route ends here
}

// endpoint is one route: a method on a path shape.
type endpoint struct {
	method  string // "" for ANY
	key     string // the routeKey, "POST /echo/{id}"
	pattern string // the path as registered
	names   []string
	handle  Handler
	metrics *routeMetrics
}

type router struct {
	root node
}

// segments splits a registered path into its segments; it enforces the
// shape rules and returns the parameter names.
func parsePattern(path string) (segs []string, names []string, err error) {
	if path == "" || path[0] != '/' {
		return nil, nil, fmt.Errorf("%w: path %q must start with /", ErrBadRoute, path)
	}
	trimmed := strings.TrimSuffix(path[1:], "/")
	if trimmed == "" {
		return nil, nil, nil
	}
	segs = strings.Split(trimmed, "/")
	seen := map[string]bool{}
	for i, s := range segs {
		switch {
		case s == "":
			return nil, nil, fmt.Errorf("%w: path %q has an empty segment", ErrBadRoute, path)
		case s[0] == '{':
			name := strings.TrimSuffix(strings.TrimPrefix(s, "{"), "}")
			if !strings.HasSuffix(s, "}") || name == "" || name == "+" || strings.ContainsAny(name, "{}") {
				return nil, nil, fmt.Errorf("%w: path %q: segment %q must be {name} or {name+}", ErrBadRoute, path, s)
			}
			greedy := strings.HasSuffix(name, "+")
			name = strings.TrimSuffix(name, "+")
			if greedy && i != len(segs)-1 {
				return nil, nil, fmt.Errorf("%w: path %q: greedy parameter {%s+} must be the last segment", ErrBadRoute, path, name)
			}
			if seen[name] {
				return nil, nil, fmt.Errorf("%w: path %q names parameter %q twice", ErrBadRoute, path, name)
			}
			seen[name] = true
			names = append(names, name)
		case strings.ContainsAny(s, "{}"):
			return nil, nil, fmt.Errorf("%w: path %q: segment %q mixes text and a parameter", ErrBadRoute, path, s)
		}
	}
	if len(names) > MaxParams {
		return nil, nil, fmt.Errorf("%w: path %q has %d parameters, at most %d", ErrBadRoute, path, len(names), MaxParams)
	}
	return segs, names, nil
}

// validMethod reports whether m is an HTTP token (RFC 9110 tchar).
func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// add registers ep for method on path. Method "" or "ANY" matches every
// method.
func (r *router) add(method, path string, ep *endpoint) error {
	if method == "ANY" {
		method = ""
	}
	if method != "" && !validMethod(method) {
		return fmt.Errorf("%w: method %q is not an HTTP method", ErrBadRoute, method)
	}
	segs, names, err := parsePattern(path)
	if err != nil {
		return err
	}
	n := &r.root
	for _, s := range segs {
		switch {
		case strings.HasSuffix(s, "+}"):
			if n.greedy == nil {
				n.greedy = &node{}
			}
			n = n.greedy
		case s[0] == '{':
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
		default:
			var child *node
			for _, c := range n.statics {
				if c.seg == s {
					child = c
				}
			}
			if child == nil {
				child = &node{seg: s}
				n.statics = append(n.statics, child)
				sort.Slice(n.statics, func(i, j int) bool { return n.statics[i].seg < n.statics[j].seg })
			}
			n = child
		}
	}
	for _, e := range n.ends {
		if e.method == method {
			return fmt.Errorf("%w: %s %s conflicts with %s", ErrDuplicateRoute, methodName(method), path, e.key)
		}
	}
	ep.method = method
	ep.key = methodName(method) + " " + path
	ep.pattern = path
	ep.names = names
	n.ends = append(n.ends, ep)
	n.anyEnd = n.anyEnd || method == ""
	var allow []string
	for _, e := range n.ends {
		if e.method != "" {
			allow = append(allow, e.method)
		}
	}
	sort.Strings(allow)
	n.allow = strings.Join(allow, ", ")
	return nil
}

func methodName(m string) string {
	if m == "" {
		return "ANY"
	}
	return m
}

// lookup finds the endpoint for method and path (fasthttp's normalized,
// percent-decoded path). It fills p with the path parameters. When no route
// has the path it returns nil, nil; when routes have the path but none the
// method, it returns nil and the node whose Allow header to send.
//
// It does not allocate: the tests hold it to that.
func (r *router) lookup(method, path []byte, p *Params) (*endpoint, *node) {
	p.reset(path)
	rest, off := path, int32(0)
	if len(rest) > 0 && rest[0] == '/' {
		rest, off = rest[1:], 1
	}
	// One trailing slash is not significant: /echo/1/ is /echo/1.
	if len(rest) > 0 && rest[len(rest)-1] == '/' {
		rest = rest[:len(rest)-1]
	}
	var miss *node
	ep := r.root.match(method, path, off, rest, p, &miss)
	if ep == nil {
		p.n = 0
	}
	return ep, miss
}

// match matches rest, which starts at offset off of path, below n.
func (n *node) match(method, path []byte, off int32, rest []byte, p *Params, miss **node) *endpoint {
	if len(rest) == 0 {
		return n.end(method, p, miss)
	}
	i := bytes.IndexByte(rest, '/')
	seg, next, nextOff := rest, []byte(nil), off+int32(len(rest))
	if i >= 0 {
		seg, next, nextOff = rest[:i], rest[i+1:], off+int32(i)+1
	}
	if len(seg) == 0 {
		// An empty segment (fasthttp collapses //, but a caller may not
		// have) matches nothing.
		return nil
	}
	if c := n.static(seg); c != nil {
		if ep := c.match(method, path, nextOff, next, p, miss); ep != nil {
			return ep
		}
	}
	if n.param != nil && p.n < MaxParams {
		k := p.n
		p.spans[k] = span{off, off + int32(len(seg))}
		p.n++
		if ep := n.param.match(method, path, nextOff, next, p, miss); ep != nil {
			return ep
		}
		p.n = k
	}
	if n.greedy != nil && p.n < MaxParams {
		k := p.n
		p.spans[k] = span{off, off + int32(len(rest))}
		p.n++
		if ep := n.greedy.end(method, p, miss); ep != nil {
			return ep
		}
		p.n = k
	}
	return nil
}

func (n *node) static(seg []byte) *node {
	for _, c := range n.statics {
		if c.seg == string(seg) {
			return c
		}
	}
	return nil
}

// end picks the endpoint of n for method, or records n as the first node
// with the path but not the method.
func (n *node) end(method []byte, p *Params, miss **node) *endpoint {
	if len(n.ends) == 0 {
		return nil
	}
	var anyEP *endpoint
	for _, e := range n.ends {
		if e.method == string(method) {
			p.ep = e
			return e
		}
		if e.method == "" {
			anyEP = e
		}
	}
	if anyEP != nil {
		p.ep = anyEP
		return anyEP
	}
	if *miss == nil {
		*miss = n
	}
	return nil
}
