package io.jenkinsoidc

import com.cloudbees.groovy.cps.NonCPS
import hudson.slaves.EnvironmentVariablesNodeProperty
import jenkins.model.Jenkins

/**
 * Where the token service is, which credential holds this controller's client
 * secret, and whether replayed builds may mint: the controller's global
 * properties (Manage Jenkins > System > Global properties, or Configuration as
 * Code), read through the Jenkins API. Only administrators change them; the
 * build's environment, which a Jenkinsfile can change, is never read.
 *
 * A step may name another service URL or credential only if the admin listed
 * it in JENKINS_OIDC_ALLOWED_URLS / JENKINS_OIDC_ALLOWED_CREDENTIALS_IDS: the
 * controller sends its client secret to that URL, so pipeline code must not
 * choose an arbitrary URL, nor an arbitrary System credential to send.
 *
 * Everything here is callable by Jenkinsfile code: it returns the admin's
 * non-secret settings, already checked, and nothing else.
 */
final class ControllerSettings {
  private ControllerSettings() { }

  /** The settings for one step call; `options` are the step's (serviceUrl, credentialsId overrides). */
  @NonCPS
  static Map<String, String> forStep(Map options) {
    Map<String, String> props = [:]
    for (Object property : Jenkins.get().globalNodeProperties) {
      if (property instanceof EnvironmentVariablesNodeProperty) {
        for (Map.Entry e : ((EnvironmentVariablesNodeProperty) property).envVars.entrySet()) {
          String key = e.key as String
          if (key.startsWith('JENKINS_OIDC_')) props[key] = (e.value as String)?.trim()
        }
      }
    }
    String configuredUrl = props.JENKINS_OIDC_URL
    if (!configuredUrl) {
      throw new JenkinsOidcException('no token service URL configured: an administrator sets the global property JENKINS_OIDC_URL (Manage Jenkins > System > Global properties, or Configuration as Code)')
    }
    String url = chosen('serviceUrl', StepOptions.text(options, 'serviceUrl'), configuredUrl, props.JENKINS_OIDC_ALLOWED_URLS,
                        "the controller's client secret would be sent there. An administrator can list it in JENKINS_OIDC_ALLOWED_URLS")
    if (!(url ==~ /https?:\/\/[^\s\/?#@]+(\/[^\s?#@]*)?/)) {
      throw new JenkinsOidcException("the token service URL '${url.take(200)}' is not an http(s) URL without query, fragment or user part; fix JENKINS_OIDC_URL")
    }
    String credentialsId = chosen('credentialsId', StepOptions.text(options, 'credentialsId'), props.JENKINS_OIDC_CREDENTIALS_ID ?: 'jenkins-oidc-client',
                                  props.JENKINS_OIDC_ALLOWED_CREDENTIALS_IDS, 'an administrator can list it in JENKINS_OIDC_ALLOWED_CREDENTIALS_IDS')
    return [serviceUrl: url.replaceAll('/+$', ''), credentialsId: credentialsId,
            allowReplay: String.valueOf(props.JENKINS_OIDC_ALLOW_REPLAY == 'true')]
  }

  /** The requested value if it is the configured one or in the admin's comma-separated allow-list. */
  @NonCPS
  private static String chosen(String name, String requested, String configured, String allowList, String advice) {
    if (!requested || requested == configured) return configured
    for (String allowed : (allowList ?: '').split(',')) {
      if (allowed.trim() && allowed.trim() == requested) return requested
    }
    throw new JenkinsOidcException("${name} ${requested.take(200)} is not allowed: ${advice}")
  }
}
