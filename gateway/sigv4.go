package gateway

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"
)

// AWS Signature Version 4, as the Lambda API checks it: the request is
// signed with a secret access key over a canonical form of itself, and the
// signature travels in the Authorization header. The server rebuilds the
// canonical request from what it received and compares signatures.

const (
	sigV4Algorithm  = "AWS4-HMAC-SHA256"
	sigV4Terminal   = "aws4_request"
	sigV4Service    = "lambda"
	sigV4DateLayout = "20060102T150405Z"
	// sigV4MaxSkew is how far a request's X-Amz-Date may be from the
	// server's clock, either way, as AWS allows.
	sigV4MaxSkew     = 15 * time.Minute
	unsignedPayload  = "UNSIGNED-PAYLOAD"
	maxSignedHeaders = 64
)

var (
	strAmzDate          = []byte("X-Amz-Date")
	strAmzContentSHA256 = []byte("X-Amz-Content-Sha256")
	strAWS4             = []byte("AWS4")
)

// sigV4Authorization is a parsed SigV4 Authorization header:
//
//	AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/lambda/aws4_request,
//	SignedHeaders=host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7
type sigV4Authorization struct {
	KeyID   string
	Date    string // YYYYMMDD
	Region  string
	Service string
	// SignedHeaders are the names, lower case, in the order written
	// (which must be sorted).
	SignedHeaders []string
	Signature     string // 64 lower-case hex digits
}

// scope returns the credential scope, DATE/REGION/SERVICE/aws4_request.
func (a *sigV4Authorization) scope() string {
	return a.Date + "/" + a.Region + "/" + a.Service + "/" + sigV4Terminal
}

// errIncompleteSignature is wrapped by every error of
// parseSigV4Authorization; its message is what the client is told.
var errIncompleteSignature = errors.New("incomplete signature")

type incompleteSignature string

func (e incompleteSignature) Error() string { return string(e) }
func (e incompleteSignature) Unwrap() error { return errIncompleteSignature }

// parseSigV4Authorization parses the value of an Authorization header that
// starts with "AWS4-HMAC-SHA256 ". It checks the shape of every part but
// not the signature. Its errors are client messages, never echoing the
// header beyond the parts that are not secret.
func parseSigV4Authorization(h string) (sigV4Authorization, error) {
	var a sigV4Authorization
	rest, ok := strings.CutPrefix(h, sigV4Algorithm)
	if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '\t') {
		return a, incompleteSignature("Authorization header must start with " + sigV4Algorithm + " followed by a space")
	}
	var cred, signed, sig string
	var haveCred, haveSigned, haveSig bool
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return a, incompleteSignature("Authorization header has a part without '=' (want Credential=..., SignedHeaders=..., Signature=...)")
		}
		var dup bool
		switch k {
		case "Credential":
			dup, haveCred, cred = haveCred, true, v
		case "SignedHeaders":
			dup, haveSigned, signed = haveSigned, true, v
		case "Signature":
			dup, haveSig, sig = haveSig, true, v
		default:
			return a, incompleteSignature("Authorization header has an unknown part (want Credential, SignedHeaders and Signature)")
		}
		if dup {
			return a, incompleteSignature("Authorization header names " + k + " twice")
		}
	}
	var missing []string
	for _, m := range []struct {
		name string
		have bool
	}{{"Credential", haveCred}, {"SignedHeaders", haveSigned}, {"Signature", haveSig}} {
		if !m.have {
			missing = append(missing, "Authorization header requires '"+m.name+"' parameter.")
		}
	}
	if len(missing) > 0 {
		return a, incompleteSignature(strings.Join(missing, " "))
	}

	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[0] == "" || parts[2] == "" || parts[3] == "" {
		return a, incompleteSignature("Credential must have the form ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request")
	}
	if parts[4] != sigV4Terminal {
		return a, incompleteSignature("Credential should be scoped with a valid terminator: 'aws4_request'")
	}
	if !isDigits(parts[1], 8) {
		return a, incompleteSignature("Credential date must be YYYYMMDD")
	}
	a.KeyID, a.Date, a.Region, a.Service = parts[0], parts[1], parts[2], parts[3]

	if signed == "" {
		return a, incompleteSignature("SignedHeaders must not be empty")
	}
	a.SignedHeaders = strings.Split(signed, ";")
	if len(a.SignedHeaders) > maxSignedHeaders {
		return a, incompleteSignature("SignedHeaders names too many headers")
	}
	for i, n := range a.SignedHeaders {
		if n == "" || !isHeaderToken(n) || strings.ToLower(n) != n {
			return a, incompleteSignature("SignedHeaders must be lower-case header names separated by ';'")
		}
		if i > 0 && a.SignedHeaders[i-1] >= n {
			return a, incompleteSignature("SignedHeaders must be sorted and without duplicates")
		}
	}
	if len(sig) != 2*sha256.Size || !isLowerHex(sig) {
		return a, incompleteSignature("Signature must be 64 lower-case hexadecimal digits")
	}
	a.Signature = sig
	return a, nil
}

