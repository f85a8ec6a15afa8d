package org.jenkinsci.plugins.pipeline.modeldefinition.causes
import hudson.model.Cause
import hudson.model.Run
/**
 * The cause of a declarative "Restart from Stage" (pipeline-model-definition):
 * the restarted build runs the original build's script, a replayed one
 * included, and carries this cause besides the user's. getOriginal() looks the
 * original up by number, so it is null once that build was deleted.
 */
class RestartDeclarativePipelineCause extends Cause {
  final int originRunNumber
  final String originStage
  /** The original build; null stands for a build deleted since. */
  final Run original
  RestartDeclarativePipelineCause(Run original, int originRunNumber, String originStage) {
    this.original = original; this.originRunNumber = originRunNumber; this.originStage = originStage
  }
  String getShortDescription() { "Restarted from build #${originRunNumber}, stage ${originStage}" }
}
