package jenkins.scm.api
/**
 * Attached by the branch source (SCMBinder) before the Jenkinsfile runs: the
 * revision the build was started for. As the real getRevision(source, run):
 * the action of the run whose source id matches.
 */
class SCMRevisionAction {
  final String sourceId
  final Object revision
  SCMRevisionAction(SCMSource source, Object revision) { this.sourceId = source.id; this.revision = revision }
  static Object getRevision(SCMSource source, hudson.model.Run run) {
    (run.getActions(SCMRevisionAction).find { it.sourceId == source.id } as SCMRevisionAction)?.revision
  }
}
