// The token path's own health: how its statements (the redeem statements of
// exchanges and GET /id-token, and mints) are faring, as /readyz and the
// metrics see it. A fresh `SELECT 1` on a new connection says little about
// that: after a silent failover, /readyz once said 200 while every exchange
// waited on connections that would never answer (issue 17). So readiness
// also asks this: is a token statement stuck, and did the last one fail for
// want of the database with none succeeding since?
import type pg from 'pg';
import { commitUnknown, databaseUnavailable } from '../store/connectivity.js';

/** What a token statement would have issued: the ID tokens' jtis of a redeem batch, or a mint's request token id. */
export interface Issuing {
  kind: 'id_token' | 'request_token';
  ids: string[];
}

export class TokenPathHealth {
  private readonly running = new Set<{ since: number }>();
  /** performance.now() of the last token statement that succeeded. */
  lastSuccessAt: number | undefined;
  /** The last token statement that failed because the database was unavailable. */
  lastFailure: { at: number; cause: string } | undefined;

  /**
   * Told of a statement that failed after it may have committed: its tokens'
   * rows may exist although no caller ever saw them (serve writes an audit
   * row saying so, audit/trail.ts).
   */
  onCommitUnknown: ((issuing: Issuing, cause: string) => void) | undefined;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Follows one token statement to its end. */
  async track<T>(statement: () => Promise<T>, issuing?: Issuing): Promise<T> {
    const entry = { since: this.now() };
    this.running.add(entry);
    try {
      const result = await statement();
      this.lastSuccessAt = this.now();
      return result;
    } catch (err) {
      // A refusal for its input (a constraint) says nothing about the database's health.
      const cause = databaseUnavailable(err);
      if (cause) {
        this.lastFailure = { at: this.now(), cause };
        if (issuing && commitUnknown(cause)) this.onCommitUnknown?.(issuing, cause);
      }
      throw err;
    } finally {
      this.running.delete(entry);
    }
  }

  /** How long the oldest token statement still unanswered has been running, in ms (0: none). */
  oldestRunningMs(): number {
    let oldest = Infinity;
    for (const r of this.running) oldest = Math.min(oldest, r.since);
    return oldest === Infinity ? 0 : this.now() - oldest;
  }

  /** The cause of the last failure when no token statement has succeeded since; undefined otherwise. */
  failingSince(): { at: number; cause: string } | undefined {
    const f = this.lastFailure;
    return f && (this.lastSuccessAt === undefined || this.lastSuccessAt < f.at) ? f : undefined;
  }
}

const healths = new WeakMap<pg.Pool, TokenPathHealth>();

/** The process's token path health for this pool (one per pool, as the redeem queue). */
export function tokenPathHealthOf(pool: pg.Pool): TokenPathHealth {
  let health = healths.get(pool);
  if (!health) {
    health = new TokenPathHealth();
    healths.set(pool, health);
  }
  return health;
}
