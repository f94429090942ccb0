// Command batchfail answers with a partial batch response. For a Kafka
// event it names each record whose value is "fail" ({"partition",
// "offset"}), and a record that does not exist if one's value is "bogus";
// for any other event it names its own request id when the event holds the
// text "fail", and nothing otherwise.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type failure struct {
	ItemIdentifier any `json:"itemIdentifier"`
}

type response struct {
	BatchItemFailures []failure `json:"batchItemFailures"`
}

func main() {
	lambda.Start(func(ctx context.Context, raw json.RawMessage) (response, error) {
		resp := response{BatchItemFailures: []failure{}}
		var ev events.KafkaEvent
		if json.Unmarshal(raw, &ev) == nil && ev.EventSource == "SelfManagedKafka" {
			for key, recs := range ev.Records {
				for _, r := range recs {
					v, err := base64.StdEncoding.DecodeString(r.Value)
					if err != nil {
						return resp, err
					}
					switch string(v) {
					case "fail":
						resp.BatchItemFailures = append(resp.BatchItemFailures,
							failure{map[string]any{"partition": key, "offset": r.Offset}})
					case "bogus":
						resp.BatchItemFailures = append(resp.BatchItemFailures,
							failure{map[string]any{"partition": key, "offset": r.Offset + 1000}})
					}
				}
			}
			return resp, nil
		}
		if bytes.Contains(raw, []byte("fail")) {
			lc, _ := lambdacontext.FromContext(ctx)
			resp.BatchItemFailures = append(resp.BatchItemFailures, failure{lc.AwsRequestID})
		}
		return resp, nil
	})
}
