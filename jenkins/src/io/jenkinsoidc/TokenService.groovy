package io.jenkinsoidc

import com.cloudbees.groovy.cps.NonCPS
import com.cloudbees.plugins.credentials.CredentialsProvider
import com.cloudbees.plugins.credentials.CredentialsScope
import com.cloudbees.plugins.credentials.common.StandardUsernamePasswordCredentials
import groovy.json.JsonSlurper
import hudson.ProxyConfiguration
import hudson.security.ACL
import jenkins.model.Jenkins

/**
 * The controller's calls to the token service. Plain HttpURLConnection:
 * nothing to install on the controller.
 *
 * Jenkinsfile code can call every member here with any arguments, so:
 * - asController is the only member that reads the client secret, and the
 *   only one that sends anything: it builds every request itself, from the
 *   admin's settings (ControllerSettings: URL and credential as one pair),
 *   the facts of the build running the calling code (BuildFacts) and checked
 *   values (an audience, a request token id). No member sends a string its
 *   caller chose, so pipeline code cannot make the controller send junk, nor
 *   use it as an HTTP client.
 * - It mints only when the library was loaded as the administrator pinned it
 *   (LibraryPin), and refuses builds that may run code not in SCM (a Replay,
 *   or a restart of one) unless the administrator allows them.
 * - The secret lives in its local variables only; what it returns is the
 *   calling build's own request token (living the administrator's lifetime),
 *   its own ID token, or nothing.
 * - Connections go through Jenkins' proxy settings (ProxyConfiguration.open,
 *   with its no-proxy hosts). They run on the CPS VM thread, which every
 *   branch of the build shares, so they are bounded tightly: 5 s to connect,
 *   10 s to read; the service answers in milliseconds.
 */
final class TokenService {
  static final String MINT = 'urn:jenkins-oidc:grant-type:build-request-token'
  static final String ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token'
  static final int CONNECT_TIMEOUT_MS = 5000
  static final int READ_TIMEOUT_MS = 10000
  static final List<String> OPTIONS = ['audience', 'serviceUrl', 'credentialsId'].asImmutable()

  private TokenService() { }

  /**
   * Mints a build request token for the build running the calling code.
   * options: audience (String or List), serviceUrl and credentialsId (an
   * allowed pair). Returns [token:, id:, expiresIn:, requestUrl:, warnings:].
   */
  @NonCPS
  static Map<String, Object> mintForCurrentBuild(Map options) {
    Map answer = asController('mint', options, null)
    String token = answer.access_token as String
    String id = answer.request_token_id as String
    if (!(token ==~ /jort_[A-Za-z0-9_-]{43}/) || !(id ==~ UUID)) throw new JenkinsOidcException('the token service answered the mint without a build request token')
    return [token: token, id: id, expiresIn: answer.expires_in as Integer, requestUrl: "${answer.serviceUrl}/id-token?api-version=1".toString(), warnings: warningsOf(answer)]
  }

