package config

import (
	"fmt"
	"time"
)

// applyDefaults fills in the defaults that belong to the file (see the
// Default constants and each field's doc).
func (d *decoder) applyDefaults(f *File) {
	s := &f.Server
	setDefault(&s.Listen, DefaultListen)
	setDefault(&s.AdminListen, DefaultAdminListen)
	if s.MaxBody == 0 {
		s.MaxBody = DefaultMaxBody
	}
	if s.MaxHeaders == 0 {
		s.MaxHeaders = DefaultMaxHeaders
	}
	if s.ReadTimeout == 0 {
		s.ReadTimeout = DefaultReadTimeout
	}
	if s.DrainTimeout == 0 {
		s.DrainTimeout = DefaultDrainTimeout
	}
	if f.Kafka.EmbeddedPartitions == 0 {
		f.Kafka.EmbeddedPartitions = DefaultEmbeddedPartitions
	}
	if f.Kafka.Embedded && len(f.Kafka.Brokers) == 0 {
		f.Kafka.Brokers = []string{DefaultEmbeddedBroker}
	}
	setDefault(&f.Log.Level, DefaultLogLevel)
	setDefault(&f.Log.Format, DefaultLogFormat)
	d.tracingDefaults(&f.Tracing)
	for i := range f.Functions {
		fn := &f.Functions[i]
		if !fn.Subprocess() {
			continue
		}
		switch {
		case fn.Scaling.Set:
			if fn.Scaling.Max == 0 {
				fn.Scaling.Max = DefaultScalingMax
			}
			if fn.Scaling.Idle == 0 {
				fn.Scaling.Idle = DefaultScalingIdle
			}
		default:
			if fn.Instances == 0 {
				fn.Instances = DefaultInstances
			}
			fn.Scaling = Scaling{Min: fn.Instances, Max: fn.Instances}
		}
	}
	for i := range f.Triggers {
		t := &f.Triggers[i]
		switch {
		case t.HTTP != nil:
			setDefault(&t.HTTP.Method, MethodAny)
			setDefault(&t.HTTP.Mode, ModeSync)
		case t.Storage != nil:
			setDefault(&t.Storage.Mode, ModeSync)
		case t.Kafka != nil:
			setDefault(&t.Kafka.Start, StartLatest)
			setDefault(&t.Kafka.Format, FormatRaw)
			setDefault(&t.Kafka.Ordering, OrderingPartition)
		case t.CDC != nil:
			setDefault(&t.CDC.Start, StartLatest)
			setDefault(&t.CDC.Ordering, OrderingKey)
		case t.Schedule != nil:
			if t.Schedule.Timezone == "" {
				t.Schedule.Timezone, t.Schedule.Location = DefaultTimezone, time.UTC
			}
		}
	}
}

