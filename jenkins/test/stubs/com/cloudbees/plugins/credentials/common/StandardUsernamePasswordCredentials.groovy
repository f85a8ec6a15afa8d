package com.cloudbees.plugins.credentials.common
import com.cloudbees.plugins.credentials.CredentialsScope
import hudson.util.Secret
interface StandardUsernamePasswordCredentials {
  String getId()
  CredentialsScope getScope()
  String getUsername()
  Secret getPassword()
}
