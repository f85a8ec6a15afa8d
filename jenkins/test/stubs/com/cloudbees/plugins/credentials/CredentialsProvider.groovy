package com.cloudbees.plugins.credentials
import hudson.security.ACL
class CredentialsProvider {
  /** What the controller's credential store holds, at the root of Jenkins. */
  static List stored = []
  /** Like the real one: as SYSTEM every scope is visible; as a job only GLOBAL (and USER) ones. */
  static <C> List<C> lookupCredentialsInItemGroup(Class<C> type, Object itemGroup, Object authentication, List requirements) {
    stored.findAll { type.isInstance(it) && (authentication == ACL.SYSTEM2 || it.scope != CredentialsScope.SYSTEM) }
  }
}
