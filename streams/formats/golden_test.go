package formats

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	ce "github.com/cloudevents/sdk-go/v2/event"

	"github.com/sluicehq/sluice/plugins"
)

var update = flag.Bool("update", false, "rewrite the .golden files of testdata from the decoders' output")

// assertSDKValid checks an envelope against independent code: its JSON must
// parse with the CloudEvents Go SDK and pass the SDK's validation, and
// decode back through plugins.Event unchanged.
func assertSDKValid(t *testing.T, ev *plugins.Event) {
	t.Helper()
	b, err := ev.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON: %v", err)
	}
	var sdk ce.Event
	if err := json.Unmarshal(b, &sdk); err != nil {
		t.Fatalf("CloudEvents SDK cannot parse %s: %v", b, err)
	}
	if err := sdk.Validate(); err != nil {
		t.Fatalf("CloudEvents SDK rejects %s: %v", b, err)
	}
	if sdk.ID() != ev.ID || sdk.Source() != ev.Source || sdk.Type() != ev.Type || sdk.Subject() != ev.Subject {
		t.Fatalf("SDK sees id %q source %q type %q subject %q in %s", sdk.ID(), sdk.Source(), sdk.Type(), sdk.Subject(), b)
	}
	if !ev.Time.IsZero() && !sdk.Time().Equal(ev.Time) {
		t.Fatalf("SDK sees time %v, want %v", sdk.Time(), ev.Time)
	}
	if ev.IsJSONData() && !bytes.Equal(compact(t, sdk.Data()), compact(t, ev.Data)) {
		t.Fatalf("SDK sees data %s, want %s", sdk.Data(), ev.Data)
	}
	var back plugins.Event
	if err := back.UnmarshalJSON(b); err != nil {
		t.Fatalf("plugins.Event cannot decode its own %s: %v", b, err)
	}
	b2, _ := back.MarshalJSON()
	if !bytes.Equal(b, b2) {
		t.Fatalf("round trip changed the envelope:\n%s\n%s", b, b2)
	}
}

func compact(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("not JSON: %s", b)
	}
	return buf.Bytes()
}

// goldenEvents compares envelopes with the file golden (a JSON array of
// envelopes, indented), or rewrites it under -update.
func goldenEvents(t *testing.T, golden string, evs []*plugins.Event) {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteByte('[')
	for i, ev := range evs {
		if i > 0 {
			buf.WriteByte(',')
		}
		b, _ := ev.MarshalJSON()
		buf.Write(b)
	}
	buf.WriteByte(']')
	var out bytes.Buffer
	if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
		t.Fatalf("envelopes are not JSON: %v", err)
	}
	out.WriteByte('\n')
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("envelopes differ from %s (go test -update rewrites it):\n%s", golden, out.Bytes())
	}
}

// samples lists the input files of a testdata folder, without the goldens.
func samples(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples in testdata/%s: %v", dir, err)
	}
	return files
}