func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// isHeaderToken reports whether s is an HTTP token (a header name).
func isHeaderToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// authError is a refused request: its status, Lambda's error type and the
// message.
type authError struct {
	code int
	typ  string
	msg  string
}

func (e *authError) Error() string { return e.typ + ": " + e.msg }

// The errors AWS Lambda answers unauthenticated requests with.
func errMissingAuth() *authError {
	return &authError{fasthttp.StatusForbidden, "MissingAuthenticationTokenException", "Missing Authentication Token"}
}

func errUnrecognizedClient() *authError {
	return &authError{fasthttp.StatusForbidden, "UnrecognizedClientException", "The security token included in the request is invalid."}
}

func errInvalidSignature(msg string) *authError {
	return &authError{fasthttp.StatusForbidden, "InvalidSignatureException", msg}
}

func errIncomplete(msg string) *authError {
	return &authError{fasthttp.StatusBadRequest, "IncompleteSignatureException", msg}
}

const msgSignatureMismatch = "The request signature we calculated does not match the signature you provided. " +
	"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."

// sigV4Verifier checks SigV4-signed requests against configured keys.
type sigV4Verifier struct {
	keys map[string][]byte // access key id -> secret access key
	// region, when not empty, is the region a scope must name; empty
	// takes any (the region is part of the signing key, so a signature
	// made for one region never verifies for another).
	region string

	// Derived signing keys by access key id and scope: a key changes once
	// a day, and deriving it is four HMACs per request otherwise.
	mu      sync.Mutex
	derived map[string][]byte
}

// maxDerivedKeys bounds the cache of signing keys; when full it starts
// afresh (scopes name a date, so old entries are dead weight anyway).
const maxDerivedKeys = 1024

func (v *sigV4Verifier) signingKey(a *sigV4Authorization, secret []byte) []byte {
	id := a.KeyID + "/" + a.scope()
	v.mu.Lock()
	k, ok := v.derived[id]
	v.mu.Unlock()
	if ok {
		return k
	}
	k = signingKey(secret, a.Date, a.Region, a.Service)
	v.mu.Lock()
	if v.derived == nil || len(v.derived) >= maxDerivedKeys {
		v.derived = make(map[string][]byte)
	}
	v.derived[id] = k
	v.mu.Unlock()
	return k
}

