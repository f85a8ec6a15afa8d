import hudson.model.Cause
import hudson.model.Run

/** A hudson.model.Run as Jenkins hands it to the library: the build the harness runs. */
class FakeRun extends Run {
  FakeJob parent
  int number
  String absoluteUrl
  /** As the real one: on a build thread it throws while the controller's root URL is not configured (Run.getAbsoluteUrl, Jenkins.getRootUrl). */
  String getAbsoluteUrl() {
    if (jenkins.model.Jenkins.get().rootUrl == null) throw new IllegalStateException('Root URL isn\'t configured yet. Cannot compute absolute URL.')
    return absoluteUrl
  }
  List<Cause> causes = []
  List<Object> allActions = []
}
