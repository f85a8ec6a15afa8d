package org.jenkinsci.plugins.github_branch_source
import jenkins.scm.api.SCMSource
/**
 * github-branch-source's source: it extends AbstractGitSCMSource, so it has
 * getRemote(), which gives the clone URL with ".git"
 * (https://github.com/owner/repo.git), and getRepositoryUrl() without it.
 */
class GitHubSCMSource extends SCMSource {
  final String repoOwner, repository
  GitHubSCMSource(String repoOwner, String repository) { this.repoOwner = repoOwner; this.repository = repository }
  String getRemote() { "https://github.com/${repoOwner}/${repository}.git" }
  String getRepositoryUrl() { "https://github.com/${repoOwner}/${repository}" }
}
