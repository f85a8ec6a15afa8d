// What the HTTP app and its routes are given: a module of its own, so that
// app.ts (which mounts the routes) and the routes (which take these) do not
// import each other.
import type { AuditTrail } from '../audit/trail.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Db } from '../store/prisma.js';
import type { FailureBudget } from './abuse-limits.js';
import type { OidcRuntimeHolder } from './provider.js';
import type { Readiness } from './readiness.js';

/** What the app reads of the process's lifecycle: whether a shutdown has begun. */
export interface Lifecycle {
  readonly stopping: boolean;
}

export interface AppDeps {
  config: Config;
  db: Db;
  runtime: OidcRuntimeHolder;
  logger: Logger;
  audit: AuditTrail;
  /** Failed attempts per address (default: a new budget from config.failedAttemptsPerMinute). */
  budget?: FailureBudget;
  metrics?: Metrics;
  /** /readyz's shared probe and the token path's health. */
  readiness: Readiness;
  /** Whether a shutdown has begun (/readyz answers 503 from then on); absent: never. */
  lifecycle?: Lifecycle;
}
