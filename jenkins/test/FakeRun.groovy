import hudson.model.Cause
import hudson.model.Run

/** A hudson.model.Run as Jenkins hands it to the library: the build the harness runs. */
class FakeRun extends Run {
  FakeJob parent
  int number
  String absoluteUrl
  List<Cause> causes = []
  List<Object> allActions = []
}
