package org.jenkinsci.plugins.workflow.cps
/**
 * The CPS VM thread running pipeline code. As in workflow-cps, current() is
 * the thread executing the Pipeline at this moment (a ThreadLocal set while
 * the program runs, @NonCPS calls included) and null anywhere else. Sandboxed
 * Jenkinsfile code cannot call it; the harness sets it for a pipeline run.
 */
final class CpsThread {
  private static final ThreadLocal<CpsThread> CURRENT = new ThreadLocal<>()
  final CpsFlowExecution execution
  CpsThread(CpsFlowExecution execution) { this.execution = execution }
  static CpsThread current() { CURRENT.get() }
  /** Test only: what workflow-cps does around each chunk of a Pipeline program. */
  static Object runAs(CpsThread thread, Closure body) {
    CpsThread before = CURRENT.get()
    CURRENT.set(thread)
    try { return body() } finally { before == null ? CURRENT.remove() : CURRENT.set(before) }
  }
}
