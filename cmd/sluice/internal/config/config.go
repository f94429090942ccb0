package config

import (
	"encoding/json"
	"fmt"
	"time"
)

// Defaults applied by Parse when the file leaves a value out.
const (
	DefaultListen             = "127.0.0.1:8080"
	DefaultAdminListen        = "127.0.0.1:9090"
	DefaultMaxBody            = 6 << 20 // 6 MiB, Lambda's synchronous payload limit
	DefaultMaxHeaders         = 100
	DefaultReadTimeout        = 30 * time.Second
	DefaultDrainTimeout       = 30 * time.Second
	DefaultEmbeddedPartitions = 8
	DefaultEmbeddedBroker     = "127.0.0.1:9092"
	DefaultLogLevel           = "info"
	DefaultLogFormat          = "json"
	DefaultInstances          = 1
	DefaultScalingMax         = 16
	DefaultScalingIdle        = 5 * time.Minute
	DefaultTimezone           = "UTC"
)

// Runtimes of a function (Function.Runtime).
const (
	RuntimeGo      = "go"
	RuntimePlugin  = "plugin"
	RuntimeProcess = "process"
	RuntimeLambda  = "lambda"
	// RuntimePython, RuntimeNodejs and RuntimeJava are the managed
	// runtimes: a Lambda handler (FILE.FUNCTION, or pkg.Class::method for
	// Java) run by Sluice's own runtime interface client.
	RuntimePython = "python"
	RuntimeNodejs = "nodejs"
	RuntimeJava   = "java"
)

// Kinds of a trigger (Trigger.Kind).
const (
	KindHTTP     = "http"
	KindStorage  = "storage"
	KindKafka    = "kafka"
	KindCDC      = "cdc"
	KindSchedule = "schedule"
)

// Modes of HTTP and storage triggers.
const (
	ModeSync  = "sync"
	ModeAsync = "async"
)

// Start positions of a consumer group that has no committed offset.
const (
	StartEarliest = "earliest"
	StartLatest   = "latest"
)

// Record formats of a Kafka trigger.
const (
	FormatRaw         = "raw"
	FormatCloudEvents = "cloudevents"
	FormatS3          = "s3"
	FormatCDC         = "cdc"
)

// Orderings of stream triggers.
const (
	OrderingPartition = "partition"
	OrderingKey       = "key"
	OrderingNone      = "none"
)

// MethodAny is HTTP.Method for a route that takes every method.
const MethodAny = "ANY"

// MaxFileSize is the largest configuration Parse accepts. A real file is a
// few KiB; the bound keeps the YAML parser, whose time grows faster than
// linearly on some inputs, from being handed something that is not a config.
const MaxFileSize = 512 << 10

// Pos is a 1-based line and column in the file. The zero Pos means unknown.
type Pos struct {
	Line, Col int
}

// String returns "LINE:COL".
func (p Pos) String() string { return fmt.Sprintf("%d:%d", p.Line, p.Col) }

// File is a parsed and validated configuration. Parse returns it only when
// the file has no problem. A File is not modified after Parse, so it is safe
// for concurrent reads.
type File struct {
	// Path is the name given to Parse (the file's path for Load); it starts
	// every position in messages.
	Path      string
	Server    Server
	Kafka     Kafka
	Log       Log
	Tracing   Tracing
	Functions []Function // in file order
	Triggers  []Trigger  // in file order

	pos map[string]Pos
}

// Function returns the function named name, or nil.
func (f *File) Function(name string) *Function {
	for i := range f.Functions {
		if f.Functions[i].Name == name {
			return &f.Functions[i]
		}
	}
	return nil
}

// Pos returns the position of the key at path (see the package doc for the
// path syntax), and false when the file has no such key, for instance a
// default that was not written.
func (f *File) Pos(path string) (Pos, bool) {
	p, ok := f.pos[path]
	return p, ok
}

// Where returns "FILE:LINE:COL" for the key at path, falling back to its
// closest written parent ("functions.echo" for an unwritten
// "functions.echo.timeout"), or to "FILE" alone.
func (f *File) Where(path string) string {
	for path != "" {
		if p, ok := f.pos[path]; ok {
			return f.At(p)
		}
		path = parentPath(path)
	}
	return f.Path
}

