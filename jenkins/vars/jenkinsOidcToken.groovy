import io.jenkinsoidc.Masking
import io.jenkinsoidc.StepOptions
import io.jenkinsoidc.TokenService

/**
 * def jwt = jenkinsOidcToken(audience: 'https://vault.example.com')
 *
 * Returns one ID token for this build (valid a few minutes), issued to the
 * controller in one call: no request token ever leaves the service. With a
 * block, the token is passed in and masked in the log while the block runs:
 * jenkinsOidcToken(audience: 'x') { jwt -> ... }
 * The ID token is a value in the Pipeline program (and in the masking
 * wrapper's arguments): short-lived, for one audience. For long work, prefer
 * withJenkinsOidc, whose request token never enters the Pipeline.
 * `audience` may be left out only when the controller has one audience.
 */
def call(Map args = [:], Closure body = null) {
  Map options = StepOptions.snapshot('jenkinsOidcToken', args, ['audience', 'serviceUrl', 'credentialsId'])
  Map issued = TokenService.idTokenForCurrentBuild(options)
  for (String warning : issued.warnings) echo "jenkins-oidc: ${warning}"
  String jwt = issued.idToken
  if (body == null) return jwt
  if (!Masking.available()) {
    echo 'jenkins-oidc: the Mask Passwords plugin is not installed, so the ID token is not masked in this log'
    return body(jwt)
  }
  wrap([$class: 'MaskPasswordsBuildWrapper', varPasswordPairs: [[var: 'JENKINS_OIDC_ID_TOKEN', password: jwt]]]) {
    body(jwt)
  }
}
