// Sluice's runtime interface client for Node.js Lambda handlers.
//
// Node's built-in modules only. It loads the handler named by _HANDLER
// (FILE.FUNCTION, FILE may hold slashes: src/app.handler; FILE.js, .mjs or
// .cjs, ES module or CommonJS) from LAMBDA_TASK_ROOT once, then serves
// invocations from the Lambda Runtime API at AWS_LAMBDA_RUNTIME_API until
// it is stopped, as Lambda's own Node.js runtime does. Handlers may be
// async, return a promise, or take a callback.
//
// Run with --check HANDLER (in the code folder) it only finds the handler's
// file and prints its path, or a problem as TYPE<TAB>MESSAGE.

import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { pathToFileURL } from "node:url";
import util from "node:util";

const API_PREFIX = "/2018-06-01/runtime";

class InitFailure extends Error {
  constructor(type, message, trace) {
    super(message);
    this.errorType = type;
    this.trace = trace || [];
  }
}

// splitHandler reads "dir/file.fn.nested" as Lambda does: the module is
// everything before the first dot after the last slash.
function splitHandler(handler) {
  const slash = handler.lastIndexOf("/");
  const dot = handler.indexOf(".", slash + 1);
  if (dot < 0 || dot === slash + 1 || dot === handler.length - 1) {
    throw new InitFailure("Runtime.MalformedHandlerName", `Bad handler ${handler}`);
  }
  return { module: handler.slice(0, dot), fn: handler.slice(dot + 1) };
}