// At returns "FILE:LINE:COL" for p, or "FILE" for the zero Pos.
func (f *File) At(p Pos) string {
	if p.Line == 0 {
		return f.Path
	}
	return fmt.Sprintf("%s:%d:%d", f.Path, p.Line, p.Col)
}

// parentPath strips the last element of a dotted path: "a.b" -> "a",
// "a[3]" -> "a", "a" -> "".
func parentPath(path string) string {
	for i := len(path) - 1; i >= 0; i-- {
		if path[i] == '.' || path[i] == '[' {
			return path[:i]
		}
	}
	return ""
}

// Server is the server section: the HTTP gateway and the admin listener.
type Server struct {
	// Listen is the gateway's address. Defaults to "127.0.0.1:8080", loopback
	// only: "0.0.0.0:8080" or ":8080" opens it to the network.
	Listen string
	// AdminListen serves /metrics, /healthz, /readyz and /debug/pprof.
	// Defaults to "127.0.0.1:9090".
	AdminListen string
	// AdminToken is the bearer token the admin listener requires. Parse
	// refuses an empty one when AdminListen is not a loopback address.
	AdminToken string
	// MaxBody is the largest request body in bytes. Defaults to 6 MiB.
	MaxBody int64
	// MaxHeaders is the most header fields a request may carry
	// (server.max_headers); more are answered 431, whatever their size
	// (their size is bounded apart, to 16 KiB). At least 1. Defaults to 100.
	MaxHeaders int
	// ReadTimeout bounds reading one request. Defaults to 30s.
	ReadTimeout time.Duration
	// DrainTimeout bounds how long a process being replaced finishes its
	// in-flight work. Defaults to 30s.
	DrainTimeout time.Duration
	// TLS, when not nil, makes Listen serve HTTPS; both files are set.
	TLS *TLS
	// Pidfile is where the gateway writes its pid, for sluice reload. Empty
	// means none.
	Pidfile string
	// InvokeAPI is server.invoke_api: the Lambda API (Invoke and the
	// management reads) on Listen.
	InvokeAPI InvokeAPI
}

// Auth modes of the invoke API (InvokeAPI.Auth).
const (
	AuthNone  = "none"
	AuthSigV4 = "sigv4"
	AuthToken = "token"
)

// InvokeAPI configures the Lambda API served on server.listen.
type InvokeAPI struct {
	// Enabled serves the API. Defaults to true when invoke_api is written,
	// else to whether server.listen is a loopback address: off on a
	// public listener unless asked for.
	Enabled bool
	// Auth is AuthNone (the default), AuthSigV4 or AuthToken. Parse
	// refuses AuthNone with Enabled on a listener that is not loopback.
	Auth string
	// Keys are the access keys of AuthSigV4, access key id to secret
	// access key; Parse requires at least one, and no empty secret.
	Keys map[string]string
	// Token is the bearer token of AuthToken, never empty for it.
	Token string
	// Region, when set, is the region in function ARNs (those the invoke
	// API returns and those Lambda runtimes see, with their AWS_REGION)
	// and the one a SigV4 credential scope must name; empty takes any
	// region and names us-east-1 in ARNs.
	Region string
}

// TLS names a certificate and its key, PEM files, as written in the file
// (relative paths are relative to the working directory).
type TLS struct {
	Cert, Key string
}

// Kafka is the kafka section: the cluster the stream triggers, async topics
// and dead-letter topics use.
type Kafka struct {
	// Embedded serves an in-process, in-memory broker on Brokers[0] (dev
	// only).
	Embedded bool
	// EmbeddedPartitions is the partition count of topics the embedded
	// broker creates on first use. Defaults to 8.
	EmbeddedPartitions int
	// Brokers are the seed brokers, host:port. Defaults to
	// ["127.0.0.1:9092"] when Embedded; otherwise Parse requires them when
	// anything uses Kafka.
	Brokers []string
}

// Log is the log section.
type Log struct {
	// Level is debug, info, warn or error. Defaults to info.
	Level string
	// Format is json or console. Defaults to json.
	Format string
}

