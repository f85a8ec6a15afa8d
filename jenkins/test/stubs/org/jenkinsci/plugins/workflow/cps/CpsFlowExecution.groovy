package org.jenkinsci.plugins.workflow.cps
import org.jenkinsci.plugins.workflow.flow.FlowExecutionOwner
final class CpsFlowExecution {
  final FlowExecutionOwner owner
  CpsFlowExecution(FlowExecutionOwner owner) { this.owner = owner }
}
