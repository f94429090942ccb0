"""A Lambda handler behind the runtime: process protocol (JSON lines), for
the benchmark suite: the same handler code as the managed runtime runs,
called in-process per event. Usage: lambda-process.py CODE_DIR FILE.FUNCTION"""

import importlib
import json
import sys
import time

sys.dont_write_bytecode = True  # nothing written into the example folder
code, handler = sys.argv[1], sys.argv[2]
sys.path.insert(0, code)
proto = sys.stdout
sys.stdout = sys.stderr  # the handler's prints are logs, as on the managed runtime
modpath, fname = handler.rsplit(".", 1)
fn = getattr(importlib.import_module(modpath.replace("/", ".")), fname)


class Context:
    def __init__(self, deadline_ms):
        self.deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self):
        return max(int(self.deadline_ms - time.time() * 1000), 0)


for line in sys.stdin:
    batch = json.loads(line)
    ctx = Context(batch.get("deadline_ms") or 0)
    results = []
    for ev in batch["events"]:
        try:
            results.append({"id": ev["id"], "ok": True, "output": fn(ev.get("data"), ctx)})
        except Exception as e:
            results.append({"id": ev["id"], "ok": False, "error": str(e), "error_type": type(e).__name__})
    proto.write(json.dumps({"batch": batch["batch"], "results": results}) + "\n")
    proto.flush()
