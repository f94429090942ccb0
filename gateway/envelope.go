package gateway

import (
	"bytes"
	"encoding/base64"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/valyala/fasthttp"

	"github.com/sluicehq/sluice/plugins"
)

// b2s views b as a string without copying. Only for strings that are used
// and dropped before b changes: AppendJSONString and comparisons.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// kv is one header or query pair, pointing into the request.
type kv struct{ k, v []byte }

// requestInfo is what the envelope is made from, gathered from the
// fasthttp request so the encoder can be tested without a server.
type requestInfo struct {
	id       []byte
	routeKey string
	method   []byte
	rawPath  []byte
	rawQuery []byte
	protocol []byte
	host     []byte
	ua       []byte
	ctype    []byte
	body     []byte
	sourceIP netip.Addr
	port     int
	tls      bool
	now      time.Time
	headers  []kv // Cookie excluded
	cookies  []kv
	query    []kv
	params   *Params
}

// gather fills ri from ctx, pointing into ctx's buffers. headers, cookies
// and query are appended to the slices already in ri (stack arrays in the
// caller, so common requests do not allocate).
func (ri *requestInfo) gather(ctx *fasthttp.RequestCtx, p *Params) {
	h := &ctx.Request.Header
	ri.id = p.id[:]
	ri.routeKey = p.ep.key
	ri.method = h.Method()
	ri.rawPath = ctx.URI().PathOriginal()
	ri.rawQuery = ctx.URI().QueryString()
	ri.protocol = h.Protocol()
	ri.host = h.Host()
	ri.ua = h.UserAgent()
	ri.ctype = h.ContentType()
	ri.body = ctx.PostBody()
	ri.now = ctx.Time()
	ri.tls = ctx.IsTLS()
	if a, ok := ctx.RemoteAddr().(*net.TCPAddr); ok {
		ri.sourceIP = a.AddrPort().Addr().Unmap()
	}
	if a, ok := ctx.LocalAddr().(*net.TCPAddr); ok {
		ri.port = a.Port
	}
	for k, v := range h.All() {
		if string(k) == fasthttp.HeaderCookie {
			continue
		}
		ri.headers = append(ri.headers, kv{k, v})
	}
	for k, v := range h.Cookies() {
		ri.cookies = append(ri.cookies, kv{k, v})
	}
	for k, v := range ctx.QueryArgs().All() {
		ri.query = append(ri.query, kv{k, v})
	}
	ri.params = p
}

