package hudson.util
class Secret {
  private final String value
  private Secret(String v) { value = v }
  static Secret fromString(String v) { new Secret(v) }
  String getPlainText() { value }
  String toString() { 'Secret(hidden)' }
}
