package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/testtool"
	"github.com/sluicehq/sluice/plugins"
)

// sinkEvents reads every envelope of a sink file.
func sinkEvents(t *testing.T, path string) []plugins.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []plugins.Event
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev plugins.Event
		if json.Unmarshal(sc.Bytes(), &ev) == nil {
			out = append(out, ev)
		}
	}
	return out
}

func sourcesConfig(dir, broker string) string {
	return fmt.Sprintf(`
server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0"}
kafka: {embedded: true, embedded_partitions: 4, brokers: ["%[2]s"]}
log: {level: info}
functions:
  store: {runtime: go, handler: sink, env: {SINK_FILE: %[1]s/storage.jsonl}}
  rows:  {runtime: go, handler: sink, env: {SINK_FILE: %[1]s/cdc.jsonl}}
  paid:  {runtime: go, handler: sink, env: {SINK_FILE: %[1]s/paid.jsonl}}
  echo:  {runtime: go, handler: echo}
triggers:
  - storage: {path: /hooks/storage, function: store, token: s3cret}
  - cdc:     {topics: [dbserver1.inventory.customers], group: rows, function: rows, start: earliest}
  - kafka:   {topics: [orders], group: paid, function: paid, start: earliest,
              filter: {data: {status: [paid], total: [{numeric: [">", 100]}]}}}
`, dir, broker)
}

// TestE2EStorageWebhook posts S3 and MinIO notifications to the webhook
// and finds one envelope per record in the sink.
func TestE2EStorageWebhook(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := startSluice(t, writeConfig(t, dir, sourcesConfig(dir, freeAddr(t))))
	s3 := `{"Records":[
	 {"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"eu-west-1","eventTime":"2026-11-28T12:00:00.000Z","eventName":"ObjectCreated:Put",
	  "s3":{"s3SchemaVersion":"1.0","bucket":{"name":"photos","arn":"arn:aws:s3:::photos"},"object":{"key":"summer/my+photo%282026%29.jpg","size":1024,"eTag":"abc","sequencer":"0055AED6DCD90281E5"}}},
	 {"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"eu-west-1","eventTime":"2026-11-28T12:00:01.000Z","eventName":"ObjectRemoved:Delete",
	  "s3":{"s3SchemaVersion":"1.0","bucket":{"name":"photos"},"object":{"key":"old.jpg","sequencer":"0055AED6DCD90281E6"}}}]}`
	if r := do(t, "POST", p.http+"/hooks/storage", "application/json", []byte(s3), "Authorization", "Bearer s3cret"); r.code != 200 {
		t.Fatalf("status %d: %s", r.code, r.body)
	}
	if r := do(t, "POST", p.http+"/hooks/storage", "application/json", []byte(s3), "Authorization", "Bearer wrong"); r.code != 401 {
		t.Errorf("bad token: status %d", r.code)
	}
	if r := do(t, "POST", p.http+"/hooks/storage", "application/json", []byte(`{"Records":[{"s3":`), "Authorization", "Bearer s3cret"); r.code != 400 {
		t.Errorf("malformed body: status %d: %s", r.code, r.body)
	}
	if r := do(t, "HEAD", p.http+"/hooks/storage", "", nil, "Authorization", "Bearer s3cret"); r.code != 200 {
		t.Errorf("HEAD (MinIO's check): status %d", r.code)
	}
	sink := filepath.Join(dir, "storage.jsonl")
	waitFor(t, 10*time.Second, "two storage events", func() bool { return len(sinkEvents(t, sink)) == 2 })
	evs := sinkEvents(t, sink)
	byType := map[string]plugins.Event{}
	for _, ev := range evs {
		byType[ev.Type] = ev
	}
	created := byType[plugins.TypeStorageCreated]
	if created.Subject != "photos/summer/my photo(2026).jpg" || created.PartitionKey != created.Subject {
		t.Errorf("created: subject %q, partitionkey %q", created.Subject, created.PartitionKey)
	}
	if !strings.Contains(string(created.Data), `"eventName":"ObjectCreated:Put"`) || !strings.Contains(string(created.Data), `"sequencer":"0055AED6DCD90281E5"`) {
		t.Errorf("created data: %s", created.Data)
	}
	if byType[plugins.TypeStorageRemoved].Subject != "photos/old.jpg" {
		t.Errorf("removed: %+v", byType[plugins.TypeStorageRemoved])
	}
}

