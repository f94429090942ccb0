package plugins

import (
	"encoding/base64"
	"encoding/json"
)

// Payload returns the user-level payload of an event: for an HTTP request
// the request body (base64-decoded when the gateway encoded it), for every
// other source the event's data. It returns nil when there is none.
func Payload(ev *Event) []byte {
	if ev.Type != TypeHTTPRequest {
		return ev.Data
	}
	var req struct {
		Body            string `json:"body"`
		IsBase64Encoded bool   `json:"isBase64Encoded"`
	}
	if json.Unmarshal(ev.Data, &req) != nil || req.Body == "" {
		return nil
	}
	if req.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return nil
		}
		return b
	}
	return []byte(req.Body)
}
