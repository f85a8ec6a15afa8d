package io.jenkinsoidc

import com.cloudbees.groovy.cps.NonCPS
import com.cloudbees.plugins.credentials.CredentialsProvider
import com.cloudbees.plugins.credentials.CredentialsScope
import com.cloudbees.plugins.credentials.common.StandardUsernamePasswordCredentials
import groovy.json.JsonSlurper
import hudson.security.ACL
import jenkins.model.Jenkins

/**
 * The controller's calls to the token service. Plain HttpURLConnection:
 * nothing to install on the controller.
 *
 * Jenkinsfile code can call every member here with any arguments, so:
 * - mintForCurrentBuild is the only member that ever reads the client secret.
 *   Nothing a caller passes chooses the credential, the URL, the facts or the
 *   Run: the credential and URL are the admin's (ControllerSettings), the facts
 *   those of the build running the calling code (BuildFacts). The secret lives
 *   in its local variables only; what it returns is this build's own request
 *   token, which the build is entitled to.
 * - Every other member sends only what the caller gives it, unauthenticated,
 *   to the admin's service URL: what any build agent can do with curl.
 */
final class TokenService {
  static final String MINT = 'urn:jenkins-oidc:grant-type:build-request-token'
  static final String EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
  static final String REQUEST_TOKEN_TYPE = 'urn:jenkins-oidc:token-type:build-request-token'
  static final int TIMEOUT_MS = 15000

  private TokenService() { }

  /**
   * Mints a build request token for the build running the calling code.
   * options: audience (String or List), ttl (seconds), serviceUrl and
   * credentialsId (only among the admin's allow-lists). Returns
   * [token:, expiresIn:, requestUrl:].
   */
  @NonCPS
  static Map<String, Object> mintForCurrentBuild(Map options) {
    Map<String, String> settings = ControllerSettings.forStep(options)
    Map<String, String> facts = BuildFacts.ofCurrentBuild()
    if (facts.replayed == 'true' && settings.allowReplay != 'true') {
      throw new JenkinsOidcException("jenkins-oidc: this build was started by Replay, which runs pipeline code that is not in SCM; it gets no token. " +
                                     "Re-run it from SCM, or an administrator sets the global property JENKINS_OIDC_ALLOW_REPLAY=true (tokens then carry replayed=true)")
    }
    List<List<String>> form = [['grant_type', MINT]]
    for (Map.Entry<String, String> fact : facts.entrySet()) form << [fact.key, fact.value]
    for (String audience : (StepOptions.texts(options, 'audience') ?: [])) form << ['audience', audience]
    Integer ttl = StepOptions.number(options, 'ttl')
    if (ttl != null) form << ['ttl', ttl.toString()]

    String id = settings.credentialsId
    StandardUsernamePasswordCredentials found = null
    for (StandardUsernamePasswordCredentials c : CredentialsProvider.lookupCredentialsInItemGroup(StandardUsernamePasswordCredentials, Jenkins.get(), ACL.SYSTEM2, [])) {
      if (c.id == id) { found = c; break }
    }
    if (found == null) {
      throw new JenkinsOidcException("no credential with id '${id}': create a 'Username with password' credential with scope System (username = client_id, password = client_secret from `jenkins-oidc clients add`) under Manage Jenkins > Credentials > System > Global credentials")
    }
    // SYSTEM scope keeps it from withCredentials in jobs; a GLOBAL one would hand the secret to every Jenkinsfile.
    if (found.scope != CredentialsScope.SYSTEM) {
      throw new JenkinsOidcException("credential '${id}' has scope ${found.scope}; it must be System, or Jenkinsfile code could read the client secret with withCredentials")
    }
    String clientId = found.username
    String secret = found.password?.plainText
    if (!clientId || !secret) throw new JenkinsOidcException("credential '${id}' needs the client_id as username and the client_secret as password")
    // RFC 6749 2.3.1: both parts form-urlencoded before base64.
    String authorization = 'Basic ' + (URLEncoder.encode(clientId, 'UTF-8') + ':' + URLEncoder.encode(secret, 'UTF-8')).getBytes('UTF-8').encodeBase64().toString()

    // The same request code as publicCall, written out here on purpose: the
    // Authorization header holds the secret, and no other member may see it.
    String url = settings.serviceUrl + '/token'
    HttpURLConnection conn = null
    Map answer
    try {
      conn = (HttpURLConnection) new URL(url).openConnection()
      conn.instanceFollowRedirects = false
      conn.requestMethod = 'POST'
      conn.connectTimeout = TIMEOUT_MS
      conn.readTimeout = TIMEOUT_MS
      conn.doOutput = true
      conn.setRequestProperty('Content-Type', 'application/x-www-form-urlencoded')
      conn.setRequestProperty('Accept', 'application/json')
      conn.setRequestProperty('Authorization', authorization)
      authorization = null
      OutputStream out = conn.outputStream
      try { out.write(formBody(form).getBytes('UTF-8')) } finally { out.close() }
      // Not in streaming mode: on a 401 HttpURLConnection would then throw instead of letting us read the OAuth error body.
      int status = conn.responseCode
      InputStream stream = status < 400 ? conn.inputStream : conn.errorStream
      String text = stream == null ? '' : stream.getText('UTF-8')
      answer = answerOf(status, text, url, 'mint a build request token')
    } catch (IOException e) {
      throw new JenkinsOidcException("could not mint a build request token: the token service at ${url} did not answer (${e.class.simpleName})")
    } finally {
      conn?.disconnect()
    }
    String token = answer.access_token as String
    if (!(token ==~ /jort_[A-Za-z0-9_-]{43}/)) throw new JenkinsOidcException("the token service at ${url} answered the mint without a build request token")
    return [token: token, expiresIn: answer.expires_in as Integer, requestUrl: "${settings.serviceUrl}/id-token?api-version=1".toString()]
  }

