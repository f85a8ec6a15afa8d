import io.jenkinsoidc.RequestTokenFile
import io.jenkinsoidc.StepOptions

/**
 * withJenkinsOidc(audience: ['sts.amazonaws.com'], ttl: 3600) { ... }
 *
 * Mints one build request token for the block, with facts taken from the Run
 * on the controller, and writes it to a private file on the agent (0600 in a
 * 0700 folder under the workspace tmp). The code inside gets:
 *   JENKINS_ID_TOKEN_REQUEST_URL         <service>/id-token?api-version=1
 *   JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE  the file holding the token
 * The token itself is never a step argument, so it is not stored with the
 * build. It is revoked and the file deleted when the block ends, also on
 * failure or abort. Needs a node.
 *
 * Options: audience (String or List, narrows the controller's audiences),
 * ttl (seconds, capped by the service), serviceUrl and credentialsId
 * (overrides, only among JENKINS_OIDC_ALLOWED_URLS / _CREDENTIALS_IDS).
 */
def call(Map args = [:], Closure body) {
  Map options = args ?: [:]
  StepOptions.checkKnown('withJenkinsOidc', options, ['audience', 'ttl', 'serviceUrl', 'credentialsId'])
  Map token = RequestTokenFile.create(options, getContext(hudson.FilePath))
  try {
    withEnv(["JENKINS_ID_TOKEN_REQUEST_URL=${token.url}", "JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE=${token.file}"]) {
      body()
    }
  } finally {
    if (!RequestTokenFile.remove(options, getContext(hudson.FilePath), token.handle as String)) {
      echo 'jenkins-oidc: could not revoke the build request token; it expires on its own'
    }
  }
}
