package io.jenkinsoidc

import com.cloudbees.groovy.cps.NonCPS

/**
 * What the steps do on the controller, each call complete in itself. The
 * client secret is looked up inside every call and never returned, so it
 * never sits in a pipeline variable that Jenkins would persist with the
 * build's program state.
 */
class Controller implements Serializable {

  /** Mints a request token for `run` (currentBuild.rawBuild); returns [token:, expiresIn:]. */
  @NonCPS
  static Map mint(Settings settings, run, List<String> audiences, Integer ttl) {
    ClientCredentials client = ClientCredentials.lookup(settings.credentialsId)
    Map<String, String> facts = BuildFacts.of(run)
    Map answer = new TokenService(settings.serviceUrl).mint(client, facts, audiences, ttl)
    return [token: answer.access_token as String, expiresIn: answer.expires_in as Integer]
  }

  @NonCPS
  static String exchange(Settings settings, String requestToken, String audience) {
    return new TokenService(settings.serviceUrl).exchange(requestToken, audience)
  }

  @NonCPS
  static boolean revoke(Settings settings, String requestToken) {
    ClientCredentials client = ClientCredentials.lookup(settings.credentialsId)
    return new TokenService(settings.serviceUrl).revoke(client, requestToken)
  }

  @NonCPS
  static String idTokenRequestUrl(Settings settings) {
    return new TokenService(settings.serviceUrl).idTokenRequestUrl()
  }

  /** The SHA-256 the service publishes for its agent bundle, fetched by the controller. */
  @NonCPS
  static String agentSha256(Settings settings) {
    String text = new URL("${settings.serviceUrl}/agent/jenkins-oidc-agent.mjs.sha256").getText(connectTimeout: 15000, readTimeout: 15000)
    String sha = text.trim().split(/\s+/)[0]
    if (!(sha ==~ /[0-9a-f]{64}/)) throw new JenkinsOidcException("the token service published no valid SHA-256 for its agent (got '${sha.take(80)}')")
    return sha
  }
}