// verify checks the SigV4 signature of req at time now, with auth the
// request's Authorization header. It returns nil when the signature is
// right.
func (v *sigV4Verifier) verify(req *fasthttp.Request, auth []byte, now time.Time) *authError {
	a, err := parseSigV4Authorization(string(auth))
	if err != nil {
		return errIncomplete(err.Error())
	}
	secret, ok := v.keys[a.KeyID]
	if !ok {
		return errUnrecognizedClient()
	}
	if a.Service != sigV4Service {
		return errInvalidSignature("Credential should be scoped to correct service: '" + sigV4Service + "'. ")
	}
	if v.region != "" && a.Region != v.region {
		return errInvalidSignature("Credential should be scoped to a valid region. ")
	}
	h := &req.Header
	amzDate := h.PeekBytes(strAmzDate)
	if len(amzDate) == 0 {
		return errIncomplete("Authorization header requires existence of an 'X-Amz-Date' header.")
	}
	t, perr := time.Parse(sigV4DateLayout, string(amzDate))
	if perr != nil {
		return errIncomplete("X-Amz-Date must be ISO 8601 basic format, YYYYMMDD'T'HHMMSS'Z'.")
	}
	if string(amzDate[:8]) != a.Date {
		return errInvalidSignature("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '" +
			a.Date + "' != '" + string(amzDate[:8]) + "', from '" + string(amzDate) + "'.")
	}
	now = now.UTC()
	switch {
	case t.Before(now.Add(-sigV4MaxSkew)):
		return errInvalidSignature("Signature expired: " + string(amzDate) + " is now earlier than " +
			now.Add(-sigV4MaxSkew).Format(sigV4DateLayout) + " (" + now.Format(sigV4DateLayout) + " - 15 min.)")
	case t.After(now.Add(sigV4MaxSkew)):
		return errInvalidSignature("Signature not yet current: " + string(amzDate) + " is still later than " +
			now.Add(sigV4MaxSkew).Format(sigV4DateLayout) + " (" + now.Format(sigV4DateLayout) + " + 15 min.)")
	}
	if !signs(a.SignedHeaders, "host") {
		return errInvalidSignature("'Host' must be a 'SignedHeader' in the AWS Authorization.")
	}
	if !signs(a.SignedHeaders, "x-amz-date") {
		return errInvalidSignature("'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.")
	}

	payloadHash, perrs := payloadHash(req)
	if perrs != nil {
		return perrs
	}
	key := v.signingKey(&a, secret)
	path := req.URI().PathOriginal()
	if len(path) == 0 {
		path = []byte("/")
	}
	if v.matches(req, &a, key, amzDate, path, payloadHash) {
		return nil
	}
	// Some signers (botocore) remove dot segments and empty segments
	// before signing; others sign the path as sent.
	if norm := normalizePath(path); !bytes.Equal(norm, path) && v.matches(req, &a, key, amzDate, norm, payloadHash) {
		return nil
	}
	return errInvalidSignature(msgSignatureMismatch)
}

func (v *sigV4Verifier) matches(req *fasthttp.Request, a *sigV4Authorization, key, amzDate, path []byte, payloadHash string) bool {
	cr := canonicalRequest(req, a.SignedHeaders, path, payloadHash)
	crHash := sha256.Sum256(cr)
	sts := make([]byte, 0, 128)
	sts = append(sts, sigV4Algorithm+"\n"...)
	sts = append(sts, amzDate...)
	sts = append(sts, '\n')
	sts = append(sts, a.scope()...)
	sts = append(sts, '\n')
	sts = hex.AppendEncode(sts, crHash[:])
	mac := hmac.New(sha256.New, key)
	mac.Write(sts)
	want := hex.AppendEncode(nil, mac.Sum(nil))
	return subtle.ConstantTimeCompare(want, []byte(a.Signature)) == 1
}

func signs(names []string, name string) bool {
	i := sort.SearchStrings(names, name)
	return i < len(names) && names[i] == name
}

