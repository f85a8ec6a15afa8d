package jenkins.scm.api
class SCMHead {
  final String name
  SCMHead(String name) { this.name = name }
  static class HeadByItem {
    static Map heads = [:]
    static SCMHead findHead(Object item) { heads[item] as SCMHead }
  }
}
