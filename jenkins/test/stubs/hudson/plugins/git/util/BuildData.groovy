package hudson.plugins.git.util
/** What the git plugin's checkout step attaches to a build: the revision it checked out. */
class BuildData {
  final String remoteUrl
  final String sha1
  BuildData(String remoteUrl, String sha1) { this.remoteUrl = remoteUrl; this.sha1 = sha1 }
}
