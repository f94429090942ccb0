"""A test function for runtime: process. An event whose payload asks
{"alloc_mb": N} allocates N MiB (unguarded: under a memory limit the
MemoryError ends the process); {"sleep_ms": N} sleeps first. It answers
{"pid": PID}."""
import base64, json, os, sys, time

kept = []


def payload(ev):
    data = ev.get("data")
    if ev.get("type") == "sluice.http.request" and isinstance(data, dict):
        body = data.get("body") or ""
        if data.get("isBase64Encoded"):
            body = base64.b64decode(body).decode()
        try:
            return json.loads(body) if body else {}
        except ValueError:
            return {}
    return data if isinstance(data, dict) else {}


for line in sys.stdin:
    batch = json.loads(line)
    results = []
    for ev in batch.get("events") or []:
        p = payload(ev)
        time.sleep(p.get("sleep_ms", 0) / 1000)
        if p.get("alloc_mb"):
            kept.append(bytearray(p["alloc_mb"] << 20))
        results.append({"id": ev["id"], "ok": True, "output": {"pid": os.getpid()}})
    sys.stdout.write(json.dumps({"batch": batch["batch"], "results": results}) + "\n")
    sys.stdout.flush()
