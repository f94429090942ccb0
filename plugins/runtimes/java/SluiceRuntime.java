// Sluice's runtime interface client for Java Lambda handlers: the JDK's
// standard library only, nothing to install. Sluice compiles it once with
// the JDK's javac when a runtime: java function starts and runs it on the
// same JVM; it speaks the Lambda Runtime API at AWS_LAMBDA_RUNTIME_API.
//
// Usage: java -cp DIR SluiceRuntime CODE
//
// CODE is the function's code: a folder of classes (with its lib/*.jar, as
// Lambda's zip layout has them) or a jar. _HANDLER names the handler as
// Lambda's Java runtime reads it: pkg.Class::method, or pkg.Class for its
// handleRequest method. The class is loaded and, unless the method is
// static, made once per instance with its no-argument constructor (the cold
// start); the method may take the event (a Map, List, String, number,
// boolean or a class with public fields or setters, converted from the
// event's JSON), then a Context (any interface named Context, as
// aws-lambda-java-core's, answered by a proxy), or an InputStream, an
// OutputStream and a Context (a stream handler).
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.reflect.Array;
import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.GenericArrayType;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Proxy;
import java.lang.reflect.Type;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.net.HttpURLConnection;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

public final class SluiceRuntime {
    private static final String PREFIX = "/2018-06-01/runtime";

    /** A failure to load the handler, reported to /init/error. */
    static final class InitFailure extends Exception {
        final String type;

        InitFailure(String type, String message, Throwable cause) {
            super(message, cause);
            this.type = type;
        }
    }

    /** The handler: its method, the object it is called on, how it is called. */
    static final class Handler {
        Method method;
        Object target;
        boolean stream;
        int contextAt = -1;
        int eventAt = -1;
        Type eventType;
    }

    public static void main(String[] args) throws Exception {
        String api = System.getenv("AWS_LAMBDA_RUNTIME_API");
        String code = args.length > 0 ? args[0] : System.getenv("LAMBDA_TASK_ROOT");
        Handler h;
        try {
            h = load(code, System.getenv("_HANDLER"));
        } catch (InitFailure e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            logError(e.type, e.getMessage(), cause);
            post(api, PREFIX + "/init/error", e.type, error(e.type, e.getMessage(), cause));
            System.exit(1);
            return;
        }
        while (true) {
            HttpURLConnection next = (HttpURLConnection) new URL("http://" + api + PREFIX + "/invocation/next").openConnection();
            byte[] event = readAll(next.getInputStream());
            String id = next.getHeaderField("Lambda-Runtime-Aws-Request-Id");
            long deadline = parseLong(next.getHeaderField("Lambda-Runtime-Deadline-Ms"));
            String arn = next.getHeaderField("Lambda-Runtime-Invoked-Function-Arn");
            String trace = next.getHeaderField("Lambda-Runtime-Trace-Id");
            if (trace != null) {
                System.setProperty("com.amazonaws.xray.traceHeader", trace);
            } else {
                System.clearProperty("com.amazonaws.xray.traceHeader");
            }
            String path = PREFIX + "/invocation/" + id;
            byte[] out;
            try {
                out = invoke(h, event, new Ctx(id, deadline, arn));
            } catch (Unmarshal e) {
                String msg = "Unable to unmarshal input: " + e.getMessage();
                post(api, path + "/error", "Runtime.UnmarshalError", error("Runtime.UnmarshalError", msg, null));
                continue;
            } catch (Throwable t) {
                if (t instanceof InvocationTargetException && t.getCause() != null) {
                    t = t.getCause();
                }
                String type = t.getClass().getName();
                String msg = t.getMessage() != null ? t.getMessage() : type;
                logError(type, msg, t);
                flush();
                post(api, path + "/error", type, error(type, msg, t));
                continue;
            }
            flush();
            post(api, path + "/response", null, out);
        }
    }

    // --- loading the handler ---

