"""A Python Lambda function as it runs on AWS, unchanged, on runtime: python.

- An HTTP request (API Gateway HTTP API payload 2.0) gets
  {"statusCode": 200, "body": "{\"hello\": NAME}"}, NAME from the JSON
  body's "name" or "world".
- A Kafka batch (self-managed Kafka event) reports the records whose JSON
  value has "fail": true in batchItemFailures; the others succeed.
- A direct invocation gets {"hello": NAME, ...} with what the context says;
  {"fail": true} raises ValueError.
"""

import base64
import json
import time

# Module-level code runs once per instance (the cold start), not per event.
STARTED = time.time()
invocations = 0


def greet(payload):
    name = payload.get("name") if isinstance(payload, dict) else None
    return {"hello": name or "world"}


def lambda_handler(event, context):
    global invocations
    invocations += 1
    if isinstance(event, dict) and event.get("eventSource") == "SelfManagedKafka":
        failures = []
        for records in event["records"].values():
            for r in records:
                value = json.loads(base64.b64decode(r.get("value") or "e30=") or "{}")
                if isinstance(value, dict) and value.get("fail"):
                    failures.append({"itemIdentifier": {"partition": "%s-%d" % (r["topic"], r["partition"]), "offset": r["offset"]}})
        print("kafka batch: %d failed" % len(failures))
        return {"batchItemFailures": failures}
    if isinstance(event, dict) and event.get("version") == "2.0" and "requestContext" in event:
        body = event.get("body") or "{}"
        if event.get("isBase64Encoded"):
            body = base64.b64decode(body).decode()
        try:
            payload = json.loads(body)
        except ValueError:
            return {"statusCode": 400, "body": json.dumps({"error": "the body is not JSON"})}
        print("hello from", event["requestContext"]["http"]["path"])
        return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(greet(payload))}
    if isinstance(event, dict) and event.get("fail"):
        raise ValueError("asked to fail")
    first = context.get_remaining_time_in_millis()
    if isinstance(event, dict) and event.get("wait_ms"):
        time.sleep(event["wait_ms"] / 1000)
    out = greet(event)
    out.update(
        request_id=context.aws_request_id,
        function_name=context.function_name,
        function_version=context.function_version,
        invoked_function_arn=context.invoked_function_arn,
        memory_limit_in_mb=context.memory_limit_in_mb,
        log_group_name=context.log_group_name,
        log_stream_name=context.log_stream_name,
        remaining_ms=[first, context.get_remaining_time_in_millis()],
        invocations=invocations,
    )
    return out
