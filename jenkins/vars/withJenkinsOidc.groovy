import io.jenkinsoidc.Controller
import io.jenkinsoidc.Masking
import io.jenkinsoidc.Settings

/**
 * withJenkinsOidc(audience: ['sts.amazonaws.com'], ttl: 3600) { ... }
 *
 * Mints one build request token for the block, with facts taken from the Run
 * on the controller, and exposes it to the code inside:
 *   JENKINS_ID_TOKEN_REQUEST_URL         <service>/id-token?api-version=1
 *   JENKINS_ID_TOKEN_REQUEST_TOKEN       the token (masked in the log)
 *   JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE  the same in a 0600 file on the agent
 * The token is revoked when the block ends, also on failure or abort.
 *
 * Options: audience (String or List, narrows the controller's audiences),
 * ttl (seconds, capped by the service), serviceUrl and credentialsId
 * (overrides, only among JENKINS_OIDC_ALLOWED_URLS / _CREDENTIALS_IDS).
 */
def call(Map args = [:], Closure body) {
  Settings settings = Settings.resolve(args, Settings.parseProperties(libraryResource('io/jenkinsoidc/defaults.properties')))
  List<String> audiences = args.audience == null ? null : (args.audience instanceof List ? args.audience : [args.audience]).collect { it as String }
  Map minted = Controller.mint(settings, currentBuild.rawBuild, audiences, args.ttl as Integer)
  String token = minted.token
  String folder = "${pwd(tmp: true)}/jenkins-oidc-${UUID.randomUUID().toString().take(8)}"
  String file = "${folder}/request-token"
  try {
    writeFile(file: file, text: token)
    if (isUnix()) {
      sh(script: "chmod 700 '${folder}' && chmod 600 '${file}'", label: 'jenkins-oidc: protect the request token file')
    }
    Closure inner = {
      withEnv([
        "JENKINS_ID_TOKEN_REQUEST_URL=${Controller.idTokenRequestUrl(settings)}",
        "JENKINS_ID_TOKEN_REQUEST_TOKEN=${token}",
        "JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE=${file}",
      ]) {
        body()
      }
    }
    if (Masking.available()) {
      wrap([$class: 'MaskPasswordsBuildWrapper', varPasswordPairs: [[var: 'JENKINS_ID_TOKEN_REQUEST_TOKEN', password: token]]]) { inner() }
    } else {
      echo 'jenkins-oidc: the Mask Passwords plugin is not installed, so the request token is not masked in this log'
      inner()
    }
  } finally {
    if (!Controller.revoke(settings, token)) {
      echo 'jenkins-oidc: could not revoke the build request token; it expires on its own'
    }
    dir(folder) { deleteDir() }
  }
}
