package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/robfig/cron/v3"

	"github.com/sluicehq/sluice/invoker"
	"github.com/sluicehq/sluice/invoker/filter"
	"github.com/sluicehq/sluice/plugins/builtin"
	"github.com/sluicehq/sluice/plugins/lambda"
	"github.com/sluicehq/sluice/plugins/runtimes"
)

// setStr stores e's string value in *dst.
func (d *decoder) setStr(dst *string) func(kv) {
	return func(e kv) {
		if s, ok := d.str(e); ok {
			*dst = s
		}
	}
}

// setEnum stores e's string value in *dst when it is one of allowed.
func (d *decoder) setEnum(dst *string, what string, allowed ...string) func(kv) {
	return func(e kv) {
		s, ok := d.str(e)
		if !ok || s == "" {
			return
		}
		for _, a := range allowed {
			if s == a {
				*dst = s
				return
			}
		}
		d.errorf(e.vpos, "%s: unknown %s %q (want %s)", e.label(), what, s, oneOf(allowed))
	}
}

func (d *decoder) setDur(dst *time.Duration) func(kv) {
	return func(e kv) {
		if v, ok := d.duration(e, false); ok {
			*dst = v
		}
	}
}

func (d *decoder) setSize(dst *int64) func(kv) {
	return func(e kv) {
		if v, ok := d.size(e); ok {
			*dst = v
		}
	}
}

func (d *decoder) setMin(dst *int, min int) func(kv) {
	return func(e kv) {
		if v, ok := d.atLeast(e, min); ok {
			*dst = v
		}
	}
}

func (d *decoder) setBool(dst *bool) func(kv) {
	return func(e kv) {
		if v, ok := d.boolean(e); ok {
			*dst = v
		}
	}
}

// setAddr stores e's host:port value in *dst.
func (d *decoder) setAddr(dst *string) func(kv) {
	return func(e kv) {
		s, ok := d.str(e)
		if !ok || s == "" {
			return
		}
		if msg := checkAddr(s); msg != "" {
			d.errorf(e.vpos, "%s: %s", e.label(), msg)
			return
		}
		*dst = s
	}
}

// setTopic stores e's Kafka topic name in *dst.
func (d *decoder) setTopic(dst *string) func(kv) {
	return func(e kv) {
		s, ok := d.str(e)
		if !ok || s == "" {
			return
		}
		if msg := checkTopic(s); msg != "" {
			d.errorf(e.vpos, "%s: %s", e.label(), msg)
			return
		}
		*dst = s
	}
}

// setTopics stores e's list of Kafka topic names in *dst.
func (d *decoder) setTopics(dst *[]string) func(kv) {
	return func(e kv) {
		list, ok := d.strList(e, true)
		if !ok {
			return
		}
		for _, t := range list {
			if msg := checkTopic(t); msg != "" {
				d.errorf(e.vpos, "%s: %s", e.label(), msg)
				return
			}
		}
		*dst = list
	}
}

func (d *decoder) server(e kv, s *Server) {
	d.object(e, fields{
		"listen":        d.setAddr(&s.Listen),
		"admin_listen":  d.setAddr(&s.AdminListen),
		"admin_token":   d.setSecret(&s.AdminToken, true),
		"invoke_api":    func(e kv) { d.invokeAPI(e, &s.InvokeAPI) },
		"max_body":      d.setSize(&s.MaxBody),
		"max_headers":   d.setMin(&s.MaxHeaders, 1),
		"read_timeout":  d.setDur(&s.ReadTimeout),
		"drain_timeout": d.setDur(&s.DrainTimeout),
		"pidfile":       d.setStr(&s.Pidfile),
		"tls": func(e kv) {
			t := &TLS{}
			if !d.object(e, fields{"cert": d.setStr(&t.Cert), "key": d.setStr(&t.Key)}) {
				return
			}
			if t.Cert == "" {
				d.errorf(e.kpos, "tls needs cert")
			}
			if t.Key == "" {
				d.errorf(e.kpos, "tls needs key")
			}
			s.TLS = t
		},
	})
}

