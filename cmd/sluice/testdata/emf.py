#!/usr/bin/env python3
"""emf: a process function that emits CloudWatch Embedded Metric Format
lines, as a Lambda function using aws-embedded-metrics would: one on
stdout per event (print, as on Lambda) and, for an event whose payload
says {"bad": true}, a broken one on stderr."""

import json
import sys
import time


def emf(event):
    return {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [{
                "Namespace": "Shop",
                "Dimensions": [["Service", "Route"]],
                "Metrics": [{"Name": "CartLatency", "Unit": "Milliseconds"},
                            {"Name": "OrdersPlaced", "Unit": "Count"}],
            }],
        },
        "Service": "cart",
        "Route": "/checkout",
        "CartLatency": 250,
        "OrdersPlaced": 1,
        "requestId": event["id"],
    }


def main():
    for line in sys.stdin:
        if not line.strip():
            continue
        batch = json.loads(line)
        results = []
        for event in batch.get("events") or []:
            body = (event.get("data") or {}).get("body") or ""
            if '"bad"' in body:
                print('{"_aws":{"CloudWatchMetrics":[{"Namespace":"Shop","Metrics":[{"Name":"Broken"}]}]}}', file=sys.stderr, flush=True)
            print(json.dumps(emf(event)), flush=True)
            results.append({"id": event["id"], "ok": True, "output": {"ok": True}})
        sys.stdout.write(json.dumps({"batch": batch["batch"], "results": results}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
