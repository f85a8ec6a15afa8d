package org.jenkinsci.plugins.workflow.cps.replay
import hudson.model.Cause
/** The cause a build started by Replay carries (workflow-cps). */
class ReplayCause extends Cause {
  final int originalNumber
  ReplayCause(int originalNumber) { this.originalNumber = originalNumber }
  String getShortDescription() { "Replayed #${originalNumber}" }
}
