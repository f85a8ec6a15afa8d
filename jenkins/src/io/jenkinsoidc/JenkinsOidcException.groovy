package io.jenkinsoidc

/** A failure with a message meant for the build log: what is wrong and what to do. Never carries a secret. */
final class JenkinsOidcException extends RuntimeException {
  JenkinsOidcException(String message) { super(message) }
}
