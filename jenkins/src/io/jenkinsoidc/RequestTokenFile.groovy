package io.jenkinsoidc

import com.cloudbees.groovy.cps.NonCPS
import hudson.FilePath
import hudson.slaves.WorkspaceList

/**
 * Puts this build's request token on the build agent without it ever being a
 * step argument (Pipeline stores step arguments with the build record): minted
 * and written here, in @NonCPS code, through the node's FilePath, into a
 * folder of its own under the workspace's temporary folder: the one beside
 * the workspace root (<ws>@tmp), also inside dir('sub'), where the step's
 * context is <ws>/sub and its own @tmp would lie inside the workspace, for
 * archiveArtifacts, stash or a docker build context to pick up. The folder is
 * made private (0700) before the token file exists, the file 0600; on Windows
 * the workspace tmp's own ACL applies (FilePath.chmod does nothing there).
 * The Pipeline gets back only paths, the request URL, the token's id and a
 * handle.
 *
 * Jenkinsfile code can call these with any arguments. `context` is a
 * FilePath (a final class: only a real one, such as getContext(hudson.FilePath)
 * gives the build for its own node); the token written is the calling build's
 * own; remove() revokes by id, as the controller, only a token this
 * controller minted for the calling build, and deletes only a folder named
 * jenkins-oidc-<32 hex> under that context's tmp. It reads nothing back from
 * the agent: a build that overwrote or deleted its token file cannot keep its
 * token alive.
 */
final class RequestTokenFile {
  private RequestTokenFile() { }

  /**
   * Returns [handle:, id:, folder:, file:, url:, warnings:]; never the token.
   * `workspace` is the node's workspace root (env.WORKSPACE): the token's
   * folder goes beside it when it is the context or one of its parents.
   */
  @NonCPS
  static Map<String, Object> create(Map options, FilePath context, String workspace) {
    Map<String, Object> opts = StepOptions.snapshot('withJenkinsOidc', options, TokenService.OPTIONS, ['audience'])
    if (context == null) throw new JenkinsOidcException('jenkins-oidc: this step needs an agent for the request token file: call it inside node { }')
    String handle = UUID.randomUUID().toString().replace('-', '')
    FilePath folder = tokenFolder(context, workspace, handle)
    folder.mkdirs()
    folder.chmod(0700)
    FilePath file = folder.child('request-token')
    Map<String, Object> minted
    try {
      minted = TokenService.mintForCurrentBuild(opts)
    } catch (Exception e) {
      folder.deleteRecursive()
      throw e
    }
    try {
      file.write(minted.token as String, 'UTF-8')
      file.chmod(0600)
    } catch (Exception e) {
      TokenService.revokeForCurrentBuild(opts, minted.id as String)
      folder.deleteRecursive()
      throw new JenkinsOidcException("jenkins-oidc: could not write the request token file on the agent (${e.class.simpleName})")
    }
    return [handle: handle, id: minted.id, folder: folder.remote, file: file.remote, url: minted.requestUrl, warnings: minted.warnings]
  }

  /**
   * Revokes create()'s token by its id and deletes its folder; true if the
   * service confirmed the revocation. Revoking needs nothing from the agent:
   * with the agent gone (context null) the token still dies.
   */
  @NonCPS
  static boolean remove(Map options, FilePath context, String workspace, String handle, String requestTokenId) {
    boolean revoked = TokenService.revokeForCurrentBuild(options, requestTokenId)
    if (context != null && handle ==~ /[0-9a-f]{32}/) {
      try {
        tokenFolder(context, workspace, handle).deleteRecursive()
      } catch (Exception ignored) {
        // The agent is gone or the build was interrupted: the folder goes with the workspace.
      }
    }
    return revoked
  }

  /** jenkins-oidc-<handle> in the temporary folder beside the workspace root (or beside the context, outside any workspace). */
  @NonCPS
  private static FilePath tokenFolder(FilePath context, String workspace, String handle) {
    FilePath root = context
    for (FilePath p = context; workspace && p != null; p = p.parent) {
      if (p.remote == workspace) { root = p; break }
    }
    FilePath tmp = WorkspaceList.tempDir(root)
    if (tmp == null) throw new JenkinsOidcException("jenkins-oidc: the agent has no temporary folder for ${root.remote.take(200)}")
    return tmp.child("jenkins-oidc-${handle}")
  }
}
