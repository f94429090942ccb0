package gateway

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"

	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/plugins"
	"github.com/sluicehq/sluice/streams/formats"
)

// TriggerStorage is the trigger name of events from storage webhooks, in
// invocation logs and metrics.
const TriggerStorage = "storage"

// StorageRoute is a storage trigger: a webhook that S3-compatible stores
// post their event notifications to (a MinIO webhook target, or anything
// that relays S3 event notifications).
type StorageRoute struct {
	// Path is the webhook's path, a pattern as in Route.Path. Required.
	// The route answers POST (notifications) and HEAD (MinIO checks that
	// its target is up with a HEAD before it sends anything).
	Path string
	// Function is the function each record is delivered to. Required.
	Function *invoker.Function
	// Token, when set, is required on every request, as MinIO's webhook
	// target sends its auth_token: "Authorization: Bearer <Token>" (the
	// scheme in any case), or, for a Token of two words such as
	// "Token s3cr3t", that exact Authorization header (MinIO sends a
	// two-word auth_token as it is). It must not hold more than two words:
	// MinIO sends no header at all for those. Compared in constant time.
	// Defaults to "": no authentication.
	Token string
	// Mode is ModeSync (the default) or ModeAsync. Either way the webhook
	// answers 200 once every record of the body was accepted, not run:
	// with ModeSync (and with ModeAsync without AsyncTopic) accepted means
	// queued in the function's bounded in-memory queue; with ModeAsync and
	// AsyncTopic, durably published to that topic.
	Mode Mode
	// AsyncTopic, for ModeAsync, sends the events to this topic through
	// Publisher instead of the function's in-memory queue.
	AsyncTopic string
	// Publisher is required when AsyncTopic is set.
	Publisher Publisher
	// Filter, when set, is called with each record's event; events for
	// which it returns false are skipped and counted in
	// sluice_filtered_total{trigger="storage"}, and the webhook still
	// answers 200. It is called concurrently and must not retain the event.
	Filter func(*plugins.Event) bool
}

type storageRoute struct {
	fn       *invoker.Function
	auth     tokenAuth
	topic    string
	pub      Publisher
	filter   func(*plugins.Event) bool
	filtered *metrics.Counter
}

