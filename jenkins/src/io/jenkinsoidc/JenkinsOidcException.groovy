package io.jenkinsoidc

import hudson.AbortException

/**
 * A refusal or failure the build log should show as one line: an
 * AbortException, which Pipeline (WorkflowRun) prints as its message alone,
 * where any other exception prints a stack trace of the library's internals.
 * Never carries a secret.
 */
final class JenkinsOidcException extends AbortException {
  JenkinsOidcException(String message) { super(message) }
}
