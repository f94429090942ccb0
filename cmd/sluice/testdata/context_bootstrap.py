#!/usr/bin/env python3
"""context_bootstrap: a Lambda custom runtime (the Runtime API over HTTP,
stdlib only) whose function answers with what Lambda told it about itself:
the invoked function ARN header of its invocation and its AWS_REGION."""

import json
import os
import urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"


def main():
    while True:
        with urllib.request.urlopen(API + "next") as r:
            request_id = r.headers["Lambda-Runtime-Aws-Request-Id"]
            arn = r.headers["Lambda-Runtime-Invoked-Function-Arn"]
            r.read()
        out = json.dumps({"invoked_function_arn": arn, "aws_region": os.environ.get("AWS_REGION")})
        req = urllib.request.Request(API + request_id + "/response", data=out.encode(), method="POST")
        with urllib.request.urlopen(req) as r:
            r.read()


if __name__ == "__main__":
    main()
