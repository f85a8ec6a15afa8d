/** What the `error` and a failed `sh` step throw in Jenkins: an AbortException (its message is the whole story). */
class PipelineError extends hudson.AbortException {
  PipelineError(String message) { super(message) }
}