function findModule(root, module) {
  for (const ext of [".js", ".mjs", ".cjs"]) {
    const p = path.resolve(root, module + ext);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

async function loadHandler(root, handler) {
  const { module, fn } = splitHandler(handler);
  const file = findModule(root, module);
  if (!file) {
    throw new InitFailure(
      "Runtime.ImportModuleError",
      `Error: Cannot find module '${module}' (no ${module}.js, .mjs or .cjs in ${root})`,
    );
  }
  let mod;
  try {
    mod = await import(pathToFileURL(file).href);
  } catch (e) {
    if (e instanceof SyntaxError) {
      throw new InitFailure("Runtime.UserCodeSyntaxError", `${e.name}: ${e.message}`, stack(e));
    }
    throw new InitFailure("Runtime.ImportModuleError", `${e && e.name}: ${e && e.message}`, stack(e));
  }
  let f = resolvePath(mod, fn);
  if (f === undefined && mod.default !== undefined) f = resolvePath(mod.default, fn);
  if (f === undefined) {
    throw new InitFailure("Runtime.HandlerNotFound", `${module}.${fn} is undefined or not exported`);
  }
  if (typeof f !== "function") {
    throw new InitFailure("Runtime.HandlerNotFound", `${module}.${fn} is not a function`);
  }
  return f;
}

function resolvePath(obj, dotted) {
  let v = obj;
  for (const k of dotted.split(".")) {
    if (v === null || v === undefined) return undefined;
    v = v[k];
  }
  return v;
}

function stack(e) {
  if (!e || typeof e.stack !== "string") return [];
  return e.stack.split("\n").filter((l) => !l.includes("bootstrap.mjs"));
}

// console: Lambda's line format, one line per call (newlines become \r).
let currentRequestId = "undefined";
function patchConsole() {
  const write = (level) =>
    function (...args) {
      const line = `${new Date().toISOString()}\t${currentRequestId}\t${level}\t${util.format(...args)}`;
      process.stdout.write(line.replace(/\n/g, "\r") + "\n");
    };
  console.log = write("INFO");
  console.info = write("INFO");
  console.warn = write("WARN");
  console.error = write("ERROR");
  console.debug = write("DEBUG");
  console.trace = function (...args) {
    const err = new Error(util.format(...args));
    write("TRACE")(`Trace: ${err.message}\n${stack(err).slice(1).join("\n")}`);
  };
  console.fatal = write("FATAL");
}

// RuntimeAPI is a minimal HTTP/1.1 client of the Runtime API on one
// keep-alive connection, one request at a time: node:http's machinery costs
// more than a small handler, and every invocation takes two requests.
class RuntimeAPI {
  constructor(addr, unixPath) {
    // Sluice serves the same API on a Unix socket, cheaper per message
    // than loopback TCP.
    this.unixPath = unixPath;
    const i = addr.lastIndexOf(":");
    this.hostHeader = addr;
    this.host = addr.slice(0, i) || "127.0.0.1";
    this.port = Number(addr.slice(i + 1));
    this.sock = null;
    this.buf = null;
    this.pending = []; // requests written and not yet answered, in order
    this.prefetched = null;
    this.nextRequest = this.head("GET", "/invocation/next") + "0\r\n\r\n";
  }

  connect() {
    const s = this.unixPath ? net.connect({ path: this.unixPath }) : net.connect({ host: this.host, port: this.port });
    if (!this.unixPath) s.setNoDelay(true);
    s.on("data", (d) => {
      this.buf = this.buf ? Buffer.concat([this.buf, d]) : d;
      this.parse();
    });
    const gone = (e) => {
      if (this.sock === s) this.sock = null;
      this.buf = null;
      const ps = this.pending;
      this.pending = [];
      for (const p of ps) p.reject(e || new Error("runtime API: connection closed"));
    };
    s.on("error", gone);
    s.on("close", () => gone());
    this.sock = s;
  }

  parse() {
    while (this.pending.length && this.buf && this.parseOne());
  }

  // parseOne resolves the oldest request when its whole answer is in.
  parseOne() {
    const p = this.pending[0];
    const end = this.buf.indexOf("\r\n\r\n");
    if (end < 0) return false;
    const lines = this.buf.subarray(0, end).toString("latin1").split("\r\n");
    const status = Number(lines[0].split(" ")[1]);
    const headers = {};
    for (let i = 1; i < lines.length; i++) {
      const c = lines[i].indexOf(":");
      if (c > 0) headers[lines[i].slice(0, c).trim().toLowerCase()] = lines[i].slice(c + 1).trim();
    }
    let body;
    let rest;
    if ((headers["transfer-encoding"] || "").toLowerCase() === "chunked") {
      const chunks = [];
      let at = end + 4;
      for (;;) {
        const eol = this.buf.indexOf("\r\n", at);
        if (eol < 0) return false;
        const size = parseInt(this.buf.subarray(at, eol).toString("latin1"), 16);
        if (size === 0) {
          const fin = this.buf.indexOf("\r\n\r\n", eol - 2);
          if (fin < 0) return false;
          rest = fin + 4;
          break;
        }
        if (this.buf.length < eol + 2 + size + 2) return false;
        chunks.push(this.buf.subarray(eol + 2, eol + 2 + size));
        at = eol + 2 + size + 2;
      }
      body = Buffer.concat(chunks);
    } else {
      const n = Number(headers["content-length"] || 0);
      if (this.buf.length < end + 4 + n) return false;
      // A view: the buffer is replaced, never written, as data arrives.
      body = this.buf.subarray(end + 4, end + 4 + n);
      rest = end + 4 + n;
    }
    this.buf = rest < this.buf.length ? this.buf.subarray(rest) : null;
    this.pending.shift();
    p.resolve({ status, headers, body });
    return true;
  }

  // head is a request's head up to its Content-Length value.
  head(method, p, headers) {
    let h = `${method} ${API_PREFIX}${p} HTTP/1.1\r\nHost: ${this.hostHeader}\r\n`;
    for (const k in headers) h += `${k}: ${headers[k]}\r\n`;
    return h + "Content-Length: ";
  }

  // send writes one or more whole requests (a string, UTF-8) and returns
  // one promise per request for its answer.
  send(data, count) {
    if (!this.sock) this.connect();
    const ps = [];
    for (let i = 0; i < count; i++) {
      ps.push(new Promise((resolve, reject) => this.pending.push({ resolve, reject })));
    }
    this.sock.write(data);
    return ps;
  }

  once(method, p, body, headers) {
    const b = body === undefined ? "" : body;
    return this.send(this.head(method, p, headers) + Buffer.byteLength(b) + "\r\n\r\n" + b, 1)[0];
  }

  // complete posts an invocation's end and, in the same write, the poll
  // for the next one (HTTP/1.1 pipelining): the next invocation does not
  // wait for a round trip. next() takes the poll's answer.
  complete(p, body, headers) {
    const [post, next] = this.send(this.head("POST", p, headers) + Buffer.byteLength(body) + "\r\n\r\n" + body + this.nextRequest, 2);
    post.catch(() => {}); // a lost connection shows in next
    next.catch(() => {});
    this.prefetched = next;
    return post;
  }

  async next() {
    const p = this.prefetched;
    this.prefetched = null;
    if (p) {
      try {
        return await p;
      } catch {
        // The connection was lost: poll again on a new one.
      }
    }
    return this.request("GET", "/invocation/next");
  }

  async request(method, p, body, headers) {
    const fresh = !this.sock;
    try {
      return await this.once(method, p, body, headers);
    } catch (e) {
      if (fresh) throw e;
      // The keep-alive connection was closed: one fresh try.
      return this.once(method, p, body, headers);
    }
  }
}

const api = new RuntimeAPI(process.env.AWS_LAMBDA_RUNTIME_API || "127.0.0.1:9001", process.env.SLUICE_RUNTIME_API_SOCKET);
delete process.env.SLUICE_RUNTIME_API_SOCKET; // the function's environment is Lambda's
const request = (method, p, body, headers) => api.request(method, p, body, headers);

function postError(p, type, message, trace) {
  const body = JSON.stringify({ errorMessage: message, errorType: type, stackTrace: trace });
  const send = p === "/init/error" ? request : (_method, ...a) => api.complete(...a);
  return send("POST", p, body, {
    "Content-Type": "application/json",
    "Lambda-Runtime-Function-Error-Type": type,
  });
}

function errorFields(e) {
  if (e instanceof Error) {
    return { type: e.name || "Error", message: e.message, trace: stack(e) };
  }
  if (e !== null && typeof e === "object") {
    return { type: "Error", message: JSON.stringify(e), trace: [] };
  }
  return { type: "string", message: String(e), trace: [] };
}

function logError(f) {
  const body = JSON.stringify({ errorType: f.type, errorMessage: f.message, stack: f.trace });
  console.error("Invoke Error \t" + body);
}

// The function's settings, read from the environment once.
const env = {
  AWS_LAMBDA_FUNCTION_NAME: process.env.AWS_LAMBDA_FUNCTION_NAME,
  AWS_LAMBDA_FUNCTION_VERSION: process.env.AWS_LAMBDA_FUNCTION_VERSION,
  AWS_LAMBDA_FUNCTION_MEMORY_SIZE: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
  AWS_LAMBDA_LOG_GROUP_NAME: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
  AWS_LAMBDA_LOG_STREAM_NAME: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
};

function makeContext(h) {
  const deadline = Number(h["lambda-runtime-deadline-ms"] || 0);
  const ctx = {
    callbackWaitsForEmptyEventLoop: true,
    awsRequestId: h["lambda-runtime-aws-request-id"],
    invokedFunctionArn: h["lambda-runtime-invoked-function-arn"],
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
  };
  if (h["lambda-runtime-client-context"]) {
    try {
      ctx.clientContext = JSON.parse(h["lambda-runtime-client-context"]);
    } catch {
      // Not JSON: left out, as Lambda does.
    }
  }
  return ctx;
}

// invoke runs the handler and settles once: by the promise it returns, by
// its callback, or by its return value when it takes no callback.
function invoke(fn, event, ctx) {
  return new Promise((resolve) => {
    let settled = false;
    const done = (err, out) => {
      if (settled) return;
      settled = true;
      resolve({ err, out });
    };
    const callback = (err, out) => done(err === undefined || err === null ? null : err, out);
    ctx.done = callback;
    ctx.succeed = (out) => callback(null, out);
    ctx.fail = (err) => callback(err === undefined || err === null ? "handled" : err);
    let r;
    try {
      r = fn(event, ctx, callback);
    } catch (e) {
      done(e === undefined || e === null ? new Error(String(e)) : e);
      return;
    }
    if (r && typeof r.then === "function") {
      r.then(
        (out) => done(null, out),
        (e) => done(e === undefined || e === null ? new Error(String(e)) : e),
      );
    } else if (fn.length < 3) {
      done(null, r);
    }
  });
}

let inFlight = null;

async function main() {
  const argv = process.argv.slice(2);
  if (argv.length === 2 && argv[0] === "--check") {
    try {
      const { module } = splitHandler(argv[1]);
      const file = findModule(process.cwd(), module);
      if (!file) {
        console.log(`Runtime.ImportModuleError\tCannot find module '${module}' (no ${module}.js, .mjs or .cjs in ${process.cwd()})`);
        process.exit(1);
      }
      console.log(file);
    } catch (e) {
      console.log(`${e.errorType || "Error"}\t${e.message}`);
      process.exit(1);
    }
    return;
  }
  patchConsole();
  const root = process.env.LAMBDA_TASK_ROOT || process.cwd();
  let fn;
  try {
    fn = await loadHandler(root, process.env._HANDLER || "");
  } catch (e) {
    const f = e instanceof InitFailure ? { type: e.errorType, message: e.message, trace: e.trace } : errorFields(e);
    logError(f);
    await postError("/init/error", f.type, f.message, f.trace);
    process.exit(1);
  }
  process.on("uncaughtException", (e) => fatal(e));
  process.on("unhandledRejection", (e) => fatal(e, "Runtime.UnhandledPromiseRejection"));
  let traced = process.env._X_AMZN_TRACE_ID !== undefined;
  for (;;) {
    const { status, headers: h, body } = await api.next();
    if (status !== 200) {
      process.stderr.write(`runtime API: GET next: ${status} ${body.toString().slice(0, 200)}\n`);
      process.exit(1);
    }
    const id = h["lambda-runtime-aws-request-id"];
    currentRequestId = id;
    if (h["lambda-runtime-trace-id"]) {
      process.env._X_AMZN_TRACE_ID = h["lambda-runtime-trace-id"];
      traced = true;
    } else if (traced) {
      delete process.env._X_AMZN_TRACE_ID;
      traced = false;
    }
    let event;
    try {
      event = body.length ? JSON.parse(body.toString()) : null;
    } catch (e) {
      await postError(`/invocation/${id}/error`, "Runtime.UnmarshalError", `Unable to unmarshal input: ${e.message}`, []);
      continue;
    }
    inFlight = id;
    const { err, out } = await invoke(fn, event, makeContext(h));
    inFlight = null;
    if (err !== null && err !== undefined) {
      const f = errorFields(err);
      logError(f);
      await postError(`/invocation/${id}/error`, f.type, f.message, f.trace);
      continue;
    }
    let payload;
    try {
      payload = JSON.stringify(out === undefined ? null : out);
    } catch (e) {
      const msg = `Unable to stringify response body: ${e.message}`;
      console.error(msg);
      await postError(`/invocation/${id}/error`, "Runtime.MarshalError", msg, []);
      continue;
    }
    api.complete(`/invocation/${id}/response`, payload, { "Content-Type": "application/json" });
  }
}

// fatal reports an error nothing caught, for the invocation in progress,
// and exits: Lambda does not reuse a runtime left in that state.
async function fatal(e, type) {
  const f = errorFields(e);
  if (type) f.type = type;
  logError(f);
  try {
    if (inFlight) await postError(`/invocation/${inFlight}/error`, f.type, f.message, f.trace);
  } finally {
    process.exit(129);
  }
}

main().catch((e) => {
  process.stderr.write(`sluice node runtime: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
