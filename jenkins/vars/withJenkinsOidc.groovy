import io.jenkinsoidc.RequestTokenFile
import io.jenkinsoidc.StepOptions

/**
 * withJenkinsOidc(audience: ['sts.amazonaws.com']) { ... }
 *
 * Mints one build request token for the block, with facts taken from the Run
 * on the controller, and writes it to a private file on the agent (0600 in a
 * 0700 folder under the workspace tmp). The code inside gets:
 *   JENKINS_ID_TOKEN_REQUEST_URL         <service>/id-token?api-version=1
 *   JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE  the file holding the token
 * The token itself is never a step argument, so it is not stored with the
 * build. The folder lies beside the workspace root (<ws>@tmp), also inside
 * dir(). When the block ends (also on failure, abort, or with the agent
 * gone) the controller revokes it by its id, with its own credentials, and
 * the folder is deleted: nothing is read back from the agent, and the block's
 * own error is the one the build fails with. Needs a node.
 *
 * Options: audience (String or List, narrows the controller's audiences),
 * serviceUrl and credentialsId (another service, only as a pair an
 * administrator listed in JENKINS_OIDC_ALLOWED_SERVICES). The token's
 * lifetime is the administrator's (JENKINS_OIDC_REQUEST_TOKEN_TTL).
 */
def call(Map args = [:], Closure body) {
  Map options = StepOptions.snapshot('withJenkinsOidc', args, ['audience', 'serviceUrl', 'credentialsId'], ['audience'])
  String workspace = env.WORKSPACE
  Map token = RequestTokenFile.create(options, getContext(hudson.FilePath), workspace)
  for (String warning : token.warnings) echo "jenkins-oidc: ${warning}"
  try {
    withEnv(["JENKINS_ID_TOKEN_REQUEST_URL=${token.url}", "JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE=${token.file}"]) {
      body()
    }
  } finally {
    // Each cleanup step on its own: an agent that went away makes getContext throw, and
    // that must neither keep the token alive nor replace the block's own error.
    def context = null
    try {
      context = getContext(hudson.FilePath)
    } catch (Exception ignored) {
      // The agent is gone: nothing to delete there; the revocation needs nothing from it.
    }
    boolean revoked = false
    try {
      revoked = RequestTokenFile.remove(options, context, workspace, token.handle as String, token.id as String)
    } catch (Exception ignored) {
      revoked = false
    }
    if (!revoked) echo 'jenkins-oidc: could not revoke the build request token; it expires on its own'
  }
}
