// What the `serve` primary and its workers (WORKERS > 1) tell each other
// beyond node:cluster's own events; kept apart so that `serve` can read it
// without loading the primary's code (src/process/cluster.ts).

/** The environment variable the primary sets for each worker: its number, 1..WORKERS. Not a setting. */
export const WORKER_SLOT_VARIABLE = 'JENKINS_OIDC_WORKER';

/**
 * Set (to 1) for the one-shot process in which the primary applies migrations
 * and ensures the signing key before it forks the workers. Not a setting.
 */
export const PREPARE_VARIABLE = 'JENKINS_OIDC_PREPARE';

/**
 * A worker's start-up, or the preparation, failed: the primary puts the
 * reason in its own log line (a worker) or in serve's error (the preparation).
 */
export interface StartFailure {
  type: 'jenkins-oidc:start-failed';
  error: string;
  advice?: string;
}

export const isStartFailure = (m: unknown): m is StartFailure => (m as StartFailure | undefined)?.type === 'jenkins-oidc:start-failed';
