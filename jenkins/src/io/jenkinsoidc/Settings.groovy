package io.jenkinsoidc

import com.cloudbees.groovy.cps.NonCPS
import hudson.slaves.EnvironmentVariablesNodeProperty
import jenkins.model.Jenkins

/**
 * Where the token service is and which credential holds this controller's
 * client secret. Read from the controller's configuration — the global
 * properties an admin sets under Manage Jenkins > System, read through the
 * Jenkins API, never from the build's environment, which a Jenkinsfile can
 * change — then from the library's defaults.
 *
 * A step may name another service URL or credential only if the admin listed
 * it in JENKINS_OIDC_ALLOWED_URLS / JENKINS_OIDC_ALLOWED_CREDENTIALS_IDS: the
 * client secret is sent to that URL, so pipeline code must not be able to
 * choose an arbitrary URL, nor an arbitrary System credential to send.
 */
class Settings implements Serializable {
  static final String DEFAULT_CREDENTIALS_ID = 'jenkins-oidc-client'

  final String serviceUrl
  final String credentialsId

  Settings(String serviceUrl, String credentialsId) {
    this.serviceUrl = serviceUrl.replaceAll('/+$', '')
    this.credentialsId = credentialsId
  }

  @NonCPS
  static Map<String, String> controllerProperties() {
    Map<String, String> out = [:]
    Jenkins.get().globalNodeProperties.each { prop ->
      if (prop instanceof EnvironmentVariablesNodeProperty) out.putAll(prop.envVars)
    }
    return out
  }

  /** defaults: the parsed resources/io/jenkinsoidc/defaults.properties of the library. */
  @NonCPS
  static Settings resolve(Map args, Map<String, String> defaults) {
    Map<String, String> props = controllerProperties()
    String configured = props.JENKINS_OIDC_URL ?: defaults.serviceUrl
    if (!configured) {
      throw new JenkinsOidcException('no token service URL configured: set the global property JENKINS_OIDC_URL (Manage Jenkins > System > Global properties) or serviceUrl in the library\'s resources/io/jenkinsoidc/defaults.properties')
    }
    String url = override('serviceUrl', args.serviceUrl as String, configured, props.JENKINS_OIDC_ALLOWED_URLS ?: defaults.allowedUrls,
                          "the controller's client secret would be sent there. An admin can list it in JENKINS_OIDC_ALLOWED_URLS")
    String configuredId = props.JENKINS_OIDC_CREDENTIALS_ID ?: defaults.credentialsId ?: DEFAULT_CREDENTIALS_ID
    String credentialsId = override('credentialsId', args.credentialsId as String, configuredId,
                                    props.JENKINS_OIDC_ALLOWED_CREDENTIALS_IDS ?: defaults.allowedCredentialsIds,
                                    'an admin can list it in JENKINS_OIDC_ALLOWED_CREDENTIALS_IDS')
    return new Settings(url, credentialsId)
  }

  /** A step's value if it is the configured one or in the admin's comma-separated allow-list. */
  @NonCPS
  private static String override(String name, String requested, String configured, String allowList, String advice) {
    if (!requested || requested == configured) return configured
    List<String> allowed = (allowList ?: '').split(',')*.trim().findAll { it }
    if (!allowed.contains(requested)) throw new JenkinsOidcException("${name} ${requested} is not allowed: ${advice}")
    return requested
  }

  @NonCPS
  static Map<String, String> parseProperties(String text) {
    Properties p = new Properties()
    p.load(new StringReader(text ?: ''))
    Map<String, String> out = [:]
    p.stringPropertyNames().each { out[it] = p.getProperty(it).trim() }
    return out
  }
}
