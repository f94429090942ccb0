#!/usr/bin/env python3
"""hello: a Sluice function for `runtime: process`, in Python 3 (stdlib only).

For every event it answers {"hello": NAME}, NAME being the "name" of the
event's JSON payload, or "world". A payload with "fail": true fails that
event (and only that one). It logs one line per batch to stderr.

    functions:
      hello-py: {runtime: process, command: ["python3", "plugins/examples/hello.py"], instances: 4}

The protocol (see README.md beside this file): one JSON line per batch on
stdin, {"batch": ID, "deadline_ms": EPOCH_MS, "events": [ENVELOPE, ...]};
one JSON line per batch on stdout, {"batch": ID, "results": [{"id": EVENT_ID,
"ok": true, "output": ANY} | {"id": ..., "ok": false, "error": "..."}]}.
stdout is for the protocol only: log to stderr. Exit when stdin ends.
"""

import base64
import json
import sys

HTTP_REQUEST = "sluice.http.request"


def payload(event):
    """The user-level payload of an event, as plugins.Payload in Go: an HTTP
    request's body (parsed as JSON when it is), the data of any other event."""
    if event.get("type") == HTTP_REQUEST:
        req = event.get("data") or {}
        body = req.get("body") or ""
        if req.get("isBase64Encoded"):
            body = base64.b64decode(body).decode("utf-8", "replace")
        try:
            return json.loads(body) if body else None
        except ValueError:
            return body
    if "data_base64" in event:
        return base64.b64decode(event["data_base64"])
    return event.get("data")


class RequestedFailure(Exception):
    """The payload asked this event to fail."""


def handle(event):
    p = payload(event)
    name = "world"
    if isinstance(p, dict):
        if p.get("fail"):
            raise RequestedFailure("failing as the payload asked")
        if isinstance(p.get("name"), str) and p["name"]:
            name = p["name"]
    return {"hello": name}


def answer(batch):
    results = []
    for event in batch.get("events") or []:
        try:
            results.append({"id": event["id"], "ok": True, "output": handle(event)})
        except Exception as e:  # one event's failure must not fail its batch
            results.append({"id": event.get("id"), "ok": False, "error": str(e),
                            "error_type": type(e).__name__})
    return {"batch": batch["batch"], "results": results}


def main():
    # The gateway speaks UTF-8 whatever the locale says.
    sys.stdin.reconfigure(encoding="utf-8", errors="replace")
    for line in sys.stdin:
        if not line.strip():
            continue
        batch = json.loads(line)
        n = len(batch.get("events") or [])
        print(f"hello: batch {batch['batch']}: {n} events", file=sys.stderr, flush=True)
        out = answer(batch)
        # One line, flushed: stdout is a pipe, so Python would hold it back.
        sys.stdout.write(json.dumps(out, separators=(",", ":")) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