func (d *decoder) kafka(e kv, k *Kafka) {
	d.object(e, fields{
		"embedded":            d.setBool(&k.Embedded),
		"embedded_partitions": d.setMin(&k.EmbeddedPartitions, 1),
		"brokers": func(e kv) {
			list, ok := d.strList(e, true)
			if !ok {
				return
			}
			for _, b := range list {
				if msg := checkAddr(b); msg != "" {
					d.errorf(e.vpos, "%s: %s", e.label(), msg)
					return
				}
			}
			k.Brokers = list
		},
	})
}

func (d *decoder) log(e kv, l *Log) {
	d.object(e, fields{
		"level":  d.setEnum(&l.Level, "log level", "debug", "info", "warn", "error"),
		"format": d.setEnum(&l.Format, "log format", "json", "console"),
	})
}

var runtimeNames = []string{RuntimeGo, RuntimePlugin, RuntimeProcess, RuntimeLambda, RuntimePython, RuntimeNodejs, RuntimeJava}

func (d *decoder) functions(e kv, f *File) {
	es, _ := d.entries(e)
	for _, fe := range es {
		d.pos[fe.path] = fe.kpos
		d.vpos[fe.path] = fe.vpos
		if !isFunctionName(fe.key) {
			d.errorf(fe.kpos, "function name %q: want 1 to 64 letters, digits, '-' or '_'", fe.key)
		}
		fn := Function{Name: fe.key, Pos: fe.kpos}
		if d.function(fe, &fn) {
			f.Functions = append(f.Functions, fn)
		}
	}
}