// TestE2ECDCAndFilters produces Debezium change events with kcat (keys are
// the rows' primary keys) and finds them in order per row; a tombstone is
// skipped and counted; a Kafka trigger's filter lets only matching records
// through.
func TestE2ECDCAndFilters(t *testing.T) {
	t.Parallel()
	needKcat(t)
	dir := t.TempDir()
	broker := freeAddr(t)
	p := startSluice(t, writeConfig(t, dir, sourcesConfig(dir, broker)))

	var in bytes.Buffer
	const rows, updates = 5, 20
	for id := 1; id <= rows; id++ {
		fmt.Fprintf(&in, `{"id":%d}|{"before":null,"after":{"id":%d,"v":0},"source":{"connector":"postgresql","db":"inventory","schema":"public","table":"customers","lsn":%d},"op":"c","ts_ms":1}`+"\n", id, id, id)
	}
	for v := 1; v <= updates; v++ {
		for id := 1; id <= rows; id++ {
			fmt.Fprintf(&in, `{"id":%d}|{"before":{"id":%d,"v":%d},"after":{"id":%d,"v":%d},"source":{"connector":"postgresql","db":"inventory","schema":"public","table":"customers"},"op":"u","ts_ms":2}`+"\n", id, id, v-1, id, v)
		}
	}
	fmt.Fprintf(&in, `{"id":1}|{"before":{"id":1,"v":%d},"after":null,"source":{"connector":"postgresql","db":"inventory","schema":"public","table":"customers"},"op":"d","ts_ms":3}`+"\n", updates)
	fmt.Fprintf(&in, "{\"id\":1}|\n") // the tombstone Debezium writes after a delete
	cmd := exec.Command(needKcat(t), "-b", broker, "-t", "dbserver1.inventory.customers", "-P", "-K", "|", "-Z")
	cmd.Stdin = &in
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	orders := "{\"status\":\"paid\",\"total\":150}\n{\"status\":\"paid\",\"total\":50}\n{\"status\":\"open\",\"total\":500}\n{\"status\":\"paid\",\"total\":101}\n"
	cmd = exec.Command(needKcat(t), "-b", broker, "-t", "orders", "-P")
	cmd.Stdin = strings.NewReader(orders)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}

	want := rows + rows*updates + 1
	sink := filepath.Join(dir, "cdc.jsonl")
	waitFor(t, 30*time.Second, "every change event", func() bool { return len(sinkEvents(t, sink)) >= want })
	last := map[string]int{}
	for _, ev := range sinkEvents(t, sink) {
		if !strings.HasPrefix(ev.Type, plugins.TypeCDCPrefix) || ev.Subject != "inventory.public.customers" {
			t.Fatalf("event %s %s", ev.Type, ev.Subject)
		}
		var d struct {
			After *struct{ V int } `json:"after"`
		}
		_ = json.Unmarshal(ev.Data, &d)
		if d.After == nil {
			if ev.Type != "sluice.cdc.delete" {
				t.Errorf("%s without after", ev.Type)
			}
			continue
		}
		if prev, ok := last[ev.PartitionKey]; ok && d.After.V < prev {
			t.Errorf("row %s: v %d after %d: out of order", ev.PartitionKey, d.After.V, prev)
		}
		last[ev.PartitionKey] = d.After.V
	}
	if len(last) != rows {
		t.Errorf("%d rows seen, want %d: %v", len(last), rows, last)
	}
	waitFor(t, 10*time.Second, "the tombstone counted", func() bool {
		return p.metric(`sluice_cdc_tombstones_total{trigger="cdc:rows"}`) == 1
	})

	paid := filepath.Join(dir, "paid.jsonl")
	waitFor(t, 30*time.Second, "the filtered orders", func() bool {
		return p.metric(`sluice_filtered_total{trigger="kafka:paid"}`) == 2
	})
	waitFor(t, 10*time.Second, "the two matching orders", func() bool { return len(sinkEvents(t, paid)) == 2 })
	for _, ev := range sinkEvents(t, paid) {
		if !strings.Contains(string(ev.Data), `"status":"paid"`) {
			t.Errorf("unfiltered: %s", ev.Data)
		}
	}
}

