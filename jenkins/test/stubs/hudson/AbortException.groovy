package hudson
/**
 * hudson.AbortException: an IOException whose message is the whole story.
 * Pipeline (WorkflowRun) prints such a failure as "ERROR: <message>", any
 * other exception with its stack trace.
 */
class AbortException extends IOException {
  AbortException(String message) { super(message) }
}
