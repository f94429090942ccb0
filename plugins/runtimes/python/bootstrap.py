"""Sluice's runtime interface client for Python Lambda handlers.

Standard library only. It imports the handler named by _HANDLER
(FILE.FUNCTION, FILE may hold slashes: src/app.handler) from
LAMBDA_TASK_ROOT once, then serves invocations from the Lambda Runtime API
at AWS_LAMBDA_RUNTIME_API until it is stopped, as Lambda's own Python
runtime does.

Run with --check HANDLER (in the code folder) it only parses the handler's
file and looks for the function at its top level, without running any of
the function's code, and prints a problem as TYPE<TAB>MESSAGE.
"""

import importlib
import json
import os
import socket
import sys
import time

# ast, traceback and logging are imported only when needed (--check, an
# error, a function that logs): each costs a cold start milliseconds.

API_PREFIX = "/2018-06-01/runtime"
IMPORTLIB_DIR = os.path.dirname(importlib.__file__) + os.sep


class InitFailure(Exception):
    def __init__(self, error_type, message, trace=None):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


def split_handler(handler):
    """Returns (module path as written, module name, function name)."""
    modpath, sep, fname = handler.rpartition(".")
    if not sep or not modpath or not fname or modpath.endswith("/"):
        raise InitFailure(
            "Runtime.MalformedHandlerName",
            "Bad handler '%s': not enough values to unpack (expected 2, got 1)" % handler,
        )
    return modpath, modpath.replace("/", "."), fname


def load_handler(handler):
    modpath, modname, fname = split_handler(handler)
    try:
        module = importlib.import_module(modname)
    except SyntaxError as e:
        raise InitFailure(
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module '%s': %s" % (modpath, e),
            user_trace(e.__traceback__),
        )
    except ImportError as e:
        raise InitFailure(
            "Runtime.ImportModuleError",
            "Unable to import module '%s': %s" % (modpath, e),
            user_trace(e.__traceback__),
        )
    except Exception as e:
        raise InitFailure(
            "Runtime.ImportModuleError",
            "Unable to import module '%s': %s: %s" % (modpath, type(e).__name__, e),
            user_trace(e.__traceback__),
        )
    fn = getattr(module, fname, None)
    if fn is None:
        raise InitFailure(
            "Runtime.HandlerNotFound",
            "Handler '%s' missing on module '%s'" % (fname, modpath),
        )
    if not callable(fn):
        raise InitFailure(
            "Runtime.HandlerNotFound",
            "Handler '%s' on module '%s' is not callable" % (fname, modpath),
        )
    return fn


def user_trace(tb):
    """The traceback without this file's frames, as Lambda reports it."""
    import traceback

    frames = [
        f
        for f in traceback.extract_tb(tb)
        if f.filename != __file__ and not f.filename.startswith(("<frozen ", IMPORTLIB_DIR))
    ]
    return traceback.format_list(frames)


def check(handler):
    """Static check for sluice validate: the file parses and defines the
    function at its top level. Runs none of the function's code."""
    import ast

    try:
        modpath, _, fname = split_handler(handler)
    except InitFailure as e:
        return e.error_type, e.message
    base = modpath
    path = base + ".py"
    if not os.path.isfile(path):
        if os.path.isfile(os.path.join(base, "__init__.py")):
            path = os.path.join(base, "__init__.py")
        else:
            return (
                "Runtime.ImportModuleError",
                "Unable to import module '%s': no file %s in %s" % (modpath, path, os.getcwd()),
            )
    try:
        with open(path, "rb") as f:
            src = f.read()
        tree = ast.parse(src, filename=path)
    except SyntaxError as e:
        return (
            "Runtime.UserCodeSyntaxError",
            "Syntax error in module '%s': %s (%s, line %s)" % (modpath, e.msg, path, e.lineno),
        )
    except (OSError, ValueError) as e:
        return "Runtime.ImportModuleError", "Unable to import module '%s': %s" % (modpath, e)
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    names.add(t.id)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                names.add((a.asname or a.name).split(".")[0])
        else:
            # if/try blocks may define it conditionally: do not guess.
            if isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
                return None
    if fname not in names:
        return "Runtime.HandlerNotFound", "Handler '%s' missing on module '%s' (%s)" % (fname, modpath, path)
    return None


class LambdaContext:
    """The context object of Lambda's Python runtime."""

    # The function's settings, read from the environment once (main).
    function_name = function_version = memory_limit_in_mb = None
    log_group_name = log_stream_name = None

    def __init__(self, request_id, deadline_ms, arn, client_context, identity):
        self.aws_request_id = request_id
        self._deadline_ms = deadline_ms
        self.invoked_function_arn = arn
        self.client_context = client_context
        self.identity = identity

    @classmethod
    def configure(cls, env):
        cls.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        cls.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        cls.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        cls.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        cls.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")

    def get_remaining_time_in_millis(self):
        return max(int(self._deadline_ms - time.time() * 1000), 0)

    def __repr__(self):
        return "LambdaContext([aws_request_id=%s,function_name=%s,function_version=%s,invoked_function_arn=%s])" % (
            self.aws_request_id,
            self.function_name,
            self.function_version,
            self.invoked_function_arn,
        )