func setDefault(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

// check runs the checks that need the whole file: references to functions,
// route collisions, shared consumer groups, Kafka being configured, the
// admin token.
func (d *decoder) check(f *File) {
	d.checkFunctionRefs(f)
	d.checkRoutes(f)
	d.checkGroups(f)
	d.checkKafkaUse(f)
	d.checkAdmin(f)
	d.checkInvokeAPI(f)
}

func (d *decoder) checkFunctionRefs(f *File) {
	names := make([]string, len(f.Functions))
	for i, fn := range f.Functions {
		names[i] = fn.Name
	}
	for i, t := range f.Triggers {
		if t.Function == "" || f.Function(t.Function) != nil {
			continue
		}
		p := d.vpos[join(d.trigPath[i], "function")]
		if s := suggest(t.Function, names); s != "" {
			d.errorf(p, "function: no function %q in functions (did you mean %q?)", t.Function, s)
		} else {
			d.errorf(p, "function: no function %q in functions", t.Function)
		}
	}
}

// route is a claimed HTTP path, for collision checks.
type route struct {
	method  string // "" for a storage webhook
	path    string
	pattern string
	pos     Pos
}

func (r route) String() string {
	if r.method == "" {
		return "storage webhook " + r.path
	}
	return "route " + r.method + " " + r.path
}

// collides reports whether two routes would match the same requests: the
// same pattern and the same method, ANY matching every method. A storage
// webhook owns its path whatever the method.
func (r route) collides(o route) bool {
	if r.pattern != o.pattern {
		return false
	}
	return r.method == "" || o.method == "" || r.method == o.method || r.method == MethodAny || o.method == MethodAny
}

func (d *decoder) checkRoutes(f *File) {
	var seen []route
	for i, t := range f.Triggers {
		var r route
		switch {
		case t.HTTP != nil:
			r = route{method: t.HTTP.Method, path: t.HTTP.Path}
		case t.Storage != nil:
			r = route{path: t.Storage.Path}
		default:
			continue
		}
		if r.path == "" {
			continue
		}
		r.pattern, _ = routePattern(r.path)
		r.pos = d.vpos[join(d.trigPath[i], "path")]
		for _, o := range seen {
			if r.collides(o) {
				d.errorf(r.pos, "path: %s collides with %s at %s", r, o, o.pos)
				break
			}
		}
		seen = append(seen, r)
	}
}

// checkGroups refuses two stream triggers in one consumer group: they would
// split the partitions between them, each function seeing part of the
// records.
func (d *decoder) checkGroups(f *File) {
	first := make(map[string]Pos)
	for i, t := range f.Triggers {
		var group string
		switch {
		case t.Kafka != nil:
			group = t.Kafka.Group
		case t.CDC != nil:
			group = t.CDC.Group
		}
		if group == "" {
			continue
		}
		p := d.vpos[join(d.trigPath[i], "group")]
		if fp, dup := first[group]; dup {
			d.errorf(p, "group: consumer group %q is already used by the trigger at %s", group, fp)
			continue
		}
		first[group] = p
	}
}

// checkKafkaUse requires a Kafka cluster when anything uses one. It reports
// once, at the first use, as the fix is one line.
func (d *decoder) checkKafkaUse(f *File) {
	if f.Kafka.Embedded || len(f.Kafka.Brokers) > 0 {
		return
	}
	var uses []Error
	use := func(p Pos, what string) {
		uses = append(uses, Error{Pos: p, Msg: what})
	}
	for _, fn := range f.Functions {
		if fn.DeadLetter.Topic != "" {
			use(d.vpos["functions."+fn.Name+".dead_letter.topic"], "dead_letter topic")
		}
	}
	for i, t := range f.Triggers {
		p := d.trigPath[i]
		switch {
		case t.Kafka != nil:
			use(d.pos[p], "kafka trigger")
		case t.CDC != nil:
			use(d.pos[p], "cdc trigger")
		case t.HTTP != nil && t.HTTP.AsyncTopic != "":
			use(d.vpos[join(p, "async_topic")], "async_topic")
		case t.Storage != nil && t.Storage.AsyncTopic != "":
			use(d.vpos[join(p, "async_topic")], "async_topic")
		}
	}
	if len(uses) == 0 {
		return
	}
	uses = sortErrors(uses)
	more := ""
	if n := len(uses) - 1; n > 0 {
		more = fmt.Sprintf(" (and %d more uses)", n)
	}
	d.errorf(uses[0].Pos, "this %s needs a Kafka cluster: set kafka.brokers, or kafka.embedded: true%s", uses[0].Msg, more)
}

// checkAdmin requires a token on an admin listener reachable from other
// hosts: it serves pprof and metrics.
func (d *decoder) checkAdmin(f *File) {
	s := f.Server
	if s.AdminToken != "" || isLoopback(s.AdminListen) || d.bad["server.admin_token"] {
		return
	}
	if p, written := d.vpos["server.admin_token"]; written {
		d.errorf(p, "admin_token: is empty, but admin_listen %q is not a loopback address", s.AdminListen)
		return
	}
	d.errorf(d.vpos["server.admin_listen"], "admin_listen: %q is not a loopback address: set server.admin_token", s.AdminListen)
}