// HandleStorage adds a storage webhook. It must be called before Serve. It
// returns an error naming what is wrong with r, or wrapping ErrBadRoute or
// ErrDuplicateRoute.
//
// A POST body is decoded with formats.DecodeStorageNotification: an S3
// event notification, a MinIO bucket notification, or S3's s3:TestEvent
// (200 with no events). Each record becomes one envelope (a sluice.storage.* event) and one
// invocation, with Trigger "storage", the function's retry policy and its
// dead letter. The answer is 200 {"requestId":ID,"accepted":N,"filtered":M}
// once every event was accepted; 400 naming the bad field when the body is
// malformed, and nothing is accepted; 401 with WWW-Authenticate without the
// token; 429 with Retry-After when the function's queue cannot take all the
// records (none is queued); 503 with Retry-After when the function is
// closing or a publish failed (events published before the failure are
// published again by the sender's retry: their ids are stable, so a
// consumer can tell).
func (s *Server) HandleStorage(r StorageRoute) error {
	if r.Function == nil {
		return fmt.Errorf("storage route %s: no function", r.Path)
	}
	auth, err := newTokenAuth(r.Token)
	if err != nil {
		return fmt.Errorf("storage route %s: %w", r.Path, err)
	}
	switch r.Mode {
	case ModeSync, "":
		if r.AsyncTopic != "" {
			return fmt.Errorf("storage route %s: async_topic needs mode: async", r.Path)
		}
	case ModeAsync:
		if r.AsyncTopic != "" && r.Publisher == nil {
			return fmt.Errorf("storage route %s: async_topic needs a Kafka publisher", r.Path)
		}
	default:
		return fmt.Errorf("storage route %s: mode %q: must be sync or async", r.Path, r.Mode)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serving {
		return errors.New("gateway: HandleStorage after Serve")
	}
	rt := &storageRoute{fn: r.Function, auth: auth, topic: r.AsyncTopic, pub: r.Publisher, filter: r.Filter}
	if r.Filter != nil {
		rt.filtered = s.filteredCounter(TriggerStorage)
	}
	if err := s.handle("POST", r.Path, s.storageHandler(rt)); err != nil {
		return err
	}
	return s.handle("HEAD", r.Path, s.storageHead(rt))
}

// tokenAuth checks the Authorization header of a webhook request.
type tokenAuth struct {
	bearer []byte // the credential of "Bearer <credential>"
	exact  []byte // a whole header value, for a two-word token of another scheme
	on     bool
}

var strBearer = []byte("Bearer ")

func newTokenAuth(token string) (tokenAuth, error) {
	if token == "" {
		return tokenAuth{}, nil
	}
	for _, c := range []byte(token) {
		if c < ' ' && c != '\t' || c == 0x7f {
			return tokenAuth{}, errors.New("token: must not hold control characters")
		}
	}
	f := strings.Fields(token)
	switch {
	case len(f) == 1:
		return tokenAuth{bearer: []byte(f[0]), on: true}, nil
	case len(f) == 2 && strings.EqualFold(f[0], "Bearer"):
		return tokenAuth{bearer: []byte(f[1]), on: true}, nil
	case len(f) == 2:
		return tokenAuth{exact: []byte(f[0] + " " + f[1]), on: true}, nil
	}
	return tokenAuth{}, errors.New("token: must be one word, or two (a scheme and a credential, as MinIO's auth_token): MinIO sends no Authorization header for more")
}

func (a tokenAuth) ok(h []byte) bool {
	if !a.on {
		return true
	}
	if a.exact != nil {
		return subtle.ConstantTimeCompare(bytes.TrimSpace(h), a.exact) == 1
	}
	if len(h) < len(strBearer) || !bytes.EqualFold(h[:len(strBearer)], strBearer) {
		return false
	}
	return subtle.ConstantTimeCompare(bytes.TrimSpace(h[len(strBearer):]), a.bearer) == 1
}

// authorize answers 401 and returns false when the request lacks the token.
func (rt *storageRoute) authorize(ctx *fasthttp.RequestCtx, p *Params) bool {
	got := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	if rt.auth.ok(got) {
		return true
	}
	if len(got) == 0 {
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="sluice"`)
	} else {
		ctx.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, `Bearer realm="sluice", error="invalid_token"`)
	}
	writeError(ctx, p.id[:], fasthttp.StatusUnauthorized, "Unauthorized")
	return false
}

func (s *Server) storageHead(rt *storageRoute) Handler {
	return func(ctx *fasthttp.RequestCtx, p *Params) {
		if rt.authorize(ctx, p) {
			ctx.SetStatusCode(fasthttp.StatusOK)
		}
	}
}

func (s *Server) storageHandler(rt *storageRoute) Handler {
	return func(ctx *fasthttp.RequestCtx, p *Params) {
		if !rt.authorize(ctx, p) {
			return
		}
		evs, err := formats.DecodeStorageNotification(ctx.PostBody())
		if err != nil {
			writeError(ctx, p.id[:], fasthttp.StatusBadRequest, err.Error())
			return
		}
		tp := ctx.Request.Header.PeekBytes(strTraceparent)
		var traceparent string
		if len(tp) > 0 {
			traceparent = string(tp)
		}
		kept := evs[:0]
		for _, ev := range evs {
			ev.TraceParent = traceparent
			if rt.filter != nil && !rt.filter(ev) {
				rt.filtered.Inc()
				continue
			}
			kept = append(kept, ev)
		}
		if len(kept) > 0 {
			if rt.topic != "" {
				if err := s.publishAll(rt, kept); err != nil {
					s.errLog.Error().Str("function", rt.fn.Name()).Str("request_id", string(p.id[:])).
						Str("topic", rt.topic).Err(err).Msg("cannot publish storage events")
					ctx.Response.Header.SetCanonical(strRetryAfter, s.retryAfter)
					writeError(ctx, p.id[:], fasthttp.StatusServiceUnavailable, msgUnavailable)
					return
				}
			} else if err := submitStorage(rt.fn, kept); err != nil {
				s.writeInvokeError(ctx, p, err)
				return
			}
		}
		b := make([]byte, 0, 96)
		b = append(b, `{"requestId":"`...)
		b = append(b, p.id[:]...)
		b = append(b, `","accepted":`...)
		b = strconv.AppendInt(b, int64(len(kept)), 10)
		b = append(b, `,"filtered":`...)
		b = strconv.AppendInt(b, int64(len(evs)-len(kept)), 10)
		b = append(b, '}')
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.Response.Header.SetContentTypeBytes(strApplicationJSON)
		ctx.SetBody(b)
	}
}

// submitStorage queues the events of one notification as a group, which
// the invoker accepts whole or not at all: a body is never half accepted.
func submitStorage(fn *invoker.Function, evs []*plugins.Event) error {
	items := make([]invoker.Item, len(evs))
	ptrs := make([]*invoker.Item, len(evs))
	for i, ev := range evs {
		items[i] = invoker.Item{Event: ev, Trigger: TriggerStorage, DeadLetter: true, Done: asyncDone}
		ptrs[i] = &items[i]
	}
	return fn.SubmitGroup(ptrs)
}

func (s *Server) publishAll(rt *storageRoute, evs []*plugins.Event) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.PublishTimeout)
	defer cancel()
	for _, ev := range evs {
		if err := rt.pub.Publish(ctx, rt.topic, ev); err != nil {
			return fmt.Errorf("event %s: %w", ev.ID, err)
		}
	}
	return nil
}
