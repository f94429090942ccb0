package example;

import java.util.List;

// A static handler with classes of its own in and out, no Context.
public class Pojo {
    public static class Person {
        public String name;
        private int age;
        public List<String> tags;

        public void setAge(int age) {
            this.age = age;
        }

        public int getAge() {
            return age;
        }
    }

    public static class Greeting {
        private final String text;
        public final boolean adult;

        Greeting(String text, boolean adult) {
            this.text = text;
            this.adult = adult;
        }

        public String getText() {
            return text;
        }
    }

    public static Greeting greet(Person p) {
        return new Greeting("hi " + p.name + " (" + p.tags.size() + " tags)", p.getAge() >= 18);
    }

    public String upper(String s) {
        return s.toUpperCase();
    }

    public Object nothing(Object in) {
        return null;
    }
}
