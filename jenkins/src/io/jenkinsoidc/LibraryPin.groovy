package io.jenkinsoidc

import com.cloudbees.groovy.cps.NonCPS
import hudson.model.Run
import org.jenkinsci.plugins.workflow.cps.CpsThread
import org.jenkinsci.plugins.workflow.libs.GlobalLibraries
import org.jenkinsci.plugins.workflow.libs.LibrariesAction
import org.jenkinsci.plugins.workflow.libs.LibraryConfiguration
import org.jenkinsci.plugins.workflow.libs.LibraryRecord

/**
 * The library mints only when Jenkins loaded it the one way an administrator
 * chose: as a Global Trusted Pipeline Library, at its configured default
 * version, with version override off.
 *
 * Why: a trusted library runs with full rights. With "Allow default version
 * to be overridden" (on by default in Jenkins), `@Library('jenkins-oidc@ref')`
 * loads any branch or commit of its repository as trusted code, old versions
 * included (one in this repository's history hands out the client secret),
 * and so does anyone who can push a branch. That code would not run this
 * check, so the check cannot stop it; what it does is refuse to work on a
 * controller configured that way, so that no controller runs in that
 * configuration and believes it is safe. The same holds for "Allow
 * BRANCH_NAME as version" (a build's branch name picks the library's branch).
 *
 * Which library is this one: the record of this build's loaded libraries
 * (pipeline-groovy-lib's LibrariesAction) that provides this library's
 * steps. Callable by pipeline code like every member; it reads
 * configuration only and returns nothing.
 */
final class LibraryPin {
  static final String DOCS = 'docs/jenkins.md#security-model'
  private LibraryPin() { }

  @NonCPS
  static void checkCurrentBuild() {
    // The Run is read inline (as in BuildFacts): a member returning it would hand it to pipeline code.
    Object executable = CpsThread.current()?.execution?.owner?.executable
    if (!(executable instanceof Run)) {
      throw new JenkinsOidcException('jenkins-oidc: no running Pipeline build on this thread; the steps work only inside a Pipeline')
    }
    LibrariesAction loaded = (LibrariesAction) ((Run) executable).getAction(LibrariesAction)
    List<LibraryRecord> ours = []
    for (LibraryRecord record : (loaded?.libraries ?: [])) {
      if (record.variables.contains('withJenkinsOidc')) ours << record
    }
    if (ours.size() != 1) {
      throw new JenkinsOidcException("jenkins-oidc: this build loaded ${ours.size()} libraries providing withJenkinsOidc; it mints only when exactly one, the Global Trusted Pipeline Library, is loaded (${DOCS})")
    }
    LibraryRecord record = ours[0]
    LibraryConfiguration config = null
    for (LibraryConfiguration c : GlobalLibraries.get().libraries) {
      if (c.name == record.name) { config = c; break }
    }
    if (!record.trusted || config == null) {
      throw new JenkinsOidcException("jenkins-oidc: the library '${record.name.take(100)}' is not a Global Trusted Pipeline Library; it mints only as one (Manage Jenkins > System > Global Trusted Pipeline Libraries; ${DOCS})")
    }
    if (config.allowVersionOverride) {
      throw new JenkinsOidcException("jenkins-oidc: the Global Trusted Pipeline Library '${record.name.take(100)}' allows its default version to be overridden, so any Jenkinsfile " +
                                     "could load any branch or old commit of it as trusted code and read this controller's credentials; it mints no token. An administrator unticks " +
                                     "'Allow default version to be overridden' (Configuration as Code: allowVersionOverride: false) and pins the default version to a release tag (${DOCS})")
    }
    // pipeline-groovy-lib 2.x+ only: "Allow BRANCH_NAME as version" picks the library's branch by the build's.
    if (config.metaClass.respondsTo(config, 'isAllowBRANCH_NAME') && config.isAllowBRANCH_NAME()) {
      throw new JenkinsOidcException("jenkins-oidc: the Global Trusted Pipeline Library '${record.name.take(100)}' allows BRANCH_NAME as its version, so a branch of a job picks a branch of the library; " +
                                     "it mints no token. An administrator unticks it (Configuration as Code: allowBRANCH_NAME: false) (${DOCS})")
    }
    if (!config.defaultVersion || record.version != config.defaultVersion) {
      throw new JenkinsOidcException("jenkins-oidc: this build loaded '${record.name.take(100)}' at version '${String.valueOf(record.version).take(100)}', not its configured default " +
                                     "'${String.valueOf(config.defaultVersion).take(100)}' (the configuration changed after the build started?); it mints no token (${DOCS})")
    }
  }
}