// function decodes one function and checks its runtime-specific keys.
func (d *decoder) function(fe kv, fn *Function) bool {
	// written holds the entries of the runtime-specific keys, to report
	// one that does not apply to the runtime at its place.
	written := make(map[string]kv)
	var envPos map[string]Pos
	note := func(set func(kv)) func(kv) {
		return func(e kv) {
			written[e.key] = e
			set(e)
		}
	}
	ok := d.object(fe, fields{
		"runtime": note(func(e kv) {
			s, ok := d.str(e)
			if !ok {
				return
			}
			for _, r := range runtimeNames {
				if s == r {
					fn.Runtime = s
					return
				}
			}
			if kind, version, ok := runtimes.Parse(s); ok {
				fn.Runtime, fn.RuntimeVersion = kind, version
				return
			}
			switch {
			case s == "":
				d.errorf(e.vpos, "runtime: must not be empty (want %s)", oneOf(runtimeNames))
			case strings.HasPrefix(s, "provided"):
				d.errorf(e.vpos, "runtime: %q is Lambda's custom runtime: write runtime: lambda with the bootstrap as its command", s)
			default:
				d.errorf(e.vpos, "runtime: unknown runtime %q (want %s; python3.12, nodejs20.x and java21 are read as python, nodejs and java)", s, oneOf(runtimeNames))
			}
		}),
		"handler":     note(d.setStr(&fn.Handler)),
		"path":        note(d.setStr(&fn.Path)),
		"code":        note(d.setStr(&fn.Code)),
		"interpreter": note(d.setStr(&fn.Interpreter)),
		"dir":         note(d.setStr(&fn.Dir)),
		"command": note(func(e kv) {
			list, ok := d.strList(e, false)
			if ok && len(list) == 0 {
				d.errorf(e.vpos, "command: must not be empty")
			}
			fn.Command = list
		}),
		"instances": note(d.setMin(&fn.Instances, 1)),
		"scaling": note(func(e kv) {
			sc := &fn.Scaling
			var minKV, maxKV kv
			var minSet, maxSet bool
			if !d.object(e, fields{
				"min":  func(e kv) { minKV, minSet = e, true; d.setMin(&sc.Min, 0)(e) },
				"max":  func(e kv) { maxKV, maxSet = e, true; d.setMin(&sc.Max, 1)(e) },
				"idle": d.setDur(&sc.Idle),
			}) {
				return
			}
			sc.Set = true
			switch {
			case minSet && maxSet && sc.Min > sc.Max && sc.Max > 0:
				d.errorf(minKV.vpos, "min: %d is more than max %d at %s", sc.Min, sc.Max, maxKV.vpos)
			case minSet && !maxSet && sc.Min > DefaultScalingMax:
				d.errorf(minKV.vpos, "min: %d is more than the default max %d; set max", sc.Min, DefaultScalingMax)
			}
		}),
		"env":         func(e kv) { fn.Env, envPos = d.env(e) },
		"timeout":     d.setDur(&fn.Timeout),
		"memory":      d.setSize(&fn.Memory),
		"concurrency": d.setMin(&fn.Concurrency, 1),
		"queue":       d.setMin(&fn.Queue, 1),
		"batch": func(e kv) {
			b := &fn.Batch
			var maxItems, syncItems kv
			d.object(e, fields{
				"max_items":  func(e kv) { maxItems = e; d.setMin(&b.MaxItems, 1)(e) },
				"sync_items": func(e kv) { syncItems = e; d.setMin(&b.SyncItems, 1)(e) },
				"max_bytes":  d.setSize(&b.MaxBytes),
				"max_wait": func(e kv) {
					if v, ok := d.duration(e, true); ok {
						b.MaxWait = &v
					}
				},
			})
			if b.SyncItems > 0 {
				limit, at := b.MaxItems, "at "+maxItems.vpos.String()
				if limit == 0 {
					limit, at = invoker.DefaultMaxItems, "by default"
				}
				if b.SyncItems > limit {
					d.errorf(syncItems.vpos, "sync_items: %d is more than max_items %d %s", b.SyncItems, limit, at)
				}
			}
		},
		"retry": func(e kv) {
			r := &fn.Retry
			var backoff, maxBackoff kv
			d.object(e, fields{
				"attempts":    d.setMin(&r.Attempts, 1),
				"backoff":     func(e kv) { backoff = e; d.setDur(&r.Backoff)(e) },
				"max_backoff": func(e kv) { maxBackoff = e; d.setDur(&r.MaxBackoff)(e) },
				"bisect":      d.setBool(&r.Bisect),
				"max_age":     d.setDur(&r.MaxAge),
			})
			if r.Backoff > 0 && r.MaxBackoff > 0 && r.Backoff > r.MaxBackoff {
				d.errorf(backoff.vpos, "backoff: %s is more than max_backoff %s at %s", r.Backoff, r.MaxBackoff, maxBackoff.vpos)
			}
		},
		"dead_letter": func(e kv) {
			dl := &fn.DeadLetter
			if !d.object(e, fields{"topic": d.setTopic(&dl.Topic), "file": d.setStr(&dl.File)}) {
				return
			}
			topic, file := dl.Topic != "", dl.File != ""
			switch {
			case d.bad[join(e.path, "topic")] || d.bad[join(e.path, "file")]:
			case topic && file:
				d.errorf(e.kpos, "dead_letter: set topic or file, not both")
			case !topic && !file:
				d.errorf(e.kpos, "dead_letter: set topic or file")
			}
		},
	})
	if !ok {
		return false
	}
	where := fmt.Sprintf("function %q", fn.Name)
	switch fn.Runtime {
	case "":
		if _, set := written["runtime"]; !set {
			d.errorf(fn.Pos, "%s needs runtime (%s)", where, oneOf(runtimeNames))
		}
		return true // the runtime's own keys cannot be judged
	case RuntimeGo:
		h, set := written["handler"]
		switch {
		case !set:
			d.errorf(fn.Pos, "%s: runtime go needs handler, the name of a builtin function (%s)", where, oneOf(builtin.Names()))
		case fn.Handler == "":
			if !d.bad[h.path] {
				d.errorf(h.vpos, "handler: must not be empty")
			}
		default:
			if _, ok := builtin.Lookup(fn.Handler); ok {
				break
			}
			if s := suggest(fn.Handler, builtin.Names()); s != "" {
				d.errorf(h.vpos, "handler: no builtin function %q (did you mean %q?)", fn.Handler, s)
			} else {
				d.errorf(h.vpos, "handler: no builtin function %q (want %s)", fn.Handler, oneOf(builtin.Names()))
			}
		}
	case RuntimePlugin:
		p, set := written["path"]
		switch {
		case !set:
			d.errorf(fn.Pos, "%s: runtime plugin needs path, the plugin's .so file", where)
		case fn.Path == "" && !d.bad[p.path]:
			d.errorf(p.vpos, "path: must not be empty")
		}
	case RuntimeProcess, RuntimeLambda:
		// An empty command is reported where it is read.
		if _, set := written["command"]; !set {
			d.errorf(fn.Pos, "%s: runtime %s needs command, a list: the program and its arguments", where, fn.Runtime)
		}
		if h, set := written["handler"]; set && fn.Runtime == RuntimeLambda && fn.Handler == "" && !d.bad[h.path] {
			d.errorf(h.vpos, "handler: must not be empty")
		}
	case RuntimePython, RuntimeNodejs, RuntimeJava:
		h, set := written["handler"]
		switch {
		case !set:
			form := "FILE.FUNCTION"
			if fn.Runtime == RuntimeJava {
				form = "pkg.Class::method"
			}
			d.errorf(fn.Pos, "%s: runtime %s needs handler, %s (as %s)", where, fn.Runtime, form, exampleHandler(fn.Runtime))
		case d.bad[h.path]:
		default:
			if err := runtimes.CheckHandlerOf(fn.Runtime, fn.Handler); err != nil {
				d.errorf(h.vpos, "handler: %v", err)
			}
		}
	}
	for _, key := range []string{"code", "interpreter", "dir"} {
		if e, set := written[key]; set && !d.bad[e.path] && fieldOf(fn, key) == "" {
			d.errorf(e.vpos, "%s: must not be empty", key)
		}
	}
	if fn.LambdaPool() {
		// The pool's own check, so that validate and serve agree.
		for k, p := range envPos {
			if err := lambda.CheckEnvKey(k); err != nil {
				d.errorf(p, "env.%s: %v", k, err)
			}
		}
	}
	managed := []string{RuntimePython, RuntimeNodejs, RuntimeJava}
	only := map[string][]string{
		"handler":     {RuntimeGo, RuntimeLambda, RuntimePython, RuntimeNodejs, RuntimeJava},
		"path":        {RuntimePlugin},
		"command":     {RuntimeProcess, RuntimeLambda},
		"instances":   {RuntimeProcess, RuntimeLambda, RuntimePython, RuntimeNodejs, RuntimeJava},
		"code":        managed,
		"interpreter": managed,
		"dir":         {RuntimeLambda},
		"scaling":     {RuntimeProcess, RuntimeLambda, RuntimePython, RuntimeNodejs, RuntimeJava},
	}
	if i, set := written["instances"]; set {
		if sc, set := written["scaling"]; set {
			d.errorf(sc.kpos, "scaling: set instances (a fixed count) or scaling, not both (instances at %s)", i.kpos)
		}
	}
	for _, key := range []string{"handler", "path", "command", "instances", "code", "interpreter", "dir", "scaling"} {
		e, set := written[key]
		if !set {
			continue
		}
		applies := false
		for _, r := range only[key] {
			applies = applies || r == fn.Runtime
		}
		if !applies {
			d.errorf(e.kpos, "%s: only used by runtime %s, not %s", key, andList(only[key]), fn.Runtime)
		}
	}
	return true
}

