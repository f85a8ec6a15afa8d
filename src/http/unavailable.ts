// The answer while PostgreSQL cannot be reached: 503 temporarily_unavailable
// with Retry-After, so a build's client can tell "retry in a moment" from a
// bug (500 server_error). Used by the two places a request's error ends up:
// the app's last-resort catch (our own routes, /id-token) and oidc-provider's
// server_error path (/token, /token/revocation).
//
// No request waits long for it: connecting (or waiting for a pooled
// connection) is bounded by DATABASE_ACQUIRE_TIMEOUT, a refused connection
// fails at once. Nothing is issued without the database: the exchange checks
// the request token and writes the ID token's audit row in one statement
// before it signs, so a token is never returned without its row.
import type { Context } from 'koa';
import { databaseUnavailable } from '../store/connectivity.js';
import { sendError } from './routes/errors.js';

/** Long enough for a PostgreSQL restart or a failover to progress, short enough for a build to wait. */
export const RETRY_AFTER_SECONDS = 3;

export const UNAVAILABLE_DESCRIPTION = 'the token service cannot reach its database right now; retry after the Retry-After delay';

/**
 * Answers 503 temporarily_unavailable when `err` means the database is out
 * of reach, and returns the short cause (for the log); returns undefined, and
 * leaves the response alone, for anything else.
 */
export function answerIfDatabaseUnavailable(ctx: Context, err: unknown): string | undefined {
  const cause = databaseUnavailable(err);
  if (!cause) return undefined;
  sendError(ctx, 503, 'temporarily_unavailable', UNAVAILABLE_DESCRIPTION);
  ctx.set('Retry-After', String(RETRY_AFTER_SECONDS));
  return cause;
}
