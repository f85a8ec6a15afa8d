package com.cloudbees.plugins.credentials.impl
import com.cloudbees.plugins.credentials.CredentialsScope
import com.cloudbees.plugins.credentials.common.StandardUsernamePasswordCredentials
import hudson.util.Secret
class UsernamePasswordCredentialsImpl implements StandardUsernamePasswordCredentials {
  final CredentialsScope scope; final String id; final String description; final String username; final Secret password
  UsernamePasswordCredentialsImpl(CredentialsScope scope, String id, String description, String username, String password) {
    this.scope = scope; this.id = id; this.description = description; this.username = username; this.password = Secret.fromString(password)
  }
}
