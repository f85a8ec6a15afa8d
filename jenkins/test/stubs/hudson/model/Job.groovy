package hudson.model
/** The member of hudson.model.Job the library reads. */
abstract class Job {
  abstract String getFullName()
}
