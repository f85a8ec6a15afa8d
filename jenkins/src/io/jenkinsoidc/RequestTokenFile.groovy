package io.jenkinsoidc

import com.cloudbees.groovy.cps.NonCPS
import hudson.FilePath
import hudson.slaves.WorkspaceList

/**
 * Puts this build's request token on the build agent without it ever being a
 * step argument (Pipeline stores step arguments with the build record): minted
 * and written here, in @NonCPS code, through the node's FilePath, into a
 * folder of its own under the workspace's temporary folder. The folder is
 * made private (0700) before the token file exists, the file 0600; on Windows
 * the workspace tmp's own ACL applies (FilePath.chmod does nothing there).
 * The Pipeline gets back only paths, the request URL and a handle.
 *
 * Jenkinsfile code can call these with any arguments. `context` is a
 * FilePath (a final class: only a real one, such as getContext(hudson.FilePath)
 * gives the build for its own node); the token written is the calling build's
 * own; remove() reads only a file named request-token in a folder named
 * jenkins-oidc-<32 hex> under that context's tmp, and sends it nowhere but to
 * the admin's service, and only if it has the shape of a request token.
 */
final class RequestTokenFile {
  private RequestTokenFile() { }

  /** Returns [handle:, folder:, file:, url:]; never the token. */
  @NonCPS
  static Map<String, String> create(Map options, FilePath context) {
    if (context == null) throw new JenkinsOidcException('jenkins-oidc: this step needs an agent for the request token file: call it inside node { }')
    String handle = UUID.randomUUID().toString().replace('-', '')
    FilePath folder = WorkspaceList.tempDir(context).child("jenkins-oidc-${handle}")
    folder.mkdirs()
    folder.chmod(0700)
    FilePath file = folder.child('request-token')
    Map<String, Object> minted
    try {
      minted = TokenService.mintForCurrentBuild(options)
    } catch (Exception e) {
      folder.deleteRecursive()
      throw e
    }
    try {
      file.write(minted.token as String, 'UTF-8')
      file.chmod(0600)
    } catch (Exception e) {
      TokenService.revoke(options, minted.token as String)
      folder.deleteRecursive()
      throw new JenkinsOidcException("jenkins-oidc: could not write the request token file on the agent (${e.class.simpleName})")
    }
    return [handle: handle, folder: folder.remote, file: file.remote, url: minted.requestUrl as String]
  }

  /** Revokes the token of create()'s folder and deletes the folder; true if the service confirmed the revocation. */
  @NonCPS
  static boolean remove(Map options, FilePath context, String handle) {
    if (context == null || !(handle ==~ /[0-9a-f]{32}/)) return false
    FilePath folder = WorkspaceList.tempDir(context).child("jenkins-oidc-${handle}")
    boolean revoked = false
    try {
      FilePath file = folder.child('request-token')
      String token = file.exists() ? file.readToString().trim() : ''
      if (token ==~ /jort_[A-Za-z0-9_-]{43}/) revoked = TokenService.revoke(options, token)
    } catch (Exception ignored) {
      // The agent is gone or the build was interrupted: the token dies at its expiry.
    } finally {
      try { folder.deleteRecursive() } catch (Exception ignored) { }
    }
    return revoked
  }
}
