package io.jenkinsoidc

import com.cloudbees.groovy.cps.NonCPS
import jenkins.model.Jenkins

/**
 * jenkinsOidcToken's block form masks the ID token in the build log through
 * the Mask Passwords plugin's build wrapper. Without the plugin it says once
 * in the log that the value is not masked, rather than failing the build.
 * A disabled plugin counts as absent: PluginManager.getPlugin() returns
 * disabled plugins too, and the wrap step would then fail.
 */
final class Masking {
  private Masking() { }

  @NonCPS
  static boolean available() {
    return Jenkins.get().pluginManager?.getPlugin('mask-passwords')?.isActive() == true
  }
}
