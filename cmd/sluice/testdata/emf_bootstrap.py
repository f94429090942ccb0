#!/usr/bin/env python3
"""emf_bootstrap: a Lambda custom runtime (the Runtime API over HTTP, stdlib
only) whose function prints one CloudWatch Embedded Metric Format line per
invocation on stdout, as aws-embedded-metrics does on Lambda."""

import json
import os
import urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"


def main():
    while True:
        with urllib.request.urlopen(API + "next") as r:
            request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
            r.read()
        print(json.dumps({
            "_aws": {"CloudWatchMetrics": [{
                "Namespace": "Lambda Shop",
                "Dimensions": [["Service"]],
                "Metrics": [{"Name": "PayloadSize", "Unit": "Kilobytes"}],
            }]},
            "Service": "payments",
            "PayloadSize": [1, 2],
        }), flush=True)
        req = urllib.request.Request(API + request_id + "/response", data=b'{"ok":true}', method="POST")
        with urllib.request.urlopen(req) as r:
            r.read()


if __name__ == "__main__":
    main()
