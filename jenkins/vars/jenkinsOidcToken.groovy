import io.jenkinsoidc.Masking
import io.jenkinsoidc.StepOptions
import io.jenkinsoidc.TokenService

/**
 * def jwt = jenkinsOidcToken(audience: 'https://vault.example.com')
 *
 * Returns one ID token for this build (valid a few minutes), minted and
 * exchanged on the controller; the request token behind it never leaves the
 * controller and is revoked at once. With a block, the token is passed in and
 * masked in the log while the block runs: jenkinsOidcToken(audience: 'x') { jwt -> ... }
 * The ID token is a value in the Pipeline program (and in the masking
 * wrapper's arguments): short-lived, for one audience. For long work, prefer
 * withJenkinsOidc, whose request token never enters the Pipeline.
 */
def call(Map args = [:], Closure body = null) {
  Map options = args ?: [:]
  StepOptions.checkKnown('jenkinsOidcToken', options, ['audience', 'serviceUrl', 'credentialsId'])
  String jwt = TokenService.idTokenForCurrentBuild(options)
  if (body == null) return jwt
  if (!Masking.available()) {
    echo 'jenkins-oidc: the Mask Passwords plugin is not installed, so the ID token is not masked in this log'
    return body(jwt)
  }
  wrap([$class: 'MaskPasswordsBuildWrapper', varPasswordPairs: [[var: 'JENKINS_OIDC_ID_TOKEN', password: jwt]]]) {
    body(jwt)
  }
}
