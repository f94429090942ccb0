// A stand-in for aws-lambda-java-core's LambdaLogger.
package com.amazonaws.services.lambda.runtime;

public interface LambdaLogger {
    void log(String message);

    void log(byte[] message);
}