class ClientContext:
    def __init__(self, d):
        self.client = d.get("client")
        self.custom = d.get("custom")
        self.env = d.get("env")


current_request_id = ""


def configure_logging(logging):
    """Formats the logging module's records as Lambda does, through the
    root logger's one handler."""

    class LambdaLogHandler(logging.Handler):
        def emit(self, record):
            try:
                msg = self.format(record)
                t = time.gmtime(record.created)
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", t) + ".%03dZ" % record.msecs
                line = "[%s]\t%s\t%s\t%s" % (record.levelname, stamp, current_request_id, msg)
                sys.stdout.write(line.replace("\n", "\r") + "\n")
            except Exception:
                self.handleError(record)

    h = LambdaLogHandler()
    h.setFormatter(logging.Formatter("%(message)s"))
    logging.getLogger().handlers[:] = [h]


class LoggingHook:
    """Configures the logging module as it is first imported, by the
    function or anything it imports, before any of its code runs."""

    def find_spec(self, name, path=None, target=None):
        if name != "logging":
            return None
        sys.meta_path.remove(self)
        spec = None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None)
            spec = find and find(name, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_configure(module):
            exec_module(module)
            configure_logging(module)

        spec.loader.exec_module = exec_and_configure
        return spec


def hook_logging():
    if "logging" in sys.modules:
        configure_logging(sys.modules["logging"])
    else:
        sys.meta_path.insert(0, LoggingHook())


class Head:
    """A response's head, its fields looked up by name (lower case) when
    asked for: an invocation reads five of them."""

    __slots__ = ("raw", "low")

    def __init__(self, raw):
        self.raw = raw
        self.low = raw.lower()

    def get(self, name, default=None):
        i = self.low.find("\r\n" + name + ":")
        if i < 0:
            return default
        i += len(name) + 3
        j = self.raw.find("\r\n", i)
        return self.raw[i : j if j >= 0 else len(self.raw)].strip()


class RuntimeAPI:
    """A minimal HTTP/1.1 client of the Runtime API on one keep-alive
    connection, reading through a buffer of its own: http.client's header
    parsing costs more than a small handler, and every invocation takes two
    requests."""

    def __init__(self, addr, unix_path=None):
        host, _, port = addr.rpartition(":")
        self.host = addr
        self.addr = (host or "127.0.0.1", int(port))
        # Sluice serves the same API on a Unix socket, cheaper per message
        # than loopback TCP.
        self.unix_path = unix_path
        self.sock = None
        self.buf = bytearray()
        self.prefetched = None
        self.next_msg = self._msg("GET", "/invocation/next")
        self.response_head = ("POST %s/invocation/" % API_PREFIX).encode("latin-1")
        self.response_tail = (
            "/response HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: " % addr
        ).encode("latin-1")

    def _connect(self):
        if self.unix_path:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.unix_path)
            except OSError:
                s.close()
                raise
        else:
            s = socket.create_connection(self.addr)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = s
        self.buf = bytearray()

    def _close(self):
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None
        self.buf = bytearray()

    def _msg(self, method, path, body=b"", headers=None):
        head = "%s %s%s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n" % (
            method,
            API_PREFIX,
            path,
            self.host,
            len(body),
        )
        for k, v in (headers or {}).items():
            head += "%s: %s\r\n" % (k, v)
        return head.encode("latin-1") + b"\r\n" + body

    def _do(self, msg):
        for attempt in range(2):
            try:
                if self.sock is None:
                    self._connect()
                self.sock.sendall(msg)
                return self._read()
            except (OSError, ValueError):
                # The keep-alive connection was closed: one fresh try.
                self._close()
                if attempt:
                    raise

    def _complete(self, msg):
        """Posts an invocation's end and, in the same write, the poll for
        the next one (HTTP/1.1 pipelining): the next invocation does not
        wait for a round trip."""
        try:
            if self.sock is None:
                self._connect()
            self.sock.sendall(msg + self.next_msg)
            self._read()
            self.prefetched = self._read()
        except (OSError, ValueError):
            self._close()
            self.prefetched = None

    def _fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise ConnectionError("runtime API: connection closed")
        self.buf += d

    def _line(self, at):
        """The end of the line starting at at, reading more as needed."""
        while True:
            i = self.buf.find(b"\r\n", at)
            if i >= 0:
                return i
            if len(self.buf) - at > 65536:
                raise ValueError("runtime API: line too long")
            self._fill()

    def _read(self):
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        while end < 0:
            if len(buf) > 1 << 20:
                raise ValueError("runtime API: header too long")
            self._fill()
            buf = self.buf
            end = buf.find(b"\r\n\r\n")
        headers = Head(buf[:end].decode("latin-1"))
        parts = headers.raw[: headers.raw.find("\r\n")].split(None, 2)
        if len(parts) < 2:
            raise ValueError("runtime API: bad status line %r" % parts[:1])
        status = int(parts[1])
        at = end + 4
        length = headers.get("content-length")
        if length is None and headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                eol = self._line(at)
                size = int(bytes(self.buf[at:eol]).split(b";")[0].strip() or b"0", 16)
                at = eol + 2
                if size == 0:
                    while True:
                        eol = self._line(at)
                        done = eol == at
                        at = eol + 2
                        if done:
                            break
                    break
                while len(self.buf) < at + size + 2:
                    self._fill()
                chunks.append(bytes(self.buf[at : at + size]))
                at += size + 2
            body = b"".join(chunks)
        else:
            n = int(length or 0)
            while len(self.buf) < at + n:
                self._fill()
            body = bytes(self.buf[at : at + n])
            at += n
        del self.buf[:at]
        if "close" in headers.low and headers.get("connection", "").lower() == "close":
            self._close()
        return status, headers, body

    def next(self):
        got, self.prefetched = self.prefetched, None
        status, headers, body = got or self._do(self.next_msg)
        if status != 200:
            raise SystemExit("runtime API: GET next: %d %s" % (status, body[:200]))
        return headers, body

    def respond(self, request_id, body):
        self._complete(
            b"".join(
                (self.response_head, request_id.encode("latin-1"), self.response_tail, b"%d\r\n\r\n" % len(body), body)
            )
        )

    def error(self, path, error_type, message, trace):
        body = json.dumps({"errorMessage": message, "errorType": error_type, "stackTrace": trace}).encode()
        headers = {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": error_type}
        msg = self._msg("POST", path, body, headers)
        if path == "/init/error":
            self._do(msg)
        else:
            self._complete(msg)


def flush():
    """A partial last line (print(..., end="")) belongs to this invocation:
    out before its end is posted."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def log_error(error_type, message, trace):
    line = "[ERROR] %s: %s" % (error_type, message)
    if trace:
        line += "\nTraceback (most recent call last):\n" + "".join(trace)
    sys.stdout.write(line.rstrip("\n").replace("\n", "\r") + "\n")


def main():
    global current_request_id
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    handler = os.environ.get("_HANDLER", "")
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        problem = check(sys.argv[2])
        if problem:
            print("%s\t%s" % problem)
            sys.exit(1)
        return
    root = os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd()
    # The code folder comes first on the import path, as on Lambda; the
    # client's own folder is not on it.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    sys.path.insert(0, root)
    hook_logging()
    api = RuntimeAPI(os.environ["AWS_LAMBDA_RUNTIME_API"], os.environ.pop("SLUICE_RUNTIME_API_SOCKET", None))
    LambdaContext.configure(os.environ)
    environ = os.environ
    traced = "_X_AMZN_TRACE_ID" in environ
    try:
        fn = load_handler(handler)
    except InitFailure as e:
        log_error(e.error_type, e.message, e.trace)
        api.error("/init/error", e.error_type, e.message, e.trace)
        sys.exit(1)
    while True:
        h, body = api.next()
        request_id = h.get("lambda-runtime-aws-request-id")
        current_request_id = request_id
        try:
            deadline = int(h.get("lambda-runtime-deadline-ms") or 0)
        except ValueError:
            deadline = 0
        cc = h.get("lambda-runtime-client-context")
        client_context = None
        if cc:
            try:
                client_context = ClientContext(json.loads(cc))
            except ValueError:
                client_context = None
        trace_id = h.get("lambda-runtime-trace-id")
        if trace_id:
            environ["_X_AMZN_TRACE_ID"] = trace_id
            traced = True
        elif traced:
            environ.pop("_X_AMZN_TRACE_ID", None)
            traced = False
        ctx = LambdaContext(
            request_id, deadline, h.get("lambda-runtime-invoked-function-arn"), client_context, None
        )
        try:
            event = json.loads(body) if body else None
        except ValueError as e:
            api.error(
                "/invocation/%s/error" % request_id,
                "Runtime.UnmarshalError",
                "Unable to unmarshal input: %s" % e,
                [],
            )
            continue
        try:
            result = fn(event, ctx)
        except Exception as e:
            trace = user_trace(e.__traceback__)
            log_error(type(e).__name__, str(e), trace)
            flush()
            api.error("/invocation/%s/error" % request_id, type(e).__name__, str(e), trace)
            continue
        try:
            out = json.dumps(result).encode()
        except (TypeError, ValueError) as e:
            msg = "Unable to marshal response: %s" % e
            log_error("Runtime.MarshalError", msg, [])
            api.error("/invocation/%s/error" % request_id, "Runtime.MarshalError", msg, [])
            continue
        flush()
        api.respond(request_id, out)


if __name__ == "__main__":
    main()