func exampleHandler(runtime string) string {
	switch runtime {
	case RuntimePython:
		return "lambda_function.lambda_handler"
	case RuntimeJava:
		return "example.Hello::handleRequest"
	}
	return "index.handler"
}

func fieldOf(fn *Function, key string) string {
	switch key {
	case "code":
		return fn.Code
	case "interpreter":
		return fn.Interpreter
	case "dir":
		return fn.Dir
	}
	return ""
}

// env decodes a mapping of environment variables; values are scalars. pos
// holds each variable's key position.
func (d *decoder) env(e kv) (m map[string]string, pos map[string]Pos) {
	es, ok := d.entries(e)
	if !ok || len(es) == 0 {
		return nil, nil
	}
	m = make(map[string]string, len(es))
	pos = make(map[string]Pos, len(es))
	for _, x := range es {
		if x.key == "" || strings.ContainsAny(x.key, "=\x00") {
			d.errorf(x.kpos, "env: invalid variable name %q", x.key)
			continue
		}
		if x.val != nil && !isScalar(x.val) {
			d.typeErr(x, "a string")
			continue
		}
		if s, _, ok := d.text(x); ok {
			m[x.key] = s
			pos[x.key] = x.kpos
		}
	}
	return m, pos
}

var kinds = []string{KindHTTP, KindStorage, KindKafka, KindCDC, KindSchedule}

