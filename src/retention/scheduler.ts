// Runs the data lifecycle (prune.ts) inside `serve`: every replica ticks every
// PRUNE_INTERVAL, and the first to take the cluster's retention lock prunes
// while the others skip that round. Rows fall due a few at a time, so a
// quarter-hour interval keeps every run short; the first run waits a minute so
// that a rolling update's start-up (migrations, keys) has the database first.
import type { Logger } from '../logger.js';
import type { Db } from '../store/prisma.js';
import { formatDuration } from '../config.js';
import { pruneUnderLock, type PruneResult, type Retention } from './prune.js';

export const PRUNE_INTERVAL_MS = 15 * 60_000;
export const FIRST_PRUNE_DELAY_MS = 60_000;

export interface RetentionSchedulerOptions {
  db: Db;
  databaseUrl: string;
  retention: Retention;
  logger: Logger;
  intervalMs?: number;
  firstDelayMs?: number;
  batchSize?: number;
  pauseMs?: number;
  /** Rows each round deleted (metrics). */
  onPruned?: (table: 'audit_events' | 'request_tokens', rows: number) => void;
}

export class RetentionScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<PruneResult | undefined> | undefined;
  private stopped = false;

  constructor(private readonly opts: RetentionSchedulerOptions) {}

  get keepsEverything(): boolean {
    return this.opts.retention.auditRetention === 0 && this.opts.retention.requestTokenRetention === 0;
  }

  start(): void {
    if (this.keepsEverything || this.stopped) return;
    const every = this.opts.intervalMs ?? PRUNE_INTERVAL_MS;
    this.timer = setTimeout(() => {
      void this.tick();
      this.timer = setInterval(() => void this.tick(), every);
      this.timer.unref();
    }, this.opts.firstDelayMs ?? FIRST_PRUNE_DELAY_MS);
    this.timer.unref();
  }

  /** Ends after the statement under way; the database can be closed once this resolves. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearInterval(this.timer);
    await this.running;
  }

  /**
   * One round: prunes under the cluster lock, logs what it deleted. Resolves to
   * undefined when another replica held the lock, a round was still running,
   * or it failed (logged; the next round tries again). Exposed for tests.
   */
  tick(): Promise<PruneResult | undefined> {
    if (this.stopped || this.running || this.keepsEverything) return Promise.resolve(undefined);
    const { logger } = this.opts;
    this.running = (async () => {
      try {
        const result = await pruneUnderLock({ db: this.opts.db, url: this.opts.databaseUrl }, this.opts.retention, {
          batchSize: this.opts.batchSize,
          pauseMs: this.opts.pauseMs,
          shouldStop: () => this.stopped,
        });
        if (!result) {
          logger.debug('retention: another replica is pruning; skipped');
          return undefined;
        }
        const fields = {
          audit_events_deleted: result.auditEvents.rows,
          audit_events_before: result.auditEvents.before,
          request_tokens_deleted: result.requestTokens.rows,
          request_tokens_expired_before: result.requestTokens.before,
          audit_retention: formatDuration(result.auditEvents.retention),
          request_token_retention: formatDuration(result.requestTokens.retention),
          batches: result.auditEvents.batches + result.requestTokens.batches,
          stopped: result.stopped,
        };
        this.opts.onPruned?.('audit_events', result.auditEvents.rows);
        this.opts.onPruned?.('request_tokens', result.requestTokens.rows);
        // A quiet round (nothing due) is not worth a line at info every quarter-hour.
        if (result.auditEvents.rows || result.requestTokens.rows) logger.info(fields, 'retention: deleted expired rows');
        else logger.debug(fields, 'retention: nothing due');
        return result;
      } catch (err) {
        logger.error({ err }, 'retention: pruning failed; retrying at the next round');
        return undefined;
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }
}
