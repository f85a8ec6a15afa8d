package hudson.model
abstract class Cause {
  abstract String getShortDescription()
  static class UserIdCause extends Cause {
    final String userId
    UserIdCause(String userId) { this.userId = userId }
    String getShortDescription() { "Started by user ${userId}" }
  }
}
