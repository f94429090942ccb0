// A Node.js Lambda function as it runs on AWS, unchanged, on runtime: nodejs.
//
// - An HTTP request (API Gateway HTTP API payload 2.0) gets
//   {statusCode: 200, body: '{"hello":NAME}'}, NAME from the JSON body's
//   "name" or "world".
// - A Kafka batch (self-managed Kafka event) reports the records whose JSON
//   value has "fail": true in batchItemFailures; the others succeed.
// - A direct invocation gets {hello: NAME, ...} with what the context says;
//   {"fail": true} throws a TypeError.

// Module-level code runs once per instance (the cold start), not per event.
let invocations = 0;

const greet = (payload) => ({ hello: (payload && payload.name) || "world" });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const handler = async (event, context) => {
  invocations++;
  if (event && event.eventSource === "SelfManagedKafka") {
    const batchItemFailures = [];
    for (const records of Object.values(event.records)) {
      for (const r of records) {
        const value = JSON.parse(Buffer.from(r.value || "e30=", "base64").toString() || "{}");
        if (value && value.fail) {
          batchItemFailures.push({ itemIdentifier: { partition: `${r.topic}-${r.partition}`, offset: r.offset } });
        }
      }
    }
    console.log(`kafka batch: ${batchItemFailures.length} failed`);
    return { batchItemFailures };
  }
  if (event && event.version === "2.0" && event.requestContext) {
    let body = event.body || "{}";
    if (event.isBase64Encoded) body = Buffer.from(body, "base64").toString();
    let payload;
    try {
      payload = JSON.parse(body);
    } catch {
      return { statusCode: 400, body: JSON.stringify({ error: "the body is not JSON" }) };
    }
    console.log("hello from", event.requestContext.http.path);
    return { statusCode: 200, headers: { "content-type": "application/json" }, body: JSON.stringify(greet(payload)) };
  }
  if (event && event.fail) {
    throw new TypeError("asked to fail");
  }
  const first = context.getRemainingTimeInMillis();
  if (event && event.wait_ms) await sleep(event.wait_ms);
  return {
    ...greet(event),
    awsRequestId: context.awsRequestId,
    functionName: context.functionName,
    functionVersion: context.functionVersion,
    invokedFunctionArn: context.invokedFunctionArn,
    memoryLimitInMB: context.memoryLimitInMB,
    logGroupName: context.logGroupName,
    logStreamName: context.logStreamName,
    callbackWaitsForEmptyEventLoop: context.callbackWaitsForEmptyEventLoop,
    remainingMs: [first, context.getRemainingTimeInMillis()],
    invocations,
  };
};
