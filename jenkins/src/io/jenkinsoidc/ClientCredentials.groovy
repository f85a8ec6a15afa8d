package io.jenkinsoidc

import com.cloudbees.groovy.cps.NonCPS
import com.cloudbees.plugins.credentials.CredentialsProvider
import com.cloudbees.plugins.credentials.CredentialsScope
import com.cloudbees.plugins.credentials.common.StandardUsernamePasswordCredentials
import hudson.security.ACL
import jenkins.model.Jenkins

/**
 * The controller's client id and secret: a "Username with password"
 * credential (username = client_id, password = client_secret) at the root of
 * Jenkins with scope SYSTEM. SYSTEM scope is what keeps it out of
 * Jenkinsfile code: withCredentials cannot bind it in a job. This trusted
 * library reads it as SYSTEM and refuses a GLOBAL one, which jobs could read.
 */
class ClientCredentials implements Serializable {
  final String clientId
  private final String secret

  private ClientCredentials(String clientId, String secret) {
    this.clientId = clientId
    this.secret = secret
  }

  @NonCPS
  String secret() { secret }

  @NonCPS
  String toString() { "ClientCredentials(${clientId}, secret hidden)" }

  @NonCPS
  static ClientCredentials lookup(String id) {
    List<StandardUsernamePasswordCredentials> all = CredentialsProvider.lookupCredentialsInItemGroup(
      StandardUsernamePasswordCredentials, Jenkins.get(), ACL.SYSTEM2, [])
    def found = all.find { it.id == id }
    if (found == null) {
      throw new JenkinsOidcException("no credential with id '${id}': create a 'Username with password' credential with scope System (username = client_id, password = client_secret from `jenkins-oidc clients add`) under Manage Jenkins > Credentials > System > Global credentials")
    }
    if (found.scope != CredentialsScope.SYSTEM) {
      throw new JenkinsOidcException("credential '${id}' has scope ${found.scope}; it must be System, or Jenkinsfile code could read the client secret with withCredentials")
    }
    String secret = found.password?.plainText
    if (!found.username || !secret) throw new JenkinsOidcException("credential '${id}' needs the client_id as username and the client_secret as password")
    return new ClientCredentials(found.username, secret)
  }
}
