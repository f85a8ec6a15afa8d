package io.jenkinsoidc

import com.cloudbees.groovy.cps.NonCPS
import hudson.slaves.EnvironmentVariablesNodeProperty
import jenkins.model.Jenkins

/**
 * Where the token service is, which credential holds this controller's client
 * secret, how long request tokens live and whether replayed builds may mint:
 * the controller's global properties (Manage Jenkins > System > Global
 * properties, or Configuration as Code), read through the Jenkins API. Only
 * administrators change them; the build's environment, which a Jenkinsfile
 * can change, is never read.
 *
 * The service URL and the credential are one pair: the controller sends that
 * credential's secret to that URL, so whoever chooses either chooses where a
 * secret goes. The default pair is JENKINS_OIDC_URL with
 * JENKINS_OIDC_CREDENTIALS_ID; a step may name another pair only if an admin
 * listed exactly that pair in JENKINS_OIDC_ALLOWED_SERVICES. URLs are https;
 * plain http only with JENKINS_OIDC_ALLOW_HTTP=true (a lab: the secret would
 * cross the network in clear).
 *
 * Everything here is callable by Jenkinsfile code: it returns the admin's
 * non-secret settings, already checked, and nothing else.
 */
final class ControllerSettings {
  static final String DEFAULT_CREDENTIALS_ID = 'jenkins-oidc-client'
  static final String DOCS = 'docs/jenkins.md#3-tell-the-controller-where-the-service-is'

  private ControllerSettings() { }

  /**
   * The settings for one step call, from a snapshot of its options
   * (StepOptions.snapshot): serviceUrl and credentialsId choose an allowed pair.
   */
  @NonCPS
  static Map<String, String> forStep(Map options) {
    Map<String, Object> opts = StepOptions.snapshot('jenkins-oidc', options, ['serviceUrl', 'credentialsId', 'audience'], ['audience'])
    Map<String, String> props = [:]
    for (Object property : Jenkins.get().globalNodeProperties) {
      if (property instanceof EnvironmentVariablesNodeProperty) {
        // Case-insensitive, as Jenkins' EnvVars: jenkins_oidc_url is JENKINS_OIDC_URL to every build.
        for (Map.Entry e : ((EnvironmentVariablesNodeProperty) property).envVars.entrySet()) {
          String key = (e.key as String)?.toUpperCase(Locale.ROOT)
          if (key?.startsWith('JENKINS_OIDC_')) props[key] = (e.value as String)?.trim()
        }
      }
    }
    for (String retired : ['JENKINS_OIDC_ALLOWED_URLS', 'JENKINS_OIDC_ALLOWED_CREDENTIALS_IDS']) {
      if (props.containsKey(retired)) {
        throw new JenkinsOidcException("the global property ${retired} is no longer read: with separate lists, any allowed URL received any allowed credential's secret. " +
                                       "An administrator lists (URL, credential) pairs in JENKINS_OIDC_ALLOWED_SERVICES instead, one 'URL CREDENTIALS_ID' per line, and removes ${retired} (${DOCS})")
      }
    }
    boolean allowHttp = props.JENKINS_OIDC_ALLOW_HTTP == 'true'
    if (!props.JENKINS_OIDC_URL) {
      throw new JenkinsOidcException("no token service URL configured: an administrator sets the global property JENKINS_OIDC_URL (Manage Jenkins > System > Global properties, or Configuration as Code; ${DOCS})")
    }
    List<List<String>> pairs = [[checkedUrl('JENKINS_OIDC_URL', props.JENKINS_OIDC_URL, allowHttp), props.JENKINS_OIDC_CREDENTIALS_ID ?: DEFAULT_CREDENTIALS_ID]]
    for (String entry : (props.JENKINS_OIDC_ALLOWED_SERVICES ?: '').split(/[,\n]/)) {
      if (!entry.trim()) continue
      String[] parts = entry.trim().split(/\s+/)
      if (parts.length != 2) {
        throw new JenkinsOidcException("JENKINS_OIDC_ALLOWED_SERVICES: '${entry.trim().take(200)}' is not 'URL CREDENTIALS_ID' (one pair per line or comma)")
      }
      pairs << [checkedUrl('JENKINS_OIDC_ALLOWED_SERVICES', parts[0], allowHttp), parts[1]]
    }
    List<String> pair = chosen(pairs, opts.serviceUrl as String, opts.credentialsId as String)
    return [serviceUrl: pair[0], credentialsId: pair[1],
            allowReplay: String.valueOf(props.JENKINS_OIDC_ALLOW_REPLAY == 'true'),
            requestTokenTtl: ttl(props.JENKINS_OIDC_REQUEST_TOKEN_TTL)]
  }

  /** An https URL without query, fragment or user part, without trailing slashes; http only in a lab. */
  @NonCPS
  private static String checkedUrl(String setting, String url, boolean allowHttp) {
    if (!(url ==~ /https?:\/\/[^\s\/?#@]+(\/[^\s?#@]*)?/)) {
      throw new JenkinsOidcException("the token service URL '${url.take(200)}' is not an https URL without query, fragment or user part; fix ${setting}")
    }
    if (url.startsWith('http:') && !allowHttp) {
      throw new JenkinsOidcException("the token service URL '${url.take(200)}' is plain http: the controller's client secret would cross the network in clear. Use https in ${setting} (JENKINS_OIDC_ALLOW_HTTP=true exists for test labs only)")
    }
    return url.replaceAll('/+$', '')
  }

  /** The one allowed pair a step's serviceUrl/credentialsId name (either may be absent); the default pair when both are. */
  @NonCPS
  private static List<String> chosen(List<List<String>> pairs, String url, String credentialsId) {
    String wantedUrl = url?.replaceAll('/+$', '')
    List<List<String>> matches = []
    for (List<String> pair : pairs) {
      if ((wantedUrl == null || pair[0] == wantedUrl) && (credentialsId == null || pair[1] == credentialsId)) matches << pair
    }
    if (matches.size() == 1) return matches[0]
    if (matches.contains(pairs[0])) return pairs[0]
    if (matches.isEmpty()) {
      String named = wantedUrl && credentialsId ? "serviceUrl ${wantedUrl.take(200)} with credentialsId ${credentialsId.take(200)}"
                   : wantedUrl ? "serviceUrl ${wantedUrl.take(200)}" : "credentialsId ${credentialsId.take(200)}"
      throw new JenkinsOidcException("${named} is not allowed: a credential's secret goes only to the service an administrator paired it with. " +
                                     "An administrator can list the pair in JENKINS_OIDC_ALLOWED_SERVICES as 'URL CREDENTIALS_ID'")
    }
    throw new JenkinsOidcException('several allowed services match: name both serviceUrl and credentialsId')
  }

  /** JENKINS_OIDC_REQUEST_TOKEN_TTL in the service's grammar (seconds, or 30s, 5m, 1h, 1d); null: the service's default. */
  @NonCPS
  private static String ttl(String value) {
    if (!value) return null
    java.util.regex.Matcher m = value =~ /^([1-9][0-9]{0,6})([smhd]?)$/
    if (!m.matches()) throw new JenkinsOidcException("JENKINS_OIDC_REQUEST_TOKEN_TTL must be a duration such as 3600, 90m, 6h or 1d, got '${value.take(40)}'")
    long seconds = (m.group(1) as long) * [s: 1, m: 60, h: 3600, d: 86400, '': 1][m.group(2)]
    return String.valueOf(seconds)
  }
}
