package jenkins.scm.api
class SCMRevisionAction {
  static Map revisions = [:]
  static Object getRevision(SCMSource source, Object run) { revisions[run] }
}
