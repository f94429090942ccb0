package example;

import java.util.LinkedHashMap;
import java.util.Map;

// A Java Lambda handler for runtime: java. On Lambda it would usually
// implement aws-lambda-java-core's RequestHandler and take its Context;
// this one needs nothing but the JDK, so `javac -d build example/Hello.java`
// builds it:
//
//	functions:
//	  java-hello:
//	    runtime: java21
//	    handler: example.Hello::handleRequest
//	    code: plugins/examples/java-hello/build
//
// Behind an HTTP route the event is API Gateway's HTTP API payload 2.0 and
// the return value its response.
public class Hello {
    private int invocations; // one Hello per instance: kept between events

    public Map<String, Object> handleRequest(Map<String, Object> event) {
        invocations++;
        Object body = event.get("body");
        System.out.println("hello from java, invocation " + invocations);
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("statusCode", 200);
        out.put("headers", Map.of("content-type", "application/json"));
        out.put("body", "{\"hello\":\"java\",\"invocations\":" + invocations + ",\"got\":" + (body == null ? 0 : body.toString().length()) + "}");
        return out;
    }
}