// appendRequestData appends the API Gateway HTTP API payload 2.0 of the
// request to dst: the data of a sluice.http.request event, and what a Lambda
// function behind API Gateway receives.
func appendRequestData(dst []byte, ri *requestInfo) []byte {
	dst = append(dst, `{"version":"2.0","routeKey":`...)
	dst = plugins.AppendJSONString(dst, ri.routeKey)
	dst = append(dst, `,"rawPath":`...)
	dst = plugins.AppendJSONString(dst, b2s(ri.rawPath))
	dst = append(dst, `,"rawQueryString":`...)
	dst = plugins.AppendJSONString(dst, b2s(ri.rawQuery))
	if len(ri.cookies) > 0 {
		dst = append(dst, `,"cookies":[`...)
		for i, c := range ri.cookies {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendCookie(dst, c)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"headers":{`...)
	dst = appendHeaders(dst, ri)
	dst = append(dst, '}')
	if len(ri.query) > 0 {
		dst = append(dst, `,"queryStringParameters":{`...)
		dst = appendGrouped(dst, ri.query, false, netip.Addr{})
		dst = append(dst, '}')
	}
	if p := ri.params; p != nil && p.n > 0 {
		dst = append(dst, `,"pathParameters":{`...)
		for i := 0; i < p.n; i++ {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = plugins.AppendJSONString(dst, p.Name(i))
			dst = append(dst, ':')
			dst = plugins.AppendJSONString(dst, b2s(p.Value(i)))
		}
		dst = append(dst, '}')
	}
	dst = append(dst, `,"requestContext":{"accountId":"anonymous","apiId":"sluice","domainName":`...)
	host := ri.host
	dst = plugins.AppendJSONString(dst, b2s(host))
	dst = append(dst, `,"domainPrefix":`...)
	dst = plugins.AppendJSONString(dst, b2s(domainPrefix(host)))
	dst = append(dst, `,"http":{"method":`...)
	dst = plugins.AppendJSONString(dst, b2s(ri.method))
	dst = append(dst, `,"path":`...)
	dst = plugins.AppendJSONString(dst, b2s(ri.rawPath))
	dst = append(dst, `,"protocol":`...)
	dst = plugins.AppendJSONString(dst, b2s(ri.protocol))
	dst = append(dst, `,"sourceIp":"`...)
	if ri.sourceIP.IsValid() {
		dst = ri.sourceIP.AppendTo(dst)
	}
	dst = append(dst, `","userAgent":`...)
	dst = plugins.AppendJSONString(dst, b2s(ri.ua))
	dst = append(dst, `},"requestId":"`...)
	dst = append(dst, ri.id...)
	dst = append(dst, `","routeKey":`...)
	dst = plugins.AppendJSONString(dst, ri.routeKey)
	dst = append(dst, `,"stage":"$default","time":"`...)
	dst = appendCLFTime(dst, ri.now)
	dst = append(dst, `","timeEpoch":`...)
	dst = strconv.AppendInt(dst, ri.now.UnixMilli(), 10)
	dst = append(dst, '}')
	if len(ri.body) > 0 {
		dst = append(dst, `,"body":`...)
		if isTextBody(ri.ctype, ri.body) {
			dst = plugins.AppendJSONString(dst, b2s(ri.body))
			dst = append(dst, `,"isBase64Encoded":false}`...)
		} else {
			dst = append(dst, '"')
			dst = base64.StdEncoding.AppendEncode(dst, ri.body)
			dst = append(dst, `","isBase64Encoded":true}`...)
		}
	} else {
		dst = append(dst, `,"isBase64Encoded":false}`...)
	}
	return dst
}

const clfLayout = "02/Jan/2006:15:04:05 -0700"

// clfTime is requestContext.time of one second, formatted once: formatting
// it per request cost more than the rest of requestContext.
type clfTime struct {
	sec int64
	b   [len(clfLayout)]byte
}

var clfCache atomic.Pointer[clfTime]

func appendCLFTime(dst []byte, t time.Time) []byte {
	sec := t.Unix()
	if c := clfCache.Load(); c != nil && c.sec == sec {
		return append(dst, c.b[:]...)
	}
	c := &clfTime{sec: sec}
	t.UTC().AppendFormat(c.b[:0], clfLayout)
	clfCache.Store(c)
	return append(dst, c.b[:]...)
}

// estimateDataSize is a generous estimate of appendRequestData's output, so
// the buffer is allocated once.
func estimateDataSize(ri *requestInfo) int {
	n := 640 + 2*len(ri.routeKey) + 2*len(ri.rawPath) + len(ri.rawQuery) + len(ri.host) + len(ri.ua)
	for _, h := range ri.headers {
		n += len(h.k) + len(h.v) + 8
	}
	for _, c := range ri.cookies {
		n += len(c.k) + len(c.v) + 8
	}
	for _, q := range ri.query {
		n += len(q.k) + len(q.v) + 8
	}
	if ri.params != nil {
		n += 16 * ri.params.n
		for i := 0; i < ri.params.n; i++ {
			n += len(ri.params.Value(i))
		}
	}
	// Base64 is 4/3; JSON escaping of text rarely more than that.
	n += len(ri.body)/3*4 + 8
	return n
}

func appendCookie(dst []byte, c kv) []byte {
	if len(c.k) == 0 {
		return plugins.AppendJSONString(dst, b2s(c.v))
	}
	// The pair goes out as one JSON string "k=v"; join it in a small stack
	// buffer when it fits, so the common cookie does not allocate.
	var buf [256]byte
	s := append(append(append(buf[:0], c.k...), '='), c.v...)
	return plugins.AppendJSONString(dst, b2s(s))
}

// appendHeaders appends the request headers as API Gateway shows them:
// lowercase names, repeated headers joined by commas, and the
// X-Forwarded-For, -Port and -Proto a proxy adds.
func appendHeaders(dst []byte, ri *requestInfo) []byte {
	start := len(dst)
	dst = appendGrouped(dst, ri.headers, true, ri.sourceIP)
	var seenFor, seenProto, seenPort bool
	for _, h := range ri.headers {
		if len(h.k) < len(strXForwardedFor) || h.k[0]|0x20 != 'x' {
			continue
		}
		switch {
		case bytes.EqualFold(h.k, strXForwardedFor):
			seenFor = true
		case bytes.EqualFold(h.k, strXForwardedProto):
			seenProto = true
		case bytes.EqualFold(h.k, strXForwardedPort):
			seenPort = true
		}
	}
	if !seenFor && ri.sourceIP.IsValid() {
		dst = appendSep(dst, start)
		dst = append(dst, `"x-forwarded-for":"`...)
		dst = ri.sourceIP.AppendTo(dst)
		dst = append(dst, '"')
	}
	if !seenPort && ri.port > 0 {
		dst = appendSep(dst, start)
		dst = append(dst, `"x-forwarded-port":"`...)
		dst = strconv.AppendInt(dst, int64(ri.port), 10)
		dst = append(dst, '"')
	}
	if !seenProto {
		dst = appendSep(dst, start)
		if ri.tls {
			dst = append(dst, `"x-forwarded-proto":"https"`...)
		} else {
			dst = append(dst, `"x-forwarded-proto":"http"`...)
		}
	}
	return dst
}

var (
	strXForwardedFor   = []byte("X-Forwarded-For")
	strXForwardedProto = []byte("X-Forwarded-Proto")
	strXForwardedPort  = []byte("X-Forwarded-Port")
)

func appendSep(dst []byte, start int) []byte {
	if len(dst) > start {
		dst = append(dst, ',')
	}
	return dst
}

// appendGrouped appends pairs as JSON members, the values of a repeated
// key joined by commas under its first occurrence. With header set, names
// compare case-insensitively and are lowercased, and the peer is appended
// to X-Forwarded-For as a proxy does. Quadratic, which beats a map for the
// dozen pairs of a request and does not allocate.
func appendGrouped(dst []byte, pairs []kv, header bool, peer netip.Addr) []byte {
	first := true
	for i, p := range pairs {
		if seenBefore(pairs[:i], p.k, header) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		ks := len(dst)
		dst = plugins.AppendJSONString(dst, b2s(p.k))
		if header {
			// Escapes are lowercase already; only the name's own
			// letters can be uppercase.
			for j := ks; j < len(dst); j++ {
				if c := dst[j]; 'A' <= c && c <= 'Z' {
					dst[j] = c + 'a' - 'A'
				}
			}
		}
		dst = append(dst, ':')
		dst = plugins.AppendJSONString(dst, b2s(p.v))
		for _, q := range pairs[i+1:] {
			if sameKey(q.k, p.k, header) {
				dst = appendMore(dst, ",", q.v)
			}
		}
		if header && peer.IsValid() && len(p.k) == len(strXForwardedFor) && bytes.EqualFold(p.k, strXForwardedFor) {
			var buf [64]byte
			dst = appendMore(dst, ", ", peer.AppendTo(buf[:0]))
		}
	}
	return dst
}

// appendMore extends the JSON string that ends dst with sep and s.
func appendMore(dst []byte, sep string, s []byte) []byte {
	dst = dst[:len(dst)-1] // the closing quote
	dst = append(dst, sep...)
	n := len(dst)
	dst = plugins.AppendJSONString(dst, b2s(s))
	copy(dst[n:], dst[n+1:]) // the opening quote of s
	return dst[:len(dst)-1]
}

func seenBefore(pairs []kv, k []byte, lower bool) bool {
	for _, q := range pairs {
		if sameKey(q.k, k, lower) {
			return true
		}
	}
	return false
}

func sameKey(a, b []byte, fold bool) bool {
	if len(a) != len(b) {
		return false // EqualFold compares the common prefix first
	}
	if fold {
		return bytes.EqualFold(a, b)
	}
	return bytes.Equal(a, b)
}

// domainPrefix is the first label of host, without a port.
func domainPrefix(host []byte) []byte {
	if i := bytes.LastIndexByte(host, ':'); i >= 0 && bytes.IndexByte(host, ']') < i {
		host = host[:i]
	}
	if i := bytes.IndexByte(host, '.'); i >= 0 {
		return host[:i]
	}
	return host
}

// isTextBody reports whether a body goes to the function as text rather
// than base64: valid UTF-8 with a textual content type, the rule of Lambda
// function URLs and API Gateway. Like API Gateway HTTP APIs, form posts and
// bodies without a content type count as binary.
func isTextBody(ctype, body []byte) bool {
	if string(ctype) == "application/json" {
		return utf8.Valid(body)
	}
	if i := bytes.IndexByte(ctype, ';'); i >= 0 {
		ctype = ctype[:i]
	}
	ctype = bytes.TrimSpace(ctype)
	if len(ctype) == 0 || len(ctype) > 128 {
		return false
	}
	var buf [128]byte
	ct := buf[:len(ctype)]
	for i, c := range ctype {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		ct[i] = c
	}
	text := bytes.HasPrefix(ct, []byte("text/")) ||
		bytes.HasSuffix(ct, []byte("+json")) || bytes.HasSuffix(ct, []byte("+xml")) || bytes.HasSuffix(ct, []byte("+yaml"))
	if !text {
		switch string(ct) {
		case "application/json", "application/javascript", "application/ecmascript",
			"application/xml", "application/yaml", "application/x-yaml", "application/x-ndjson",
			"application/graphql":
			text = true
		}
	}
	return text && utf8.Valid(body)
}
