package org.jenkinsci.plugins.workflow.flow
/** Who runs a flow: for a Pipeline build, getExecutable() is its Run. */
class FlowExecutionOwner {
  private final Object executable
  FlowExecutionOwner(Object executable) { this.executable = executable }
  Object getExecutable() throws IOException { executable }
}
