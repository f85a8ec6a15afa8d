package io.jenkinsoidc

import com.cloudbees.groovy.cps.NonCPS
import hudson.model.Cause
import jenkins.scm.api.SCMHead
import jenkins.scm.api.SCMRevisionAction
import jenkins.scm.api.SCMSource
import jenkins.scm.api.mixin.ChangeRequestSCMHead
import jenkins.scm.api.mixin.TagSCMHead

/**
 * The facts a build request token is minted with, computed from the Run and
 * its job on the controller. Environment variables are never a source: a
 * Jenkinsfile can set BRANCH_NAME, JOB_NAME or BUILD_URL to anything (the
 * mistake behind CVE-2025-47884 in the Jenkins oidc-provider plugin).
 */
class BuildFacts implements Serializable {

  /** run: the hudson.model.Run of the build (currentBuild.rawBuild). */
  @NonCPS
  static Map<String, String> of(run) {
    def job = run.parent
    Map<String, String> facts = [
      job         : job.fullName as String,
      build_number: run.number as String,
      build_url   : run.absoluteUrl as String,
    ]

    // Multibranch: the SCM head says branch, tag or change request.
    SCMHead head = SCMHead.HeadByItem.findHead(job)
    if (head != null) {
      if (head instanceof ChangeRequestSCMHead) {
        facts.pull_request = head.id as String
        facts.ref = "refs/pull/${head.id}/head".toString()
      } else if (head instanceof TagSCMHead) {
        facts.ref = "refs/tags/${head.name}".toString()
      } else {
        facts.ref = "refs/heads/${head.name}".toString()
      }
    }

    SCMSource source = SCMSource.SourceByItem.findSource(job)
    if (source != null) {
      String repository = firstProperty(source, ['remote', 'repositoryUrl'])
      if (repository) facts.repository = repository
      def revision = SCMRevisionAction.getRevision(source, run)
      // Git revisions expose getHash(); GitHub pull requests getPullHash().
      String commit = revision == null ? null : firstProperty(revision, ['pullHash', 'hash'])
      if (commit ==~ /[0-9a-fA-F]{7,64}/) facts.commit = commit
    }

    String trigger = triggeredBy(run)
    if (trigger) facts.triggered_by = trigger
    return facts
  }

  @NonCPS
  private static String firstProperty(Object o, List<String> names) {
    for (String n : names) {
      if (o.metaClass.hasProperty(o, n)) {
        def v = o."${n}"
        if (v) return v as String
      }
    }
    return null
  }

  /** The user who started the build, else the first cause's description ("Started by timer"). */
  @NonCPS
  static String triggeredBy(run) {
    Cause.UserIdCause user = run.getCause(Cause.UserIdCause)
    String value = user?.userId ?: run.causes?.find { it != null }?.shortDescription
    if (!value) return null
    // Claim text may not hold control characters; keep it within the service's 255.
    value = value.replaceAll(/\p{Cntrl}/, ' ').trim()
    return value.length() > 255 ? value.substring(0, 255) : value
  }
}
