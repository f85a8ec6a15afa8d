package jenkins.scm.api
class SCMSource {
  String id = UUID.randomUUID().toString()
  static class SourceByItem {
    static Map sources = [:]
    static SCMSource findSource(Object item) { sources[item] as SCMSource }
  }
}