// TestE2ELambdaInvokeAPI invokes a function of the running gateway with
// the AWS CLI, as `aws lambda invoke --endpoint-url` users do.
func TestE2ELambdaInvokeAPI(t *testing.T) {
	t.Parallel()
	aws := testtool.Need(t, "aws", "the AWS CLI, Debian package awscli")
	dir := t.TempDir()
	p := startSluice(t, writeConfig(t, dir, sourcesConfig(dir, freeAddr(t))))
	out := filepath.Join(dir, "out.json")
	args := []string{"lambda", "invoke", "--endpoint-url", p.http, "--function-name", "echo",
		"--payload", `{"hello":"cli"}`, "--log-type", "Tail"}
	// CLI v2 reads --payload as base64 without this flag, which v1 rejects.
	if version, _ := exec.Command(aws, "--version").CombinedOutput(); strings.HasPrefix(string(version), "aws-cli/2") {
		args = append(args, "--cli-binary-format", "raw-in-base64-out")
	}
	cmd := exec.Command(aws, append(args, out)...)
	cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=x", "AWS_SECRET_ACCESS_KEY=x", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE="+filepath.Join(dir, "none"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(dir, "none"), "AWS_MAX_ATTEMPTS=1")
	stdout, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("aws lambda invoke: %v\n%s", err, stdout)
	}
	if !strings.Contains(string(stdout), `"StatusCode": 200`) || !strings.Contains(string(stdout), "LogResult") {
		t.Errorf("CLI output: %s", stdout)
	}
	b, _ := os.ReadFile(out)
	var ev plugins.Event
	if err := json.Unmarshal(b, &ev); err != nil || ev.Type != plugins.TypeInvoke || string(ev.Data) != `{"hello":"cli"}` {
		t.Errorf("output %s: %v", b, err)
	}
}

// TestE2EScheduleOncePerCluster runs two gateways on one Kafka cluster with
// a rate: 1s schedule: over 10 s each tick reaches the function exactly
// once, with no tick missing.
func TestE2EScheduleOncePerCluster(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	broker := freeAddr(t)
	conf := func(embedded bool) string {
		return fmt.Sprintf(`
server: {listen: "127.0.0.1:0", admin_listen: "127.0.0.1:0"}
kafka: {embedded: %t, brokers: ["%s"]}
log: {level: info}
functions:
  tick: {runtime: go, handler: sink, env: {SINK_FILE: %s/ticks.jsonl}}
triggers:
  - schedule: {rate: 1s, function: tick, name: heartbeat, payload: {job: beat}}
`, embedded, broker, dir)
	}
	a := startSluice(t, writeConfig(t, t.TempDir(), conf(true)))
	b := startSluice(t, writeConfig(t, t.TempDir(), conf(false)))
	sink := filepath.Join(dir, "ticks.jsonl")
	waitFor(t, 30*time.Second, "10 ticks", func() bool { return len(sinkEvents(t, sink)) >= 11 })
	count := map[string]int{}
	var times []time.Time
	for _, ev := range sinkEvents(t, sink) {
		if ev.Type != plugins.TypeScheduleTick {
			t.Fatalf("type %s", ev.Type)
		}
		if count[ev.ID]++; count[ev.ID] == 1 {
			times = append(times, ev.Time)
		}
	}
	for id, n := range count {
		if n != 1 {
			t.Errorf("tick %s fired %d times", id, n)
		}
	}
	for i := 1; i < len(times); i++ {
		if d := times[i].Sub(times[i-1]); d != time.Second {
			t.Errorf("ticks %s and %s are %s apart: a tick is missing or out of order", times[i-1], times[i], d)
		}
	}
	owners := a.metric(`sluice_schedule_owner`) + b.metric(`sluice_schedule_owner`)
	if owners != 1 {
		t.Errorf("%v instances own the schedules, want 1", owners)
	}
}
