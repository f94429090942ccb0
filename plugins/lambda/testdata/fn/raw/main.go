// Command raw is a custom runtime written against the Runtime API by hand,
// for what aws-lambda-go never does. RAW_MODE selects it:
//
//   - init-error: reports an init error, then waits to be stopped.
//   - probe: for each invocation, prints the status of a response posted
//     for an unknown id, of a 7 MiB response, and of a right-sized
//     response after it.
//   - error: answers each invocation with an error body of the payload's
//     "body", Lambda-Runtime-Function-Error-Type "Custom.Header".
//   - anything else: answers each invocation with its payload, then posts
//     the answer again, printing both statuses.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

var base = "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime/"

func post(path string, body []byte, hdr map[string]string) int {
	req, _ := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println("post", path, "failed:", err)
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func main() {
	mode := os.Getenv("RAW_MODE")
	if mode == "init-error" {
		post("init/error", []byte(`{"errorMessage":"cannot load config","errorType":"Runtime.ConfigError","stackTrace":["main.go:10"]}`),
			map[string]string{"Lambda-Runtime-Function-Error-Type": "Runtime.ConfigError"})
		time.Sleep(time.Minute)
		return
	}
	for {
		resp, err := http.Get(base + "invocation/next")
		if err != nil {
			fmt.Println("next failed:", err)
			os.Exit(1)
		}
		payload, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		switch mode {
		case "probe":
			fmt.Println("unknown id:", post("invocation/not-"+id+"/response", []byte(`{}`), nil))
			fmt.Println("too large:", post("invocation/"+id+"/response", bytes.Repeat([]byte("x"), 7<<20), nil))
			// The 413 ended the invocation.
			fmt.Println("after too large:", post("invocation/"+id+"/response", payload, nil))
		case "error":
			var p struct {
				Body json.RawMessage `json:"body"`
			}
			_ = json.Unmarshal(payload, &p)
			var body string
			_ = json.Unmarshal(p.Body, &body)
			fmt.Println("error:", post("invocation/"+id+"/error", []byte(body), map[string]string{"Lambda-Runtime-Function-Error-Type": "Custom.Header"}))
		default:
			fmt.Println("answer:", post("invocation/"+id+"/response", payload, nil))
			fmt.Println("again:", post("invocation/"+id+"/response", payload, nil))
		}
	}
}