  /** One ID token for the calling build and one audience, in one call: no request token ever leaves the service. Returns [idToken:, warnings:]. */
  @NonCPS
  static Map<String, Object> idTokenForCurrentBuild(Map options) {
    Map answer = asController('id-token', options, null)
    String jwt = answer.access_token as String
    if (!(jwt ==~ /[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/)) throw new JenkinsOidcException('the token service answered without an ID token')
    return [idToken: jwt, warnings: warningsOf(answer)]
  }

  /**
   * Revokes one request token of the calling build by its id, as the
   * controller: nothing is read back from the agent, so a build that
   * overwrote or deleted its token file cannot keep its token alive. The
   * service revokes only a token this controller minted for this very build.
   * Best effort: false if the service could not be reached (the token then
   * dies at its expiry).
   */
  @NonCPS
  static boolean revokeForCurrentBuild(Map options, String requestTokenId) {
    if (!(requestTokenId ==~ UUID)) return false
    try {
      asController('revoke', options, requestTokenId)
      return true
    } catch (JenkinsOidcException ignored) {
      return false
    }
  }

  /** The SHA-256 the service publishes for its agent bundle, read by the controller from the admin's URL. */
  @NonCPS
  static String agentSha256(Map options) {
    String url = ControllerSettings.forStep(StepOptions.snapshot('agentSha256', options, OPTIONS, ['audience'])).serviceUrl + '/agent/jenkins-oidc-agent.mjs.sha256'
    String text
    HttpURLConnection conn = null
    try {
      conn = (HttpURLConnection) ProxyConfiguration.open(new URL(url))
      conn.instanceFollowRedirects = false
      conn.connectTimeout = CONNECT_TIMEOUT_MS
      conn.readTimeout = READ_TIMEOUT_MS
      text = conn.responseCode == 200 ? conn.inputStream.getText('UTF-8') : ''
    } catch (IOException e) {
      throw new JenkinsOidcException("could not read the agent's SHA-256 from ${url} (${e.class.simpleName})")
    } finally {
      conn?.disconnect()
    }
    String sha = text.trim().split(/\s+/)[0]
    if (!(sha ==~ /[0-9a-f]{64}/)) throw new JenkinsOidcException("the token service published no valid SHA-256 for its agent at ${url}")
    return sha
  }

  static final String UUID = /[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/
  /** What the service accepts as an audience: printable ASCII without spaces or commas. */
  static final String AUDIENCE = /[!-+\--~]{1,255}/

  /**
   * The one member that authenticates as the controller. `operation` is
   * 'mint', 'id-token' or 'revoke'; every form field comes from the admin's
   * settings, the calling build's Run, or a value checked here.
   */
  @NonCPS
  private static Map asController(String operation, Map options, String requestTokenId) {
    if (!(operation in ['mint', 'id-token', 'revoke'])) throw new JenkinsOidcException("no such operation: ${String.valueOf(operation).take(40)}")
    Map<String, Object> opts = StepOptions.snapshot(operation, options, OPTIONS, ['audience'])
    Map<String, String> settings = ControllerSettings.forStep(opts)
    // Revoking is always safe; minting needs the library loaded as pinned.
    if (operation != 'revoke') LibraryPin.checkCurrentBuild()
    Map<String, String> facts = BuildFacts.ofCurrentBuild()
    List<List<String>> form
    String path = '/token'
    if (operation == 'revoke') {
      if (!(requestTokenId ==~ UUID)) throw new JenkinsOidcException('not a request token id')
      path = '/token/revocation'
      form = [['token', requestTokenId], ['job', facts.job], ['build_number', facts.build_number]]
    } else {
      if (facts.replayed == 'true' && settings.allowReplay != 'true') {
        String what = facts.restarted_from ? "a restart of build #${facts.restarted_from}, which ran pipeline code that may not be in SCM (a Replay, or a restart of one)"
                                           : 'started by Replay (the Rebuild buttons of Jenkins, Blue Ocean and Pipeline Graph View replay too), which runs pipeline code that is not in SCM'
        throw new JenkinsOidcException("jenkins-oidc: this build is ${what}; it gets no token. Build it anew from SCM (Build Now, or a push), " +
                                       'or an administrator sets the global property JENKINS_OIDC_ALLOW_REPLAY=true (tokens then carry replayed=true)')
      }
      form = [['grant_type', MINT]]
      for (Map.Entry<String, String> fact : facts.entrySet()) form << [fact.key, fact.value]
      List<String> audiences = StepOptions.texts(opts, 'audience') ?: []
      for (String audience : audiences) {
        if (!(audience ==~ AUDIENCE)) throw new JenkinsOidcException("audience '${audience.take(60)}' is not an audience: 1-255 printable ASCII characters without spaces or commas")
        form << ['audience', audience]
      }
      if (operation == 'id-token') {
        if (audiences.size() > 1) throw new JenkinsOidcException('an ID token is for one audience')
        form << ['requested_token_type', ID_TOKEN_TYPE]
      } else if (settings.requestTokenTtl) {
        form << ['ttl', settings.requestTokenTtl]
      }
    }

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
    secret = null

    String what = [mint: 'mint a build request token', 'id-token': 'get an ID token', revoke: 'revoke the build request token'][operation]
    String url = settings.serviceUrl + path
    HttpURLConnection conn = null
    Map answer
    try {
      conn = (HttpURLConnection) ProxyConfiguration.open(new URL(url))
      conn.instanceFollowRedirects = false
      conn.requestMethod = 'POST'
      conn.connectTimeout = CONNECT_TIMEOUT_MS
      conn.readTimeout = READ_TIMEOUT_MS
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
      answer = answerOf(status, text, url, what)
    } catch (JenkinsOidcException e) {
      throw e
    } catch (IOException e) {
      throw new JenkinsOidcException("could not ${what}: the token service at ${url} did not answer (${e.class.simpleName})")
    } finally {
      conn?.disconnect()
    }
    answer.serviceUrl = settings.serviceUrl
    return answer
  }

  /** The JSON answer (an empty body is an empty map), or the service's OAuth error as a message for the build log. */
  @NonCPS
  private static Map answerOf(int status, String text, String url, String what) {
    Map body = [:]
    try { body = text ? new JsonSlurper().parseText(text) as Map : [:] } catch (Exception ignored) { body = [:] }
    if (status >= 200 && status < 300) return body
    String reason = body.error ? "${body.error}: ${body.error_description ?: ''}" : "HTTP ${status}"
    String advice = body.error == 'invalid_client' ? ' (check the client_id and client_secret in the credential against `jenkins-oidc clients show`)' : ''
    throw new JenkinsOidcException("could not ${what} at ${url}: ${reason.take(300)}${advice}")
  }

  /** The mint's warnings (a session tag left out...), as plain strings for the build log. */
  @NonCPS
  private static List<String> warningsOf(Map answer) {
    List<String> out = []
    if (answer.warnings instanceof List) {
      for (Object w : (List) answer.warnings) out << String.valueOf(w).replaceAll(/\p{Cntrl}/, ' ').take(300)
    }
    return out
  }

  @NonCPS
  private static String formBody(List<List<String>> form) {
    List<String> pairs = []
    for (List<String> pair : form) pairs << (URLEncoder.encode(pair[0], 'UTF-8') + '=' + URLEncoder.encode(pair[1], 'UTF-8'))
    return pairs.join('&')
  }
}
