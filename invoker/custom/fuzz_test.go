package custom

import (
	"bytes"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/sluicehq/sluice/plugins"
)

// FuzzEMFToPrometheus: whatever EMF line a function prints, what DecodeEMF
// accepts comes out of the registry as text Prometheus' parser accepts.
func FuzzEMFToPrometheus(f *testing.F) {
	f.Add([]byte(`{"_aws":{"CloudWatchMetrics":[{"Namespace":"Shop","Dimensions":[["Service","function"]],"Metrics":[{"Name":"Latency","Unit":"Milliseconds"}]}]},"Service":"ca\"rt\n","function":"x","Latency":[1,2]}`))
	f.Add([]byte(`{"_aws":{"CloudWatchMetrics":[{"Namespace":"9 ns","Dimensions":[["le"],["quantile","__x"]],"Metrics":[{"Name":"ü","Unit":"Count"}]}]},"le":"1","quantile":"q","__x":"\ud800","ü":1e300}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		ms, err := plugins.DecodeEMF(line)
		if err != nil {
			return
		}
		r := New(10)
		for i := range ms {
			r.Add("fn\"\\", &ms[i])
		}
		var b bytes.Buffer
		r.WritePrometheus(&b)
		p := expfmt.NewTextParser(model.LegacyValidation)
		if _, err := p.TextToMetricFamilies(bytes.NewReader(b.Bytes())); err != nil {
			t.Fatalf("%v\n%s", err, b.String())
		}
	})
}