    static Handler load(String code, String handler) throws InitFailure {
        if (handler == null || handler.isEmpty()) {
            throw new InitFailure("Runtime.MalformedHandlerName", "no handler: set _HANDLER to pkg.Class::method", null);
        }
        String className = handler, methodName = "handleRequest";
        int sep = handler.indexOf("::");
        if (sep >= 0) {
            className = handler.substring(0, sep);
            methodName = handler.substring(sep + 2);
        }
        ClassLoader loader = new URLClassLoader(classpath(code), SluiceRuntime.class.getClassLoader());
        Thread.currentThread().setContextClassLoader(loader);
        Class<?> cls;
        try {
            cls = Class.forName(className, true, loader);
        } catch (ClassNotFoundException | NoClassDefFoundError e) {
            throw new InitFailure("java.lang.ClassNotFoundException", "Class not found: " + className, e);
        } catch (ExceptionInInitializerError e) {
            Throwable c = e.getCause() != null ? e.getCause() : e;
            throw new InitFailure(c.getClass().getName(), "Error loading class " + className + ": " + c, c);
        } catch (LinkageError e) {
            throw new InitFailure(e.getClass().getName(), "Error loading class " + className + ": " + e, e);
        }
        Handler h = new Handler();
        for (Method m : cls.getMethods()) {
            if (!m.getName().equals(methodName) || m.isBridge() || m.isSynthetic() || m.getParameterCount() > 3) {
                continue;
            }
            // Lambda's rule: of the overloads, the one with the most parameters.
            if (h.method == null || m.getParameterCount() > h.method.getParameterCount()) {
                h.method = m;
            }
        }
        if (h.method == null) {
            throw new InitFailure("java.lang.NoSuchMethodException",
                    "No public method named " + methodName + " with appropriate method signature found on class " + className, null);
        }
        Class<?>[] ps = h.method.getParameterTypes();
        Type[] gs = h.method.getGenericParameterTypes();
        for (int i = 0; i < ps.length; i++) {
            if (InputStream.class.isAssignableFrom(ps[i]) && i == 0) {
                h.stream = true;
            } else if (h.stream && i == 1 && OutputStream.class.isAssignableFrom(ps[i])) {
                // the stream handler's output
            } else if (isContext(ps[i]) && h.contextAt < 0) {
                h.contextAt = i;
            } else if (h.eventAt < 0 && !h.stream) {
                h.eventAt = i;
                h.eventType = gs[i];
            } else {
                throw new InitFailure("java.lang.NoSuchMethodException", "Handler " + handler + " has parameters Lambda cannot pass: "
                        + java.util.Arrays.toString(gs), null);
            }
        }
        if (h.stream && (ps.length < 2 || !OutputStream.class.isAssignableFrom(ps[1]))) {
            throw new InitFailure("java.lang.NoSuchMethodException", "Stream handler " + handler + " must take (InputStream, OutputStream[, Context])", null);
        }
        if (!Modifier.isStatic(h.method.getModifiers())) {
            try {
                Constructor<?> c = cls.getDeclaredConstructor();
                c.setAccessible(true);
                h.target = c.newInstance();
            } catch (NoSuchMethodException e) {
                throw new InitFailure("java.lang.NoSuchMethodException", "Class " + className + " has no constructor without arguments", e);
            } catch (InvocationTargetException e) {
                Throwable c = e.getCause() != null ? e.getCause() : e;
                throw new InitFailure(c.getClass().getName(), "Error creating " + className + ": " + c, c);
            } catch (ReflectiveOperationException e) {
                throw new InitFailure(e.getClass().getName(), "Error creating " + className + ": " + e, e);
            }
        }
        return h;
    }

    static boolean isContext(Class<?> c) {
        return c.isInterface() && c.getSimpleName().equals("Context");
    }