// Function is one entry of the functions section.
type Function struct {
	// Name is the function's key, 1-64 letters, digits, '-' or '_'.
	Name string
	// Runtime is RuntimeGo, RuntimePlugin, RuntimeProcess, RuntimeLambda,
	// RuntimePython, RuntimeNodejs or RuntimeJava. Lambda's spelled
	// versions (python3.12, nodejs20.x, java21) are stored as the runtime
	// with RuntimeVersion set.
	Runtime string
	// RuntimeVersion is the version of a spelled runtime name: "3.12" for
	// python3.12, "20" for nodejs20.x, "21" for java21; empty otherwise.
	RuntimeVersion string
	// Handler is the registered builtin name (runtime go), FILE.FUNCTION
	// (runtime python and nodejs, required), pkg.Class::method (runtime
	// java, required), or _HANDLER (runtime lambda, optional).
	Handler string
	// Code is the folder of a managed runtime's code (runtime python and
	// nodejs): the working directory, LAMBDA_TASK_ROOT and the first entry
	// of the import path. Defaults to the gateway's working directory.
	Code string
	// Interpreter is the program running a managed runtime (runtime python
	// and nodejs). Defaults to the one the runtime name maps to in PATH
	// (python3.12 or python3, node).
	Interpreter string
	// Dir is a Lambda runtime's working directory and LAMBDA_TASK_ROOT
	// (runtime lambda). Defaults to the gateway's working directory.
	Dir string
	// Path is the plugin's .so file (runtime plugin only), as written.
	Path string
	// Command is the program and its arguments (runtime process and
	// lambda only), never empty for those.
	Command []string
	// Instances is the number of processes (runtime process, lambda,
	// python, nodejs and java) of a fixed pool. Defaults to 1 for those, 0 for
	// the others; 0 when Scaling is set.
	Instances int
	// Scaling bounds the processes (runtime process and lambda). After
	// defaults it is always filled for those: instances N is min = max = N.
	Scaling Scaling
	// Env is the function's environment, nil when not set.
	Env map[string]string
	// Timeout bounds one invocation; 0 means the invoker's default.
	Timeout time.Duration
	// Memory is the memory limit in bytes; 0 means none set.
	Memory int64
	// Concurrency and Queue: 0 means the invoker's default.
	Concurrency, Queue int
	Batch              Batch
	Retry              Retry
	// DeadLetter is where events go after their last attempt; the zero
	// value means none set. At most one of Topic and File is set.
	DeadLetter DeadLetter
	// Pos is the position of the function's name.
	Pos Pos
}

// Scaling is a function's instance range: Min started at boot and kept,
// up to Max started on demand, those idle for Idle stopped down to Min.
type Scaling struct {
	Min, Max int
	// Idle is how long an instance above Min may stay idle; 0 keeps them.
	Idle time.Duration
	// Set reports that the config has a scaling block.
	Set bool
}

// Batch is a function's batching policy; each 0 means the invoker's default.
type Batch struct {
	MaxItems int
	MaxBytes int64
	// MaxWait is nil when unset; a "max_wait: 0" (dispatch at once) is a
	// pointer to 0.
	MaxWait *time.Duration
	// SyncItems is the most events in a batch holding a synchronous event
	// (sync_items); 0 means the invoker's default, 1.
	SyncItems int
}

// Retry is a function's retry policy; each 0 means the invoker's default.
type Retry struct {
	// Attempts is the most times an asynchronous or stream event is tried,
	// 1 meaning no retry. Synchronous events are tried once, as on Lambda.
	Attempts            int
	Backoff, MaxBackoff time.Duration
	Bisect              bool
	MaxAge              time.Duration
}

// DeadLetter names a Kafka topic or a file (JSON lines) for failed events.
type DeadLetter struct {
	Topic, File string
}

// Trigger is one entry of the triggers list. Exactly one of HTTP, Storage,
// Kafka, CDC and Schedule is set, the one Kind names.
type Trigger struct {
	Kind string
	// Function names an entry of File.Functions; Parse checks it exists.
	Function string
	HTTP     *HTTP
	Storage  *Storage
	Kafka    *KafkaTrigger
	CDC      *CDC
	Schedule *Schedule
	// Filter is the EventBridge-style pattern of a kafka or cdc trigger,
	// converted to JSON (key order kept), or nil.
	Filter json.RawMessage
	// FilterPos is the position of the filter key, zero when none.
	FilterPos Pos
	// Pos is the position of the trigger's kind key.
	Pos Pos
}

