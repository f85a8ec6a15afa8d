package io.jenkinsoidc

import com.cloudbees.groovy.cps.NonCPS
import hudson.model.Cause
import hudson.model.Job
import hudson.model.Run
import jenkins.scm.api.SCMHead
import jenkins.scm.api.SCMRevisionAction
import jenkins.scm.api.SCMSource
import jenkins.scm.api.mixin.ChangeRequestSCMHead
import jenkins.scm.api.mixin.TagSCMHead
import org.jenkinsci.plugins.workflow.cps.CpsThread
import org.jenkinsci.plugins.workflow.cps.replay.ReplayCause

/**
 * The facts a build request token is minted with, computed on the controller
 * from the build that is running the calling Pipeline code.
 *
 * Jenkinsfile code can call every member of a trusted library with any
 * arguments, so this class has exactly one, and it takes none: the Run is the
 * executable of the running CPS thread's flow execution (never currentBuild,
 * never an argument), and every fact is read from it here. Environment
 * variables are never a source: a Jenkinsfile can set BRANCH_NAME, JOB_NAME or
 * BUILD_URL to anything (CVE-2025-47884 in the Jenkins oidc-provider plugin).
 * Multibranch facts come from what the branch source attached before the
 * Jenkinsfile ran (the SCM head of the job, the SCMRevisionAction of the
 * build), never from the BuildData a checkout step in the Jenkinsfile adds.
 *
 * `replayed` says whether the build may run pipeline code that is not in SCM:
 * a Replay (ReplayCause), or a declarative "Restart from Stage" of such a
 * build, at any depth. A restart runs the original build's script, a replayed
 * and edited one included, yet carries only a user cause and the restart
 * cause (pipeline-model-definition's RestartDeclarativePipelineCause): the
 * chain of originals is followed, and one that cannot be read any more (a
 * deleted build) counts as replayed. A restart also gives `restarted_from`,
 * the number of the build it restarted.
 */
final class BuildFacts {
  private BuildFacts() { }

  @NonCPS
  static Map<String, String> ofCurrentBuild() {
    CpsThread thread = CpsThread.current()
    Object executable = thread?.execution?.owner?.executable
    if (!(executable instanceof Run)) {
      throw new JenkinsOidcException('jenkins-oidc: no running Pipeline build on this thread; the steps work only inside a Pipeline')
    }
    Run run = (Run) executable
    Job job = run.parent
    Map<String, String> facts = [:]
    facts.job = job.fullName as String
    facts.build_number = String.valueOf(run.number)
    try {
      facts.build_url = run.absoluteUrl as String
    } catch (IllegalStateException ignored) {
      // Run.getAbsoluteUrl() throws on a build thread when the root URL is not configured.
      throw new JenkinsOidcException('jenkins-oidc: the controller\'s Jenkins URL is not configured (Manage Jenkins > System > Jenkins URL, or unclassified.location.url ' +
                                     'in Configuration as Code): every token carries the build\'s URL, made from it, and the service checks it against the registered Jenkins URL')
    }

    // Multibranch: the branch project's head says branch, tag or change request.
    SCMHead head = SCMHead.HeadByItem.findHead(job)
    if (head instanceof ChangeRequestSCMHead) {
      String id = ((ChangeRequestSCMHead) head).id
      facts.pull_request = id
      facts.ref = "refs/pull/${id}/head".toString()
    } else if (head instanceof TagSCMHead) {
      facts.ref = "refs/tags/${head.name}".toString()
    } else if (head != null) {
      facts.ref = "refs/heads/${head.name}".toString()
    }

    SCMSource source = SCMSource.SourceByItem.findSource(job)
    if (source != null) {
      // Git sources and GitHub ones (GitHubSCMSource extends AbstractGitSCMSource)
      // expose getRemote(); either way it is read from the job's own source, an
      // object no caller can substitute. One form whatever the source: without
      // a trailing ".git" or "/" (GitHub's getRemote() ends in .git, a plain Git
      // source's URL is whatever the admin typed), so that policies compare
      // one spelling.
      for (String getter : ['getRemote', 'getRepositoryUrl']) {
        if (source.metaClass.respondsTo(source, getter)) {
          String value = source."${getter}"() as String
          if (value) { facts.repository = value.replaceFirst(/\/+$/, '').replaceFirst(/\.git$/, ''); break }
        }
      }
      Object revision = SCMRevisionAction.getRevision(source, run)
      // GitHub pull requests: getPullHash(); Git revisions: getHash().
      for (String getter : ['getPullHash', 'getHash']) {
        if (revision != null && revision.metaClass.respondsTo(revision, getter)) {
          String commit = revision."${getter}"() as String
          if (commit ==~ /[0-9a-fA-F]{7,64}/) { facts.commit = commit; break }
        }
      }
    }

    // The user who started the build, else the first cause ("Started by timer").
    Cause.UserIdCause user = (Cause.UserIdCause) run.getCause(Cause.UserIdCause)
    String trigger = user?.userId
    if (!trigger) {
      for (Cause cause : run.causes) {
        if (cause != null && !(cause instanceof ReplayCause)) { trigger = cause.shortDescription; break }
      }
    }
    if (trigger) {
      // Claim text may not hold control characters; keep it within the service's 255.
      trigger = trigger.replaceAll(/\p{Cntrl}/, ' ').trim()
      if (trigger) facts.triggered_by = trigger.length() > 255 ? trigger.substring(0, 255) : trigger
    }

    // Replay runs pipeline code that is not in SCM under this job's name; a
    // restart runs its original's code. The Run is read inline, here and in
    // LibraryPin, never through a helper: any member that returned a Run
    // would hand it to pipeline code.
    boolean mayDiffer = run.getCause(ReplayCause) != null
    Run at = run
    for (int depth = 0; !mayDiffer; depth++) {
      Cause restart = null
      for (Cause cause : at.causes) {
        if (cause != null && cause.getClass().name == RESTART_CAUSE) { restart = cause; break }
      }
      if (restart == null) break
      if (depth == 0) facts.restarted_from = String.valueOf(restart.originRunNumber as int)
      Object original = restart.original
      // A deleted original, or a chain longer than any real one: its code cannot be vouched for.
      if (!(original instanceof Run) || depth >= MAX_RESTART_DEPTH) { mayDiffer = true; break }
      at = (Run) original
      mayDiffer = at.getCause(ReplayCause) != null
    }
    facts.replayed = String.valueOf(mayDiffer)
    return facts
  }

  /** By name: pipeline-model-definition (declarative) need not be installed for scripted pipelines. */
  static final String RESTART_CAUSE = 'org.jenkinsci.plugins.pipeline.modeldefinition.causes.RestartDeclarativePipelineCause'
  static final int MAX_RESTART_DEPTH = 100
}