    /** The code's class path: a jar, or a folder and the jars in its lib/. */
    static URL[] classpath(String code) {
        List<URL> urls = new ArrayList<>();
        try {
            File f = new File(code == null ? "." : code);
            urls.add(f.toURI().toURL());
            File[] libs = new File(f, "lib").listFiles((d, n) -> n.endsWith(".jar"));
            if (f.isDirectory() && libs != null) {
                java.util.Arrays.sort(libs);
                for (File j : libs) {
                    urls.add(j.toURI().toURL());
                }
            }
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
        return urls.toArray(new URL[0]);
    }

    // --- one invocation ---

    static final class Unmarshal extends Exception {
        Unmarshal(String msg) {
            super(msg);
        }
    }

    static byte[] invoke(Handler h, byte[] event, Ctx ctx) throws Throwable {
        Object[] args = new Object[h.method.getParameterCount()];
        ByteArrayOutputStream streamOut = null;
        if (h.stream) {
            args[0] = new java.io.ByteArrayInputStream(event);
            args[1] = streamOut = new ByteArrayOutputStream();
        }
        if (h.eventAt >= 0) {
            Object json;
            try {
                json = new Json(new String(event, StandardCharsets.UTF_8)).document();
            } catch (IllegalArgumentException e) {
                throw new Unmarshal(e.getMessage());
            }
            try {
                args[h.eventAt] = convert(json, h.eventType);
            } catch (IllegalArgumentException | ReflectiveOperationException e) {
                throw new Unmarshal(e.getMessage() != null ? e.getMessage() : e.toString());
            }
        }
        if (h.contextAt >= 0) {
            args[h.contextAt] = ctx.proxy(h.method.getParameterTypes()[h.contextAt]);
        }
        Object result = h.method.invoke(h.target, args);
        if (h.stream) {
            return streamOut.toByteArray();
        }
        StringBuilder sb = new StringBuilder();
        write(sb, result, 0);
        return sb.toString().getBytes(StandardCharsets.UTF_8);
    }

    /** The context: a proxy for the handler's Context interface. */
    static final class Ctx {
        final String id, arn;
        final long deadline;

        Ctx(String id, long deadline, String arn) {
            this.id = id;
            this.deadline = deadline;
            this.arn = arn;
        }

        Object proxy(Class<?> iface) {
            return Proxy.newProxyInstance(iface.getClassLoader(), new Class<?>[] {iface}, (p, m, a) -> {
                switch (m.getName()) {
                    case "getAwsRequestId":
                        return id;
                    case "getInvokedFunctionArn":
                        return arn;
                    case "getFunctionName":
                        return System.getenv("AWS_LAMBDA_FUNCTION_NAME");
                    case "getFunctionVersion":
                        return System.getenv("AWS_LAMBDA_FUNCTION_VERSION");
                    case "getLogGroupName":
                        return System.getenv("AWS_LAMBDA_LOG_GROUP_NAME");
                    case "getLogStreamName":
                        return System.getenv("AWS_LAMBDA_LOG_STREAM_NAME");
                    case "getMemoryLimitInMB":
                        return (int) parseLong(System.getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"));
                    case "getRemainingTimeInMillis":
                        return (int) Math.max(0, deadline - System.currentTimeMillis());
                    case "getLogger":
                        return m.getReturnType().isInterface() ? logger(m.getReturnType()) : null;
                    case "toString":
                        return "Context[awsRequestId=" + id + ", invokedFunctionArn=" + arn + "]";
                    case "hashCode":
                        return System.identityHashCode(p);
                    case "equals":
                        return p == a[0];
                    default:
                        return defaultValue(m.getReturnType());
                }
            });
        }

        static Object logger(Class<?> iface) {
            return Proxy.newProxyInstance(iface.getClassLoader(), new Class<?>[] {iface}, (p, m, a) -> {
                if (m.getName().equals("log") && a != null && a.length > 0) {
                    Object msg = a[0];
                    String s = msg instanceof byte[] ? new String((byte[]) msg, StandardCharsets.UTF_8) : String.valueOf(msg);
                    System.out.println(s);
                    return null;
                }
                if (m.getName().equals("toString")) {
                    return "LambdaLogger";
                }
                return defaultValue(m.getReturnType());
            });
        }
    }

    static Object defaultValue(Class<?> t) {
        if (t == boolean.class) {
            return false;
        }
        if (t == int.class || t == long.class || t == short.class || t == byte.class || t == double.class || t == float.class || t == char.class) {
            return convertNumber(0L, t);
        }
        return null;
    }

    // --- errors and logs ---

    /** Lambda's error body: errorMessage, errorType, stackTrace, cause. */
    static byte[] error(String type, String message, Throwable t) {
        StringBuilder sb = new StringBuilder();
        writeError(sb, type, message, t, 0);
        return sb.toString().getBytes(StandardCharsets.UTF_8);
    }

    static void writeError(StringBuilder sb, String type, String message, Throwable t, int depth) {
        sb.append("{\"errorMessage\":");
        quote(sb, message);
        sb.append(",\"errorType\":");
        quote(sb, type);
        sb.append(",\"stackTrace\":[");
        List<String> frames = frames(t);
        for (int i = 0; i < frames.size(); i++) {
            if (i > 0) {
                sb.append(',');
            }
            quote(sb, frames.get(i));
        }
        sb.append(']');
        Throwable c = t == null ? null : t.getCause();
        if (c != null && c != t && depth < 8) {
            sb.append(",\"cause\":");
            writeError(sb, c.getClass().getName(), c.getMessage() != null ? c.getMessage() : c.getClass().getName(), c, depth + 1);
        }
        sb.append('}');
    }

    /** The function's own frames: the reflection and this client cut off. */
    static List<String> frames(Throwable t) {
        List<String> out = new ArrayList<>();
        if (t == null) {
            return out;
        }
        for (StackTraceElement e : t.getStackTrace()) {
            String c = e.getClassName();
            if (c.startsWith("SluiceRuntime")) {
                break;
            }
            if (c.startsWith("jdk.internal.reflect.") || c.startsWith("java.lang.reflect.Method") || c.startsWith("sun.reflect.")) {
                continue;
            }
            out.add(e.toString());
        }
        return out;
    }

    /** One log line for an error: its type, message and frames, \r-joined. */
    static void logError(String type, String message, Throwable t) {
        StringBuilder sb = new StringBuilder(type).append(": ").append(message);
        for (String f : frames(t)) {
            sb.append("\r\tat ").append(f);
        }
        System.out.println(sb.toString().replace('\n', '\r'));
    }

    static void flush() {
        System.out.flush();
        System.err.flush();
    }

    // --- the Runtime API ---

    static void post(String api, String path, String errorType, byte[] body) throws IOException {
        HttpURLConnection c = (HttpURLConnection) new URL("http://" + api + path).openConnection();
        c.setRequestMethod("POST");
        c.setDoOutput(true);
        c.setFixedLengthStreamingMode(body.length);
        c.setRequestProperty("Content-Type", "application/json");
        if (errorType != null) {
            c.setRequestProperty("Lambda-Runtime-Function-Error-Type", errorType);
        }
        try (OutputStream o = c.getOutputStream()) {
            o.write(body);
        }
        int status = c.getResponseCode();
        InputStream in = status >= 400 ? c.getErrorStream() : c.getInputStream();
        if (in != null) {
            readAll(in);
        }
        if (status >= 500) {
            throw new IOException("runtime API: POST " + path + ": " + status);
        }
    }

    static byte[] readAll(InputStream in) throws IOException {
        try (InputStream i = in) {
            return i.readAllBytes();
        }
    }

    static long parseLong(String s) {
        try {
            return s == null ? 0 : Long.parseLong(s.trim());
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    // --- JSON to Java ---

    @SuppressWarnings({"unchecked", "rawtypes"})
    static Object convert(Object json, Type type) throws ReflectiveOperationException {
        Class<?> raw = rawClass(type);
        if (raw == Object.class) {
            return json;
        }
        if (json == null) {
            if (raw.isPrimitive()) {
                return defaultValue(raw);
            }
            return null;
        }
        if (raw == String.class) {
            if (json instanceof String) {
                return json;
            }
            StringBuilder sb = new StringBuilder();
            write(sb, json, 0);
            return sb.toString();
        }
        if (raw == boolean.class || raw == Boolean.class) {
            if (json instanceof Boolean) {
                return json;
            }
            throw new IllegalArgumentException("want a boolean, not " + describe(json));
        }
        if (raw.isPrimitive() || Number.class.isAssignableFrom(raw)) {
            if (json instanceof Number) {
                return convertNumber((Number) json, raw);
            }
            throw new IllegalArgumentException("want a number, not " + describe(json));
        }
        if (raw == char.class || raw == Character.class) {
            if (json instanceof String && ((String) json).length() == 1) {
                return ((String) json).charAt(0);
            }
            throw new IllegalArgumentException("want one character, not " + describe(json));
        }
        if (raw.isEnum()) {
            return Enum.valueOf((Class<Enum>) raw, String.valueOf(json));
        }
        if (Map.class.isAssignableFrom(raw)) {
            if (!(json instanceof Map)) {
                throw new IllegalArgumentException("want an object, not " + describe(json));
            }
            Type vt = typeArg(type, 1);
            Map<String, Object> m = raw.isInterface() ? new LinkedHashMap<>() : (Map<String, Object>) raw.getDeclaredConstructor().newInstance();
            for (Map.Entry<String, Object> e : ((Map<String, Object>) json).entrySet()) {
                m.put(e.getKey(), convert(e.getValue(), vt));
            }
            return m;
        }
        if (Collection.class.isAssignableFrom(raw) || raw.isArray()) {
            if (!(json instanceof List)) {
                throw new IllegalArgumentException("want an array, not " + describe(json));
            }
            List<Object> in = (List<Object>) json;
            if (raw.isArray()) {
                Type et = type instanceof GenericArrayType ? ((GenericArrayType) type).getGenericComponentType() : raw.getComponentType();
                Object arr = Array.newInstance(raw.getComponentType(), in.size());
                for (int i = 0; i < in.size(); i++) {
                    Array.set(arr, i, convert(in.get(i), et));
                }
                return arr;
            }
            Type et = typeArg(type, 0);
            Collection<Object> c = raw.isInterface() ? (java.util.Set.class.isAssignableFrom(raw) ? new java.util.LinkedHashSet<>() : new ArrayList<>())
                    : (Collection<Object>) raw.getDeclaredConstructor().newInstance();
            for (Object o : in) {
                c.add(convert(o, et));
            }
            return c;
        }
        if (!(json instanceof Map)) {
            throw new IllegalArgumentException("want an object for " + raw.getName() + ", not " + describe(json));
        }
        // A class of its own: public fields or setters by the members' names.
        Constructor<?> ctor = raw.getDeclaredConstructor();
        ctor.setAccessible(true);
        Object o = ctor.newInstance();
        for (Map.Entry<String, Object> e : ((Map<String, Object>) json).entrySet()) {
            String k = e.getKey();
            if (k.isEmpty()) {
                continue;
            }
            String setter = "set" + Character.toUpperCase(k.charAt(0)) + k.substring(1);
            Method set = null;
            for (Method m : raw.getMethods()) {
                if (m.getName().equals(setter) && m.getParameterCount() == 1) {
                    set = m;
                    break;
                }
            }
            if (set != null) {
                set.invoke(o, convert(e.getValue(), set.getGenericParameterTypes()[0]));
                continue;
            }
            try {
                Field f = raw.getField(k);
                if (!Modifier.isStatic(f.getModifiers()) && !Modifier.isFinal(f.getModifiers())) {
                    f.set(o, convert(e.getValue(), f.getGenericType()));
                }
            } catch (NoSuchFieldException ignored) {
                // Members the class does not have are left out, as Lambda does.
            }
        }
        return o;
    }

    static Object convertNumber(Number n, Class<?> t) {
        if (t == int.class || t == Integer.class) {
            return n.intValue();
        }
        if (t == long.class || t == Long.class) {
            return n.longValue();
        }
        if (t == double.class || t == Double.class) {
            return n.doubleValue();
        }
        if (t == float.class || t == Float.class) {
            return n.floatValue();
        }
        if (t == short.class || t == Short.class) {
            return n.shortValue();
        }
        if (t == byte.class || t == Byte.class) {
            return n.byteValue();
        }
        if (t == char.class) {
            return (char) n.intValue();
        }
        if (t == BigDecimal.class) {
            return n instanceof BigDecimal ? n : new BigDecimal(n.toString());
        }
        if (t == BigInteger.class) {
            return n instanceof BigInteger ? n : new BigDecimal(n.toString()).toBigInteger();
        }
        return n;
    }

    static String describe(Object json) {
        if (json instanceof Map) {
            return "an object";
        }
        if (json instanceof List) {
            return "an array";
        }
        if (json instanceof String) {
            return "a string";
        }
        return String.valueOf(json);
    }

    static Class<?> rawClass(Type t) {
        if (t instanceof Class) {
            return (Class<?>) t;
        }
        if (t instanceof ParameterizedType) {
            return rawClass(((ParameterizedType) t).getRawType());
        }
        if (t instanceof GenericArrayType) {
            return Array.newInstance(rawClass(((GenericArrayType) t).getGenericComponentType()), 0).getClass();
        }
        return Object.class; // type variables and wildcards
    }

    static Type typeArg(Type t, int i) {
        if (t instanceof ParameterizedType) {
            Type[] a = ((ParameterizedType) t).getActualTypeArguments();
            if (i < a.length) {
                return a[i];
            }
        }
        return Object.class;
    }

    // --- Java to JSON ---

    static void write(StringBuilder sb, Object o, int depth) {
        if (depth > 64) {
            throw new IllegalArgumentException("Unable to marshal response: nested too deep (a cycle?)");
        }
        if (o == null) {
            sb.append("null");
        } else if (o instanceof String || o instanceof Character || o instanceof Enum) {
            quote(sb, o instanceof Enum ? ((Enum<?>) o).name() : o.toString());
        } else if (o instanceof Boolean) {
            sb.append(o);
        } else if (o instanceof Double || o instanceof Float) {
            double d = ((Number) o).doubleValue();
            sb.append(Double.isFinite(d) ? (d == Math.rint(d) && Math.abs(d) < 1e15 ? Long.toString((long) d) : o.toString()) : "null");
        } else if (o instanceof Number) {
            sb.append(o);
        } else if (o instanceof Map) {
            sb.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) o).entrySet()) {
                if (!first) {
                    sb.append(',');
                }
                first = false;
                quote(sb, String.valueOf(e.getKey()));
                sb.append(':');
                write(sb, e.getValue(), depth + 1);
            }
            sb.append('}');
        } else if (o instanceof Iterable) {
            sb.append('[');
            boolean first = true;
            for (Object e : (Iterable<?>) o) {
                if (!first) {
                    sb.append(',');
                }
                first = false;
                write(sb, e, depth + 1);
            }
            sb.append(']');
        } else if (o.getClass().isArray()) {
            sb.append('[');
            for (int i = 0, n = Array.getLength(o); i < n; i++) {
                if (i > 0) {
                    sb.append(',');
                }
                write(sb, Array.get(o, i), depth + 1);
            }
            sb.append(']');
        } else {
            write(sb, properties(o), depth + 1);
        }
    }

    /** A class of its own as JSON: its public getters (and a record's
     * components), then its public fields, by name. */
    static Map<String, Object> properties(Object o) {
        Map<String, Object> m = new TreeMap<>();
        Class<?> c = o.getClass();
        boolean record = false;
        try {
            record = (Boolean) Class.class.getMethod("isRecord").invoke(c);
        } catch (ReflectiveOperationException ignored) {
            // before Java 16
        }
        try {
            if (record) {
                for (Object rc : (Object[]) Class.class.getMethod("getRecordComponents").invoke(c)) {
                    Method acc = (Method) rc.getClass().getMethod("getAccessor").invoke(rc);
                    acc.setAccessible(true);
                    m.put(acc.getName(), acc.invoke(o));
                }
                return m;
            }
            for (Method g : c.getMethods()) {
                String n = g.getName();
                if (g.getParameterCount() != 0 || Modifier.isStatic(g.getModifiers()) || g.getDeclaringClass() == Object.class) {
                    continue;
                }
                String p = null;
                if (n.startsWith("get") && n.length() > 3) {
                    p = n.substring(3);
                } else if (n.startsWith("is") && n.length() > 2 && (g.getReturnType() == boolean.class || g.getReturnType() == Boolean.class)) {
                    p = n.substring(2);
                }
                if (p != null) {
                    m.put(Character.toLowerCase(p.charAt(0)) + p.substring(1), g.invoke(o));
                }
            }
            for (Field f : c.getFields()) {
                if (!Modifier.isStatic(f.getModifiers())) {
                    m.putIfAbsent(f.getName(), f.get(o));
                }
            }
        } catch (ReflectiveOperationException e) {
            throw new IllegalArgumentException("Unable to marshal response: " + e, e);
        }
        return m;
    }

    static void quote(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char ch = s.charAt(i);
            switch (ch) {
                case '"':
                    sb.append("\\\"");
                    break;
                case '\\':
                    sb.append("\\\\");
                    break;
                case '\n':
                    sb.append("\\n");
                    break;
                case '\r':
                    sb.append("\\r");
                    break;
                case '\t':
                    sb.append("\\t");
                    break;
                default:
                    if (ch < 0x20 || ch == 0x2028 || ch == 0x2029 || Character.isSurrogate(ch) && !pairedAt(s, i)) {
                        sb.append(String.format("\\u%04x", (int) (Character.isSurrogate(ch) && !pairedAt(s, i) ? 0xfffd : ch)));
                    } else {
                        sb.append(ch);
                    }
            }
        }
        sb.append('"');
    }