// HTTP is an HTTP route.
type HTTP struct {
	// Method is upper case: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS,
	// or MethodAny, the default, for every method.
	Method string
	// Path starts with "/"; a segment "{name}" captures one path segment
	// into pathParameters. Routes with the same method and the same
	// pattern (parameter names aside) are refused, and MethodAny collides
	// with every method.
	Path string
	// Mode is ModeSync (the default: the response is the function's result)
	// or ModeAsync (202 at once).
	Mode string
	// AsyncTopic, for ModeAsync only, sends the event through this Kafka
	// topic rather than the in-memory queue.
	AsyncTopic string
}

// Storage is an S3/MinIO bucket-notification webhook, always POST.
type Storage struct {
	// Path is validated like HTTP.Path and may not be used by any HTTP route
	// or other storage trigger.
	Path string
	// Token, when set, is the secret the notifier must present (MinIO's
	// webhook auth_token); empty means none is required.
	Token string
	// Mode is ModeSync (the default: answer once the invoker accepted the
	// events) or ModeAsync; AsyncTopic as for HTTP.
	Mode       string
	AsyncTopic string
}

// KafkaTrigger consumes Kafka topics.
type KafkaTrigger struct {
	Topics []string
	Group  string
	// Start is StartEarliest or StartLatest (the default, as Kafka's
	// auto.offset.reset): where a group without committed offsets begins.
	Start string
	// Format is FormatRaw (the default), FormatCloudEvents, FormatS3 or
	// FormatCDC.
	Format string
	// Ordering is OrderingPartition (the default), OrderingKey or
	// OrderingNone.
	Ordering string
}

// CDC consumes Debezium change-event topics.
type CDC struct {
	Topics []string
	Group  string
	// Start as for KafkaTrigger; defaults to StartLatest.
	Start string
	// Ordering defaults to OrderingKey: rows of one primary key stay in
	// order, different rows run in parallel.
	Ordering string
}

// Schedule fires a function on a cron expression or at a fixed rate.
type Schedule struct {
	// Name names the schedule in the coordination topic, logs and metrics;
	// keep it stable, as a renamed schedule is a new one (nothing to catch
	// up). Defaults to "<function>-<n>", n counting the function's schedule
	// triggers in file order from 1.
	Name string
	// Cron is a 5-field expression or a descriptor (@hourly, @every 5m), as
	// robfig/cron/v3's ParseStandard reads it; empty when Rate is set.
	Cron string
	// Rate is the period, at least 1s; 0 when Cron is set.
	Rate time.Duration
	// Timezone is an IANA name. Defaults to "UTC".
	Timezone string
	// Location is Timezone loaded.
	Location *time.Location
	// Payload is the payload key converted to JSON, or nil.
	Payload json.RawMessage
	// CatchUp fires a missed tick once when the gateway comes back.
	// Defaults to true.
	CatchUp bool
}

// Subprocess reports whether the function runs as processes (runtime
// process, lambda, python, nodejs or java): what instances counts.
func (fn *Function) Subprocess() bool {
	switch fn.Runtime {
	case RuntimeProcess, RuntimeLambda, RuntimePython, RuntimeNodejs, RuntimeJava:
		return true
	}
	return false
}

// Managed reports whether the function runs on a managed runtime (runtime
// python, nodejs or java).
func (fn *Function) Managed() bool {
	return fn.Runtime == RuntimePython || fn.Runtime == RuntimeNodejs || fn.Runtime == RuntimeJava
}

// LambdaPool reports whether the function runs as a Lambda pool (runtime
// lambda, python, nodejs or java), whose env may not set the variables the pool
// sets.
func (fn *Function) LambdaPool() bool {
	return fn.Runtime == RuntimeLambda || fn.Managed()
}

// RuntimeName returns the runtime as Lambda names it: "python3.12" and
// "nodejs20.x" for a spelled version, else Runtime.
func (fn *Function) RuntimeName() string {
	switch {
	case fn.RuntimeVersion == "":
		return fn.Runtime
	case fn.Runtime == RuntimeNodejs:
		return "nodejs" + fn.RuntimeVersion + ".x"
	}
	return fn.Runtime + fn.RuntimeVersion
}
