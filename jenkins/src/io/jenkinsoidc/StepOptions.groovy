package io.jenkinsoidc

import com.cloudbees.groovy.cps.NonCPS

/**
 * Reads the options a Jenkinsfile passed to a step, once. The caller's Map
 * may be any object implementing Map, and a GString may render differently
 * each time (a closure inside it): a value checked on one read and used on
 * another could differ. So every step and every public member starts with
 * snapshot(), which walks the caller's map exactly once and keeps plain
 * Strings (a GString rendered once), Lists of them, and nothing else; all
 * later reads are of the snapshot. No other method of a caller's object is
 * called.
 */
final class StepOptions {
  private StepOptions() { }

  /**
   * A plain copy of the caller's options: each value a String, or for the
   * names in `multiValued` a String or a List of Strings; unknown names
   * refused (a typo must not silently change what a build gets).
   */
  @NonCPS
  static Map<String, Object> snapshot(String step, Map options, List<String> known, List<String> multiValued = []) {
    Map<String, Object> out = new LinkedHashMap<String, Object>()
    if (options == null) return out
    for (Map.Entry entry : options.entrySet()) {
      Object key = entry.key
      if (!(key instanceof String) || !known.contains(key)) {
        // Only a String's text is shown: any other key's methods are the caller's code.
        String name = key instanceof String ? ((String) key).take(60) : "a ${key == null ? 'null' : key.getClass().simpleName} key"
        String hint = 'ttl'.equals(key) ? '; the request token\'s lifetime is the administrator\'s (global property JENKINS_OIDC_REQUEST_TOKEN_TTL), not a step option' : ''
        throw new JenkinsOidcException("${step}: unknown option ${name}; the options are ${known.join(', ')}${hint}")
      }
      Object value = entry.value
      if (value instanceof List) {
        if (!multiValued.contains(key)) throw new JenkinsOidcException("${step}: option ${key} takes one value, not a list")
        List<String> items = []
        for (Object item : (List) value) items << plain(step, (String) key, item)
        out[(String) key] = items
      } else if (value != null) {
        out[(String) key] = plain(step, (String) key, value)
      }
    }
    return out
  }

  /** A String, a GString rendered once, a Number or a Boolean as text; anything else refused. */
  @NonCPS
  private static String plain(String step, String key, Object v) {
    if (v instanceof String || v instanceof GString || v instanceof Number || v instanceof Boolean) return v.toString()
    throw new JenkinsOidcException("${step}: option ${key} must be a string, got a ${v == null ? 'null' : v.getClass().simpleName}")
  }

  /** A snapshot's value as a List of Strings, or null when absent. */
  @NonCPS
  static List<String> texts(Map<String, Object> snapshot, String key) {
    Object v = snapshot[key]
    if (v == null) return null
    return v instanceof List ? new ArrayList<String>((List) v) : [v as String]
  }
}
