import hudson.model.Cause

/** A hudson.model.Run as the library sees it. */
class FakeRun {
  FakeJob parent
  int number
  String absoluteUrl
  List<Cause> causes = []
  Cause getCause(Class type) { causes.find { type.isInstance(it) } }
}
