package io.jenkinsoidc

import com.cloudbees.groovy.cps.NonCPS
import groovy.json.JsonSlurper

/**
 * HTTP calls the controller makes to the token service: mint a build request
 * token with the client credentials, exchange one for an ID token, revoke.
 * Plain HttpURLConnection: nothing to install on the controller.
 */
class TokenService implements Serializable {
  static final String MINT = 'urn:jenkins-oidc:grant-type:build-request-token'
  static final String EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
  static final String REQUEST_TOKEN_TYPE = 'urn:jenkins-oidc:token-type:build-request-token'
  static final int TIMEOUT_MS = 15000

  final String url

  TokenService(String url) { this.url = url }

  /** The URL builds are given; it already has a query so `&audience=` can be appended. */
  @NonCPS
  String idTokenRequestUrl() { "${url}/id-token?api-version=1" }

  @NonCPS
  Map mint(ClientCredentials client, Map<String, String> facts, List<String> audiences, Integer ttl) {
    List<List<String>> form = [['grant_type', MINT]]
    facts.each { k, v -> form << [k, v] }
    audiences?.each { form << ['audience', it] }
    if (ttl) form << ['ttl', ttl as String]
    return post('/token', form, basic(client), 'mint a build request token')
  }

  @NonCPS
  String exchange(String requestToken, String audience) {
    List<List<String>> form = [['grant_type', EXCHANGE], ['client_id', 'jenkins-build'],
                               ['subject_token', requestToken], ['subject_token_type', REQUEST_TOKEN_TYPE]]
    if (audience) form << ['audience', audience]
    return post('/token', form, null, 'get an ID token').access_token as String
  }

  /** Best effort: a token that cannot be revoked still dies at its expiry. */
  @NonCPS
  boolean revoke(ClientCredentials client, String requestToken) {
    try {
      post('/token/revocation', [['token', requestToken]], basic(client), 'revoke the build request token')
      return true
    } catch (JenkinsOidcException ignored) {
      return false
    }
  }

  @NonCPS
  private static String basic(ClientCredentials c) {
    // RFC 6749 2.3.1: both parts form-urlencoded before base64.
    String enc = URLEncoder.encode(c.clientId, 'UTF-8') + ':' + URLEncoder.encode(c.secret(), 'UTF-8')
    return 'Basic ' + enc.getBytes('UTF-8').encodeBase64().toString()
  }

  @NonCPS
  private Map post(String path, List<List<String>> form, String authorization, String what) {
    String body = form.collect { URLEncoder.encode(it[0], 'UTF-8') + '=' + URLEncoder.encode(it[1], 'UTF-8') }.join('&')
    HttpURLConnection conn
    try {
      conn = (HttpURLConnection) new URL(url + path).openConnection()
      conn.requestMethod = 'POST'
      conn.connectTimeout = TIMEOUT_MS
      conn.readTimeout = TIMEOUT_MS
      conn.doOutput = true
      conn.setRequestProperty('Content-Type', 'application/x-www-form-urlencoded')
      conn.setRequestProperty('Accept', 'application/json')
      if (authorization) conn.setRequestProperty('Authorization', authorization)
      // Not in streaming mode: on a 401 HttpURLConnection would then throw
      // instead of letting us read the OAuth error body.
      conn.outputStream.withStream { it.write(body.getBytes('UTF-8')) }
      int status = conn.responseCode
      InputStream stream = status < 400 ? conn.inputStream : conn.errorStream
      String text = stream == null ? '' : stream.getText('UTF-8')
      if (status >= 400) {
        Map err = [:]
        try { err = new JsonSlurper().parseText(text) as Map } catch (Exception ignored) { }
        String reason = err.error ? "${err.error}: ${err.error_description ?: ''}" : "HTTP ${status}"
        String advice = err.error == 'invalid_client' ? ' (check the client_id and client_secret in the credential against `jenkins-oidc clients show`)' : ''
        throw new JenkinsOidcException("could not ${what} at ${url}: ${reason}${advice}")
      }
      return text ? new JsonSlurper().parseText(text) as Map : [:]
    } catch (IOException e) {
      throw new JenkinsOidcException("could not ${what}: the token service at ${url} did not answer (${e.class.simpleName}: ${e.message})")
    } finally {
      conn?.disconnect()
    }
  }
}
