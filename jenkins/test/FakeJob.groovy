import hudson.model.Job

/** A hudson.model.Job as the library sees it: its full name. */
class FakeJob extends Job {
  String fullName
  String toString() { "job ${fullName}" }
}