// payloadHash returns the hash the signature covers: the request's
// X-Amz-Content-Sha256 when it is UNSIGNED-PAYLOAD or the right hash of
// the body, else the body's hash computed here.
func payloadHash(req *fasthttp.Request) (string, *authError) {
	sum := sha256.Sum256(req.Body())
	hash := hex.EncodeToString(sum[:])
	switch given := req.Header.PeekBytes(strAmzContentSHA256); {
	case len(given) == 0:
	case string(given) == unsignedPayload:
		return unsignedPayload, nil
	case string(given) != hash:
		return "", errInvalidSignature("The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	return hash, nil
}

// signingKey derives the key of a scope from the secret access key.
func signingKey(secret []byte, date, region, service string) []byte {
	k := make([]byte, 0, len(strAWS4)+len(secret))
	k = append(append(k, strAWS4...), secret...)
	for _, s := range []string{date, region, service, sigV4Terminal} {
		mac := hmac.New(sha256.New, k)
		mac.Write([]byte(s))
		k = mac.Sum(nil)
	}
	return k
}

// canonicalRequest builds SigV4's canonical request:
//
//	METHOD \n CANONICAL_URI \n CANONICAL_QUERY \n CANONICAL_HEADERS \n SIGNED_HEADERS \n PAYLOAD_HASH
//
// path is the path as sent, still percent-encoded; services other than S3
// encode it once more, so a '%' becomes "%25".
func canonicalRequest(req *fasthttp.Request, signed []string, path []byte, payloadHash string) []byte {
	b := make([]byte, 0, 512)
	b = append(b, req.Header.Method()...)
	b = append(b, '\n')
	b = appendURIEncode(b, path, false)
	b = append(b, '\n')
	b = appendCanonicalQuery(b, req.URI().QueryString())
	b = append(b, '\n')
	for _, name := range signed {
		b = append(b, name...)
		b = append(b, ':')
		for i, v := range req.Header.PeekAll(name) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendTrimmedValue(b, v)
		}
		b = append(b, '\n')
	}
	b = append(b, '\n')
	b = append(b, strings.Join(signed, ";")...)
	b = append(b, '\n')
	return append(b, payloadHash...)
}

// appendTrimmedValue appends a header value with leading and trailing
// spaces removed and runs of spaces inside made one.
func appendTrimmedValue(b, v []byte) []byte {
	v = bytes.TrimSpace(v)
	space := false
	for _, c := range v {
		if c == ' ' || c == '\t' {
			space = true
			continue
		}
		if space {
			b = append(b, ' ')
			space = false
		}
		b = append(b, c)
	}
	return b
}

// appendCanonicalQuery appends the canonical query string of a raw query:
// each name and value decoded then encoded the strict way, the pairs
// sorted by name then value, joined with '&'.
func appendCanonicalQuery(b, raw []byte) []byte {
	if len(raw) == 0 {
		return b
	}
	type pair struct{ k, v []byte }
	var pairs []pair
	for part := range bytes.SplitSeq(raw, []byte("&")) {
		if len(part) == 0 {
			continue
		}
		k, v, _ := bytes.Cut(part, []byte("="))
		pairs = append(pairs, pair{appendURIEncode(nil, percentDecode(k), true), appendURIEncode(nil, percentDecode(v), true)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if c := bytes.Compare(pairs[i].k, pairs[j].k); c != 0 {
			return c < 0
		}
		return bytes.Compare(pairs[i].v, pairs[j].v) < 0
	})
	for i, p := range pairs {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, p.k...)
		b = append(b, '=')
		b = append(b, p.v...)
	}
	return b
}

// percentDecode decodes %XX escapes; a malformed escape is kept as it is.
func percentDecode(s []byte) []byte {
	if bytes.IndexByte(s, '%') < 0 {
		return s
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) && unhex(s[i+1]) >= 0 && unhex(s[i+2]) >= 0 {
			out = append(out, byte(unhex(s[i+1])<<4|unhex(s[i+2])))
			i += 2
			continue
		}
		out = append(out, s[i])
	}
	return out
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// appendURIEncode appends s with every byte but the unreserved ones
// (A-Z a-z 0-9 - _ . ~) as %XX, upper case; '/' too when encodeSlash.
func appendURIEncode(b, s []byte, encodeSlash bool) []byte {
	const hexDigits = "0123456789ABCDEF"
	for _, c := range s {
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b = append(b, c)
		case c == '/' && !encodeSlash:
			b = append(b, c)
		default:
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return b
}

// normalizePath removes empty and "." segments and resolves "..", keeping
// a leading and a trailing slash, as botocore does before signing.
func normalizePath(p []byte) []byte {
	var out [][]byte
	for seg := range bytes.SplitSeq(p, []byte("/")) {
		switch {
		case len(seg) == 0 || string(seg) == ".":
		case string(seg) == "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	b := []byte{'/'}
	b = append(b, bytes.Join(out, []byte("/"))...)
	if len(out) > 0 && p[len(p)-1] == '/' {
		b = append(b, '/')
	}
	return b
}
