// /readyz's answer, from state the service keeps: it must tell the truth (a
// replica that cannot issue ID tokens says 503, with a reason) and cost
// nothing, whatever the rate (issue 18: 150 clients looping /readyz, one
// query each, once starved every /id-token of its pool).
//
// - One database probe at most per second, shared by every caller: callers
//   within a second of the last probe get its result, callers while one runs
//   wait for that one. The probe asks `pg_is_in_recovery()` through the pool,
//   so it also says when the only server left is a standby, and a
//   connection that finds one is dropped.
// - The token path's own health (request-tokens/path-health.ts): a token
//   statement unanswered for DATABASE_ACQUIRE_TIMEOUT, or the last one failed
//   for want of the database with none succeeding since (and no probe
//   succeeding after it), is a 503 as well.
import type pg from 'pg';
import type { TokenPathHealth } from '../request-tokens/path-health.js';
import { databaseUnavailable } from '../store/connectivity.js';

/** A probe result is reused for this long. */
export const PROBE_INTERVAL_MS = 1000;

export type ReadinessAnswer = { ready: true } | { ready: false; reason: string };

interface Probe {
  startedAt: number;
  endedAt: number;
  /** undefined: the database answered as a writable primary. */
  failure: string | undefined;
}

export interface ReadinessInput {
  pool: pg.Pool;
  tokenPath: TokenPathHealth;
  /** A token statement unanswered this long makes the replica unready (DATABASE_ACQUIRE_TIMEOUT). */
  stalledAfterMs: number;
  /** A probe failure that is not the database being unavailable: our bug, logged. */
  onUnexpected?: (err: unknown) => void;
  now?: () => number;
}

export class Readiness {
  /** Probes run since start (metrics; the readiness flood test counts them). */
  probes = 0;
  private last: Probe | undefined;
  private running: Promise<Probe> | undefined;
  private readonly now: () => number;

  constructor(private readonly input: ReadinessInput) {
    this.now = input.now ?? (() => performance.now());
  }

  /** Whether the database side can issue tokens now; at most one probe a second, shared. */
  async check(): Promise<ReadinessAnswer> {
    const probe = await this.probe();
    if (probe.failure) return { ready: false, reason: `database unreachable: ${probe.failure}` };
    const { tokenPath, stalledAfterMs } = this.input;
    const stalled = tokenPath.oldestRunningMs();
    if (stalled >= stalledAfterMs) return { ready: false, reason: `database not answering token statements for ${Math.floor(stalled / 1000)} s` };
    const failing = tokenPath.failingSince();
    // A probe that began after the failure and succeeded means fresh
    // connections work again (the dead ones were destroyed): the next token
    // statement will use one.
    if (failing && probe.startedAt <= failing.at) return { ready: false, reason: `token statements failing: ${failing.cause}` };
    return { ready: true };
  }

  private probe(): Promise<Probe> {
    const last = this.last;
    if (last && this.now() - last.endedAt < PROBE_INTERVAL_MS) return Promise.resolve(last);
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async run(): Promise<Probe> {
    this.probes += 1;
    const startedAt = this.now();
    let failure: string | undefined;
    try {
      // Bounded without a timer of ours: the wait for a connection by
      // DATABASE_ACQUIRE_TIMEOUT, the statement by its deadline (store/deadlines.ts).
      const { rows } = await this.input.pool.query<{ in_recovery: boolean }>('SELECT pg_is_in_recovery() AS in_recovery');
      // An open connection whose server was demoted since (new ones are refused at connect).
      if (rows[0]?.in_recovery) failure = 'server in recovery (standby)';
    } catch (err) {
      failure = databaseUnavailable(err);
      if (!failure) {
        this.input.onUnexpected?.(err);
        failure = 'unexpected error (see the service log)';
      }
    }
    this.last = { startedAt, endedAt: this.now(), failure };
    return this.last;
  }
}
