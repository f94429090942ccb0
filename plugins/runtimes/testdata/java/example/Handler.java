package example;

import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.RequestHandler;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

// A RequestHandler as Lambda's Java tutorials write one.
public class Handler implements RequestHandler<Map<String, Object>, Map<String, Object>> {
    private static int invocations; // module state: one instance per process
    private static final long startedAt = System.nanoTime();

    @Override
    public Map<String, Object> handleRequest(Map<String, Object> event, Context context) {
        if (Boolean.TRUE.equals(event.get("fail"))) {
            throw new IllegalStateException("asked to fail", new RuntimeException("the cause"));
        }
        if (event.get("alloc_mb") != null) {
            List<byte[]> hold = new ArrayList<>();
            for (int i = 0; i < ((Number) event.get("alloc_mb")).intValue(); i++) {
                hold.add(new byte[1 << 20]);
            }
            return Map.of("held", hold.size());
        }
        invocations++;
        int before = context.getRemainingTimeInMillis();
        try {
            Thread.sleep(((Number) event.getOrDefault("wait_ms", 0)).longValue());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        System.out.println("hello from java " + event.get("name"));
        context.getLogger().log("via the logger");
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("greeting", "hello " + event.get("name"));
        out.put("invocations", invocations);
        out.put("awsRequestId", context.getAwsRequestId());
        out.put("functionName", context.getFunctionName());
        out.put("functionVersion", context.getFunctionVersion());
        out.put("invokedFunctionArn", context.getInvokedFunctionArn());
        out.put("memoryLimitInMB", context.getMemoryLimitInMB());
        out.put("logGroupName", context.getLogGroupName());
        out.put("logStreamName", context.getLogStreamName());
        out.put("remainingMs", List.of(before, context.getRemainingTimeInMillis()));
        out.put("traceHeader", System.getProperty("com.amazonaws.xray.traceHeader"));
        out.put("taskRoot", System.getenv("LAMBDA_TASK_ROOT"));
        return out;
    }
}
