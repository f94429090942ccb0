package example;

// A class whose static initializer throws: an init error.
public class Boom {
    static {
        if (true) {
            throw new IllegalStateException("boom at class init");
        }
    }

    public static String handleRequest(String s) {
        return s;
    }
}
