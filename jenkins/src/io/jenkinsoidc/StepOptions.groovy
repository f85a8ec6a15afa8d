package io.jenkinsoidc

import com.cloudbees.groovy.cps.NonCPS

/**
 * Reads the options a Jenkinsfile passed to a step. Values are taken only as
 * what they are (a String, a GString rendered once, a Number, a List of
 * those): no method of an arbitrary object is called for them.
 */
final class StepOptions {
  private StepOptions() { }

  /** Refuses option names the step does not know: a typo must not silently change what a build gets. */
  @NonCPS
  static void checkKnown(String step, Map options, List<String> known) {
    for (Object key : (options ?: [:]).keySet()) {
      if (!(key instanceof String) || !known.contains(key)) {
        throw new JenkinsOidcException("${step}: unknown option ${String.valueOf(key).take(60)}; the options are ${known.join(', ')}")
      }
    }
  }

  @NonCPS
  static String text(Map options, String key) {
    Object v = options == null ? null : options.get(key)
    if (v == null) return null
    if (v instanceof String || v instanceof GString || v instanceof Number || v instanceof Boolean) return v.toString()
    throw new JenkinsOidcException("option ${key} must be a string, got a ${v.getClass().simpleName}")
  }

  @NonCPS
  static List<String> texts(Map options, String key) {
    Object v = options == null ? null : options.get(key)
    if (v == null) return null
    if (!(v instanceof List)) return [text(options, key)]
    List<String> out = []
    for (Object item : (List) v) out << text([(key): item], key)
    return out
  }

  @NonCPS
  static Integer number(Map options, String key) {
    String v = text(options, key)
    if (v == null) return null
    if (!(v ==~ /[1-9][0-9]{0,8}/)) throw new JenkinsOidcException("option ${key} must be a positive whole number, got '${v.take(40)}'")
    return Integer.valueOf(v)
  }
}