// bodyKeys are the keys of the trigger kinds, to explain one written a
// level too high.
var bodyKeys = map[string]bool{
	"function": true, "method": true, "path": true, "mode": true, "async_topic": true, "token": true,
	"topics": true, "group": true, "start": true, "format": true, "ordering": true, "filter": true,
	"cron": true, "rate": true, "timezone": true, "payload": true, "catch_up": true, "name": true,
}

func (d *decoder) triggers(e kv, f *File) {
	var items []ast.Node
	switch v := e.val.(type) {
	case nil, *ast.NullNode:
		return
	case *ast.SequenceNode:
		items = v.Values
	default:
		d.typeErr(e, "a list")
		return
	}
	known := make(fields, len(kinds))
	for _, k := range kinds {
		known[k] = func(kv) {}
	}
	for i, item := range items {
		path := fmt.Sprintf("triggers[%d]", i)
		ie := kv{key: "trigger", val: d.resolve(item), vpos: pos(item), path: path}
		if ie.vpos.Line == 0 {
			ie.vpos = e.kpos
		}
		d.pos[path] = ie.vpos
		es, ok := d.entries(ie)
		if !ok {
			continue
		}
		var found []kv
		unknown := false
		for _, x := range es {
			if known[x.key] == nil {
				if bodyKeys[x.key] {
					d.errorf(x.kpos, "%s goes inside the trigger's kind, as in - http: {path: /x, function: f}", x.key)
				} else {
					d.unknownKey(x, known)
				}
				unknown = true
				continue
			}
			found = append(found, x)
		}
		switch {
		case len(found) == 0:
			if !unknown {
				d.errorf(ie.vpos, "trigger needs one of %s", oneOf(kinds))
			}
			continue
		case len(found) > 1:
			names := make([]string, len(found))
			for j, x := range found {
				names[j] = x.key
			}
			d.errorf(found[1].kpos, "trigger has several kinds (%s); write one list item per trigger", strings.Join(names, ", "))
			continue
		}
		k := found[0]
		d.pos[k.path] = k.kpos
		d.vpos[k.path] = k.vpos
		t := Trigger{Kind: k.key, Pos: k.kpos}
		if d.trigger(k, &t) {
			f.Triggers = append(f.Triggers, t)
			d.trigPath = append(d.trigPath, k.path)
		}
	}
}

