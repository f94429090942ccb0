package example;

import com.amazonaws.services.lambda.runtime.Context;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

// A stream handler: the event's bytes in, the response's bytes out.
public class Streams {
    public void handleRequest(InputStream in, OutputStream out, Context context) throws IOException {
        byte[] b = in.readAllBytes();
        out.write(("{\"len\":" + b.length + ",\"id\":\"" + context.getAwsRequestId() + "\"}").getBytes(StandardCharsets.UTF_8));
    }
}
