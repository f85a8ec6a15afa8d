import io.jenkinsoidc.Controller
import io.jenkinsoidc.Masking
import io.jenkinsoidc.Settings

/**
 * def jwt = jenkinsOidcToken(audience: 'https://vault.example.com')
 *
 * Returns one ID token for this build (valid a few minutes), minted and
 * exchanged on the controller; the request token behind it is revoked at
 * once. With a block, the token is passed in and masked in the log while the
 * block runs: jenkinsOidcToken(audience: 'x') { jwt -> ... }
 */
def call(Map args = [:], Closure body = null) {
  Settings settings = Settings.resolve(args, Settings.parseProperties(libraryResource('io/jenkinsoidc/defaults.properties')))
  List<String> audiences = args.audience ? [args.audience as String] : null
  Map minted = Controller.mint(settings, currentBuild.rawBuild, audiences, 300)
  String jwt
  try {
    jwt = Controller.exchange(settings, minted.token as String, args.audience as String)
  } finally {
    Controller.revoke(settings, minted.token as String)
  }
  if (body == null) return jwt
  if (!Masking.available()) {
    echo 'jenkins-oidc: the Mask Passwords plugin is not installed, so the ID token is not masked in this log'
    return body(jwt)
  }
  wrap([$class: 'MaskPasswordsBuildWrapper', varPasswordPairs: [[var: 'JENKINS_OIDC_ID_TOKEN', password: jwt]]]) {
    body(jwt)
  }
}
