package io.jenkinsoidc

import com.cloudbees.groovy.cps.NonCPS
import jenkins.model.Jenkins

/**
 * Values are masked in the build log through the Mask Passwords plugin's
 * build wrapper. Without the plugin the steps still work; they say once in
 * the log that values are not masked, rather than failing the build.
 */
class Masking implements Serializable {
  @NonCPS
  static boolean available() {
    return Jenkins.get().pluginManager?.getPlugin('mask-passwords') != null
  }
}