  /** Exchanges a request token for an ID token (as the public client jenkins-build, like a build agent). */
  @NonCPS
  static String exchange(Map options, String requestToken, String audience) {
    List<List<String>> form = [['grant_type', EXCHANGE], ['client_id', 'jenkins-build'],
                               ['subject_token', requestToken ?: ''], ['subject_token_type', REQUEST_TOKEN_TYPE]]
    if (audience) form << ['audience', audience]
    String jwt = publicCall(options, '/token', form, 'get an ID token').access_token as String
    if (!jwt) throw new JenkinsOidcException('the token service answered the exchange without an ID token')
    return jwt
  }

  /**
   * Revokes a request token as the build holding it (client jenkins-build:
   * possession is the proof, no secret needed). Best effort: a token that
   * cannot be revoked still dies at its expiry.
   */
  @NonCPS
  static boolean revoke(Map options, String requestToken) {
    try {
      publicCall(options, '/token/revocation', [['client_id', 'jenkins-build'], ['token', requestToken ?: ''], ['token_type_hint', 'access_token']], 'revoke the build request token')
      return true
    } catch (JenkinsOidcException ignored) {
      return false
    }
  }

  /** Mints, exchanges and revokes at once: one ID token for the calling build (jenkinsOidcToken). */
  @NonCPS
  static String idTokenForCurrentBuild(Map options) {
    String audience = StepOptions.text(options, 'audience')
    Map mintOptions = [ttl: 300, serviceUrl: StepOptions.text(options, 'serviceUrl'), credentialsId: StepOptions.text(options, 'credentialsId')]
    if (audience) mintOptions.audience = audience
    String token = mintForCurrentBuild(mintOptions).token
    try {
      return exchange(options, token, audience)
    } finally {
      revoke(options, token)
    }
  }

  /** The SHA-256 the service publishes for its agent bundle, read by the controller. */
  @NonCPS
  static String agentSha256(Map options) {
    String url = ControllerSettings.forStep(options).serviceUrl + '/agent/jenkins-oidc-agent.mjs.sha256'
    String text
    try {
      text = new URL(url).getText(connectTimeout: TIMEOUT_MS, readTimeout: TIMEOUT_MS, 'UTF-8')
    } catch (IOException e) {
      throw new JenkinsOidcException("could not read the agent's SHA-256 from ${url} (${e.class.simpleName})")
    }
    String sha = text.trim().split(/\s+/)[0]
    if (!(sha ==~ /[0-9a-f]{64}/)) throw new JenkinsOidcException("the token service published no valid SHA-256 for its agent at ${url}")
    return sha
  }

  /** POSTs a form without client authentication to one of the service's endpoints. */
  @NonCPS
  private static Map publicCall(Map options, String path, List<List<String>> form, String what) {
    if (!(path in ['/token', '/token/revocation'])) throw new JenkinsOidcException("no such token service endpoint: ${path.take(40)}")
    String url = ControllerSettings.forStep(options).serviceUrl + path
    HttpURLConnection conn = null
    try {
      conn = (HttpURLConnection) new URL(url).openConnection()
      conn.instanceFollowRedirects = false
      conn.requestMethod = 'POST'
      conn.connectTimeout = TIMEOUT_MS
      conn.readTimeout = TIMEOUT_MS
      conn.doOutput = true
      conn.setRequestProperty('Content-Type', 'application/x-www-form-urlencoded')
      conn.setRequestProperty('Accept', 'application/json')
      OutputStream out = conn.outputStream
      try { out.write(formBody(form).getBytes('UTF-8')) } finally { out.close() }
      // Not in streaming mode: on a 401 HttpURLConnection would then throw instead of letting us read the OAuth error body.
      int status = conn.responseCode
      InputStream stream = status < 400 ? conn.inputStream : conn.errorStream
      String text = stream == null ? '' : stream.getText('UTF-8')
      return answerOf(status, text, url, what)
    } catch (IOException e) {
      throw new JenkinsOidcException("could not ${what}: the token service at ${url} did not answer (${e.class.simpleName})")
    } finally {
      conn?.disconnect()
    }
  }

  /** The JSON answer, or the service's OAuth error as a message for the build log. */
  @NonCPS
  private static Map answerOf(int status, String text, String url, String what) {
    Map body = [:]
    try { body = text ? new JsonSlurper().parseText(text) as Map : [:] } catch (Exception ignored) { body = [:] }
    if (status >= 200 && status < 300) return body
    String reason = body.error ? "${body.error}: ${body.error_description ?: ''}" : "HTTP ${status}"
    String advice = body.error == 'invalid_client' ? ' (check the client_id and client_secret in the credential against `jenkins-oidc clients show`)' : ''
    throw new JenkinsOidcException("could not ${what} at ${url}: ${reason.take(300)}${advice}")
  }

  @NonCPS
  private static String formBody(List<List<String>> form) {
    List<String> pairs = []
    for (List<String> pair : form) pairs << (URLEncoder.encode(pair[0], 'UTF-8') + '=' + URLEncoder.encode(pair[1], 'UTF-8'))
    return pairs.join('&')
  }
}
