/** What the `error` step and a failing `sh` throw (hudson.AbortException in Jenkins). */
class PipelineError extends RuntimeException {
  PipelineError(String m) { super(m) }
}
