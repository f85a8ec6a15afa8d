/** A hudson.model.Job as the library sees it: its full name. */
class FakeJob {
  String fullName
  String toString() { "job ${fullName}" }
}