    /** Whether the surrogate at i is half of a well-formed pair. */
    static boolean pairedAt(String s, int i) {
        char ch = s.charAt(i);
        if (Character.isHighSurrogate(ch)) {
            return i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1));
        }
        return i > 0 && Character.isHighSurrogate(s.charAt(i - 1));
    }

    /** A JSON reader: objects as LinkedHashMap, arrays as ArrayList,
     * integers as Integer, Long or BigInteger, other numbers as Double. */
    static final class Json {
        private final String s;
        private int i;

        Json(String s) {
            this.s = s;
        }

        Object document() {
            space();
            if (i == s.length()) {
                return null; // an empty event
            }
            Object v = value(0);
            space();
            if (i != s.length()) {
                throw fail("data after the value");
            }
            return v;
        }

        private IllegalArgumentException fail(String what) {
            return new IllegalArgumentException("invalid JSON at offset " + i + ": " + what);
        }

        private void space() {
            while (i < s.length() && (s.charAt(i) == ' ' || s.charAt(i) == '\t' || s.charAt(i) == '\n' || s.charAt(i) == '\r')) {
                i++;
            }
        }

        private Object value(int depth) {
            if (depth > 512) {
                throw fail("nested too deep");
            }
            space();
            if (i >= s.length()) {
                throw fail("unexpected end");
            }
            char c = s.charAt(i);
            switch (c) {
                case '{': {
                    i++;
                    Map<String, Object> m = new LinkedHashMap<>();
                    space();
                    if (i < s.length() && s.charAt(i) == '}') {
                        i++;
                        return m;
                    }
                    while (true) {
                        space();
                        if (i >= s.length() || s.charAt(i) != '"') {
                            throw fail("want a member name");
                        }
                        String k = string();
                        space();
                        if (i >= s.length() || s.charAt(i) != ':') {
                            throw fail("want ':'");
                        }
                        i++;
                        m.put(k, value(depth + 1));
                        space();
                        if (i < s.length() && s.charAt(i) == ',') {
                            i++;
                        } else if (i < s.length() && s.charAt(i) == '}') {
                            i++;
                            return m;
                        } else {
                            throw fail("want ',' or '}'");
                        }
                    }
                }
                case '[': {
                    i++;
                    List<Object> l = new ArrayList<>();
                    space();
                    if (i < s.length() && s.charAt(i) == ']') {
                        i++;
                        return l;
                    }
                    while (true) {
                        l.add(value(depth + 1));
                        space();
                        if (i < s.length() && s.charAt(i) == ',') {
                            i++;
                        } else if (i < s.length() && s.charAt(i) == ']') {
                            i++;
                            return l;
                        } else {
                            throw fail("want ',' or ']'");
                        }
                    }
                }
                case '"':
                    return string();
                case 't':
                    return word("true", Boolean.TRUE);
                case 'f':
                    return word("false", Boolean.FALSE);
                case 'n':
                    return word("null", null);
                default:
                    return number();
            }
        }

        private Object word(String w, Object v) {
            if (!s.startsWith(w, i)) {
                throw fail("unknown word");
            }
            i += w.length();
            return v;
        }

        private String string() {
            i++; // the opening quote
            StringBuilder sb = new StringBuilder();
            while (true) {
                if (i >= s.length()) {
                    throw fail("unterminated string");
                }
                char c = s.charAt(i++);
                if (c == '"') {
                    return sb.toString();
                }
                if (c < 0x20) {
                    throw fail("control character in a string");
                }
                if (c != '\\') {
                    sb.append(c);
                    continue;
                }
                if (i >= s.length()) {
                    throw fail("unterminated escape");
                }
                char e = s.charAt(i++);
                switch (e) {
                    case '"': case '\\': case '/':
                        sb.append(e);
                        break;
                    case 'b':
                        sb.append('\b');
                        break;
                    case 'f':
                        sb.append('\f');
                        break;
                    case 'n':
                        sb.append('\n');
                        break;
                    case 'r':
                        sb.append('\r');
                        break;
                    case 't':
                        sb.append('\t');
                        break;
                    case 'u':
                        if (i + 4 > s.length()) {
                            throw fail("short \\u escape");
                        }
                        try {
                            sb.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                        } catch (NumberFormatException x) {
                            throw fail("bad \\u escape");
                        }
                        i += 4;
                        break;
                    default:
                        throw fail("bad escape");
                }
            }
        }

        private Number number() {
            int start = i;
            if (i < s.length() && s.charAt(i) == '-') {
                i++;
            }
            boolean integral = true;
            int digits = 0;
            while (i < s.length()) {
                char c = s.charAt(i);
                if (c >= '0' && c <= '9') {
                    digits++;
                } else if (c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
                    integral = false;
                } else {
                    break;
                }
                i++;
            }
            String t = s.substring(start, i);
            if (digits == 0 || !t.matches("-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?")) {
                i = start;
                throw fail("not a value");
            }
            if (integral) {
                BigInteger b = new BigInteger(t);
                if (b.bitLength() < 32) {
                    return b.intValue();
                }
                if (b.bitLength() < 64) {
                    return b.longValue();
                }
                return b;
            }
            return Double.parseDouble(t);
        }
    }

    private SluiceRuntime() {}

    static {
        // System.out line by line, so a line is out before the response.
        System.setOut(new PrintStream(new java.io.FileOutputStream(java.io.FileDescriptor.out), true, StandardCharsets.UTF_8));
    }
}
