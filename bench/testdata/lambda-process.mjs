// A Lambda handler behind the runtime: process protocol (JSON lines), for
// the benchmark suite: the same handler code as the managed runtime runs,
// called in-process per event. Usage: lambda-process.mjs CODE_DIR FILE.FUNCTION
import path from "node:path";
import readline from "node:readline";
import { pathToFileURL } from "node:url";
import util from "node:util";

const [code, handler] = process.argv.slice(2);
const dot = handler.indexOf(".", handler.lastIndexOf("/") + 1);
const mod = await import(pathToFileURL(path.resolve(code, handler.slice(0, dot) + ".mjs")).href);
const fn = mod[handler.slice(dot + 1)];
// The handler's console lines are logs, as on the managed runtime.
console.log = (...a) => process.stderr.write(util.format(...a) + "\n");

const rl = readline.createInterface({ input: process.stdin });
rl.on("line", async (line) => {
  const batch = JSON.parse(line);
  const ctx = { getRemainingTimeInMillis: () => Math.max((batch.deadline_ms || 0) - Date.now(), 0) };
  const results = [];
  for (const ev of batch.events) {
    try {
      results.push({ id: ev.id, ok: true, output: await fn(ev.data, ctx) });
    } catch (e) {
      results.push({ id: ev.id, ok: false, error: String(e && e.message), error_type: e && e.name });
    }
  }
  process.stdout.write(JSON.stringify({ batch: batch.batch, results }) + "\n");
});
