package jenkins.scm.api
class SCMSource {
  static class SourceByItem {
    static Map sources = [:]
    static SCMSource findSource(Object item) { sources[item] as SCMSource }
  }
}