// trigger decodes the mapping of one trigger kind.
func (d *decoder) trigger(k kv, t *Trigger) bool {
	fs := fields{"function": d.setStr(&t.Function)}
	var missing []string
	need := func(key string, set bool) { d.need(k, &missing, key, set) }
	var check func()
	switch k.key {
	case KindHTTP:
		h := &HTTP{}
		t.HTTP = h
		fs["method"] = func(e kv) {
			s, ok := d.str(e)
			if !ok || s == "" {
				return
			}
			u := strings.ToUpper(s)
			for _, m := range methods {
				if u == m {
					h.Method = u
					return
				}
			}
			d.errorf(e.vpos, "method: unknown method %q (want %s)", s, oneOf(methods))
		}
		fs["path"] = d.setRoute(&h.Path)
		fs["mode"] = d.setEnum(&h.Mode, "mode", ModeSync, ModeAsync)
		fs["async_topic"] = d.setTopic(&h.AsyncTopic)
		fs["filter"] = d.setFilter(t)
		check = func() {
			need("path", h.Path != "")
			d.asyncTopic(k, h.Mode)
		}
	case KindStorage:
		s := &Storage{}
		t.Storage = s
		fs["path"] = d.setRoute(&s.Path)
		fs["token"] = func(e kv) {
			v, ok := d.secret(e, true)
			if !ok {
				return
			}
			// MinIO sends a one-word token as "Bearer <token>", a two-word
			// one as it is, and nothing for more words: such a token could
			// never match.
			if len(strings.Fields(v)) > 2 || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				d.errorf(e.vpos, "token: at most two words and no control characters (MinIO sends no Authorization header for longer tokens)")
				return
			}
			s.Token = v
		}
		fs["mode"] = d.setEnum(&s.Mode, "mode", ModeSync, ModeAsync)
		fs["async_topic"] = d.setTopic(&s.AsyncTopic)
		fs["filter"] = d.setFilter(t)
		check = func() {
			need("path", s.Path != "")
			d.asyncTopic(k, s.Mode)
		}
	case KindKafka:
		c := &KafkaTrigger{}
		t.Kafka = c
		fs["topics"] = d.setTopics(&c.Topics)
		fs["group"] = d.setStr(&c.Group)
		fs["start"] = d.setEnum(&c.Start, "start", StartEarliest, StartLatest)
		fs["format"] = d.setEnum(&c.Format, "format", FormatRaw, FormatCloudEvents, FormatS3, FormatCDC)
		fs["ordering"] = d.setEnum(&c.Ordering, "ordering", OrderingPartition, OrderingKey, OrderingNone)
		fs["filter"] = d.setFilter(t)
		check = func() {
			need("topics", len(c.Topics) > 0)
			need("group", c.Group != "")
		}
	case KindCDC:
		c := &CDC{}
		t.CDC = c
		fs["topics"] = d.setTopics(&c.Topics)
		fs["group"] = d.setStr(&c.Group)
		fs["start"] = d.setEnum(&c.Start, "start", StartEarliest, StartLatest)
		fs["ordering"] = d.setEnum(&c.Ordering, "ordering", OrderingPartition, OrderingKey, OrderingNone)
		fs["filter"] = d.setFilter(t)
		check = func() {
			need("topics", len(c.Topics) > 0)
			need("group", c.Group != "")
		}
	case KindSchedule:
		s := &Schedule{CatchUp: true}
		t.Schedule = s
		fs["cron"] = func(e kv) {
			v, ok := d.str(e)
			if !ok {
				return
			}
			if msg := checkCron(v); msg != "" {
				d.errorf(e.vpos, "cron: %s", msg)
				return
			}
			s.Cron = v
		}
		fs["rate"] = func(e kv) {
			v, ok := d.duration(e, false)
			if !ok {
				return
			}
			if v < time.Second {
				d.errorf(e.vpos, "rate: must be at least 1s, got %s", v)
				return
			}
			s.Rate = v
		}
		fs["timezone"] = func(e kv) {
			v, ok := d.str(e)
			if !ok || v == "" {
				return
			}
			loc, err := time.LoadLocation(v)
			if err != nil || strings.HasPrefix(v, "/") {
				d.errorf(e.vpos, "timezone: unknown time zone %q (want an IANA name like Europe/Paris)", v)
				return
			}
			s.Timezone, s.Location = v, loc
		}
		fs["payload"] = func(e kv) {
			if _, null := e.val.(*ast.NullNode); null {
				return
			}
			if b, ok := d.appendJSON(nil, e); ok {
				s.Payload = b
			}
		}
		fs["catch_up"] = d.setBool(&s.CatchUp)
		fs["filter"] = d.setFilter(t)
		fs["name"] = d.setStr(&s.Name)
		check = func() {
			cronPath, ratePath := join(k.path, "cron"), join(k.path, "rate")
			cronPos, cron := d.vpos[cronPath]
			ratePos, rate := d.vpos[ratePath]
			switch {
			case cron && rate:
				d.errorf(d.pos[join(k.path, "rate")], "schedule takes cron or rate, not both")
			case s.Cron != "" || s.Rate != 0:
			case cron:
				if !d.bad[cronPath] {
					d.errorf(cronPos, "cron: must not be empty")
				}
			case rate:
				if !d.bad[ratePath] {
					d.errorf(ratePos, "rate: must not be empty")
				}
			default:
				d.errorf(k.kpos, "schedule needs cron or rate")
			}
			if tzPos, tz := d.vpos[join(k.path, "timezone")]; tz && rate && !cron {
				d.errorf(tzPos, "timezone: applies to cron only; a rate is the same in every zone")
			}
		}
	}
	if !d.object(k, fs) {
		return false
	}
	check()
	need("function", t.Function != "")
	if len(missing) > 0 {
		d.errorf(k.kpos, "%s trigger needs %s", k.key, andList(missing))
	}
	return true
}

var methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", MethodAny}

// need notes a required key of trigger k that is missing, for one message
// listing them all, and reports one written empty.
func (d *decoder) need(k kv, missing *[]string, key string, set bool) {
	if set {
		return
	}
	path := join(k.path, key)
	if p, written := d.vpos[path]; written {
		if !d.bad[path] {
			d.errorf(p, "%s: must not be empty", key)
		}
		return
	}
	*missing = append(*missing, key)
}

// asyncTopic reports an async_topic given with mode sync.
func (d *decoder) asyncTopic(k kv, mode string) {
	if mode == ModeAsync {
		return
	}
	if p, written := d.pos[join(k.path, "async_topic")]; written {
		d.errorf(p, "async_topic: only used with mode async")
	}
}

// setRoute stores e's route path in *dst.
func (d *decoder) setRoute(dst *string) func(kv) {
	return func(e kv) {
		s, ok := d.str(e)
		if !ok || s == "" {
			return
		}
		if _, msg := routePattern(s); msg != "" {
			d.errorf(e.vpos, "path: %s", msg)
			return
		}
		if strings.HasPrefix(s, lambdaInvokePrefix) {
			d.errorf(e.vpos, "path: %s is the Lambda invoke API's", lambdaInvokePrefix)
			return
		}
		*dst = s
	}
}

// lambdaInvokePrefix is served by the gateway itself: the Lambda Invoke API.
const lambdaInvokePrefix = "/2015-03-31/"

// setFilter stores the filter pattern of t as JSON, compiled by
// filter.Compile as the trigger will, so that a bad pattern is reported at
// its position.
func (d *decoder) setFilter(t *Trigger) func(kv) {
	return func(e kv) {
		if _, isMap := e.val.(*ast.MappingNode); !isMap {
			if e.val != nil {
				d.typeErr(e, "a mapping (an EventBridge pattern)")
			}
			return
		}
		b, ok := d.appendJSON(nil, e)
		if !ok {
			return
		}
		if _, err := filter.Compile(b); err != nil {
			d.errorf(e.vpos, "filter: %v", err)
			return
		}
		t.Filter, t.FilterPos = b, e.kpos
	}
}

// checkCron parses a cron expression as the schedule trigger will, with
// robfig/cron/v3's standard parser.
func checkCron(s string) (msg string) {
	if strings.TrimSpace(s) == "" {
		return "must not be empty"
	}
	// robfig/cron/v3 panics on "TZ=x" without a space; a time zone in the
	// expression would also compete with the timezone key.
	if strings.HasPrefix(s, "TZ=") || strings.HasPrefix(s, "CRON_TZ=") {
		return "set the time zone with the timezone key, not in the expression"
	}
	defer func() {
		// The parser is not ours and is fed user text: a panic in it must
		// be a bad expression, not a crashed reload.
		if r := recover(); r != nil {
			msg = fmt.Sprintf("invalid cron expression %q", s)
		}
	}()
	if _, err := cron.ParseStandard(s); err != nil {
		return fmt.Sprintf("invalid cron expression %q: %v", s, err)
	}
	return ""
}
