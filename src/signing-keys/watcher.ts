// Propagation: every replica runs the rotation schedule and notices key
// changes made anywhere (another replica's scheduler, an admin command) within
// seconds, then swaps in a provider rebuilt from the new key set.
//
// Fast path: LISTEN on a dedicated connection; every key change NOTIFYs.
// Fallback: every KEY_CHECK_INTERVAL the replica compares a fingerprint of the
// key set (kid:status of the published keys), so a lost notification or a
// dropped connection delays a swap by one interval, never forever.
//
// A LISTEN connection is idle by nature, so a network path that died
// silently (a failover) would go unnoticed for as long as TCP takes: every
// check also sends a heartbeat on it, under the pool's statement deadline
// (store/deadlines.ts); one unanswered destroys the connection, and the next
// check opens a new one.
import type pg from 'pg';
import { connectionOptions } from '../store/deadlines.js';
import type { Logger } from '../logger.js';
import { DEFAULT_CONNECT_TIMEOUT_SECONDS, deadlinesOf, poolOf, type Db } from '../store/prisma.js';
import { loadSigningKeys, type LoadedKey, type SigningAlg } from './keys.js';
import { KEYS_CHANNEL, runSchedule, type Timing } from './lifecycle.js';

export interface WatcherOptions {
  db: Db;
  databaseUrl: string;
  kek: Buffer;
  alg: SigningAlg;
  timing: Timing;
  intervalSeconds: number;
  /** Bounds the LISTEN connection's handshake: an unreachable server must not pile up hanging attempts, one per tick. */
  connectTimeoutSeconds?: number;
  logger: Logger;
  /** Called with the new key set; the caller rebuilds and swaps its runtime. */
  onKeysChanged(keys: LoadedKey[]): Promise<void>;
}

export async function keySetFingerprint(db: Db): Promise<string> {
  const { rows } = await poolOf(db).query<{ f: string }>(
    `SELECT coalesce(string_agg(kid || ':' || status, ',' ORDER BY kid), '') AS f FROM signing_keys WHERE status <> 'removed'`,
  );
  return rows[0]?.f ?? '';
}

export class KeyWatcher {
  private timer: NodeJS.Timeout | undefined;
  private listener: pg.Client | undefined;
  private fingerprint = '';
  private checking: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private readonly ticks = new Set<Promise<void>>();
  private beating: Promise<void> | undefined;
  private lost = false;
  /** Heartbeats answered on the LISTEN connection, and listeners reopened after one was lost (tests read these). */
  readonly counts = { heartbeats: 0, reopened: 0 };

  constructor(private readonly opts: WatcherOptions) {}

  /** Whether the LISTEN connection is open now (metrics count it). */
  get listening(): boolean {
    return this.listener !== undefined;
  }

  async start(initialFingerprint?: string): Promise<void> {
    this.fingerprint = initialFingerprint ?? (await keySetFingerprint(this.opts.db));
    await this.listen();
    this.timer = setInterval(() => {
      const running = this.tick().finally(() => this.ticks.delete(running));
      this.ticks.add(running);
    }, this.opts.intervalSeconds * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    const l = this.listener;
    this.listener = undefined;
    await l?.end().catch(() => undefined);
    await this.beating;
    // A tick still running (its queries are bounded by the connect timeout)
    // must not open a LISTEN connection, or query, after we return.
    await Promise.all(this.ticks);
    await this.checking;
  }

  /** One scheduler run and one fingerprint check; exposed for tests. */
  async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      const steps = await runSchedule(this.opts.db, this.opts.kek, this.opts.timing, this.opts.alg);
      for (const s of steps) this.opts.logger.info({ kid: s.kid, from: s.from, to: s.to, reason: s.reason }, 'signing key step');
    } catch (err) {
      this.opts.logger.error({ err }, 'key schedule failed; retrying at the next check');
    }
    if (this.stopped) return;
    if (!this.listener) await this.listen();
    else this.heartbeat();
    await this.check();
  }

  /** One statement on the LISTEN connection, unless one is still out; not awaited by the tick (it may take the whole deadline). */
  private heartbeat(): void {
    const client = this.listener;
    if (!client || this.beating) return;
    this.beating = client
      .query('SELECT 1')
      .then(() => {
        this.counts.heartbeats += 1;
      })
      .catch(() => {
        // Missed its deadline (the connection is destroyed) or the connection
        // failed: the 'error' handler has let it go; the next tick reopens.
        if (this.listener === client) this.dropListener(client);
      })
      .finally(() => {
        this.beating = undefined;
      });
  }

  private dropListener(client: pg.Client): void {
    if (this.listener === client) {
      this.listener = undefined;
      this.lost = true;
    }
    void client.end().catch(() => undefined);
  }

  /** Reloads and swaps when the key set changed; concurrent calls coalesce. */
  check(): Promise<void> {
    if (this.checking) {
      this.again = true;
      return this.checking;
    }
    this.checking = (async () => {
      do {
        this.again = false;
        try {
          const current = await keySetFingerprint(this.opts.db);
          if (current !== this.fingerprint) {
            const keys = await loadSigningKeys(this.opts.db, this.opts.kek);
            await this.opts.onKeysChanged(keys);
            this.fingerprint = current;
            this.opts.logger.info({ keys: current }, 'signing keys reloaded');
          }
        } catch (err) {
          this.opts.logger.error({ err }, 'signing key reload failed; keeping the current keys');
        }
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private async listen(): Promise<void> {
    const { Client, ...keepAlive } = connectionOptions(deadlinesOf(poolOf(this.opts.db)));
    const client = new Client({
      ...keepAlive,
      connectionString: this.opts.databaseUrl,
      application_name: 'jenkins-oidc key watcher',
      connectionTimeoutMillis: (this.opts.connectTimeoutSeconds ?? DEFAULT_CONNECT_TIMEOUT_SECONDS) * 1000,
    });
    client.on('error', (err) => {
      // The polling fallback keeps working; the next tick reconnects.
      this.opts.logger.warn({ err: err.message }, 'key change listener lost its connection');
      this.dropListener(client);
    });
    client.on('notification', () => void this.check());
    try {
      await client.connect();
      await client.query(`LISTEN ${KEYS_CHANNEL}`);
      // Stopped meanwhile, or another tick's listener won (ticks overlap while
      // the database is slow): this connection would leak.
      if (this.stopped || this.listener) {
        await client.end().catch(() => undefined);
        return;
      }
      this.listener = client;
      if (this.lost) {
        this.lost = false;
        this.counts.reopened += 1;
        this.opts.logger.info('key change listener reconnected');
      }
    } catch (err) {
      this.opts.logger.warn({ err: (err as Error).message }, 'could not LISTEN for key changes; polling only');
      await client.end().catch(() => undefined);
    }
  }
}
