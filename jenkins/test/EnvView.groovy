/** `env.X` in a pipeline: the build's environment plus any withEnv in force. */
class EnvView {
  private final Harness h
  EnvView(Harness h) { this.h = h }
  Object getProperty(String name) { h.currentEnv()[name] }
  void setProperty(String name, Object value) { h.env[name] = value as String }
}
