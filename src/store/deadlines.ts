// Every connection this process opens to PostgreSQL, and the deadline on each
// statement it sends.
//
// Why a client-side deadline as well as the server's statement_timeout: the
// server cancels a statement that runs too long (SQLSTATE 57014, the
// connection stays usable), but when the network path dies silently (a
// failover to another host behind the same address, a firewall dropping
// packets) the server never answers at all. pg would then wait for the
// kernel to give up on TCP, about 15 minutes with Linux defaults, and every
// pooled connection that sent a statement meanwhile would be stuck with it.
// So each statement also gets a deadline a second past statement_timeout;
// a statement that misses it destroys its connection (the socket, not a
// polite Terminate that a dead path would never deliver): the caller gets
// StatementDeadlineMissed (503 + Retry-After, store/connectivity.ts) and the
// pool opens a fresh connection for the next one.
//
// TCP keepalive with a short idle time lets the kernel notice a dead idle
// connection too (Node sets the idle time only; the probe interval and count
// stay the system's, net.ipv4.tcp_keepalive_intvl/_probes).
//
// A connection that reports 25006 (read-only transaction: it landed on a
// standby or on a primary just demoted) is destroyed as well, and a new one
// that finds the server in recovery is refused before the pool hands it out:
// the pool keeps only connections to a writable primary.
import pg from 'pg';

/** Past statement_timeout, how long a statement may stay unanswered before its connection is taken for dead. */
export const DEADLINE_GRACE_MS = 1000;
/** Idle time before the kernel sends the first keepalive probe. */
export const KEEPALIVE_INITIAL_DELAY_MS = 5000;

/** The message store/connectivity.ts knows as "statement deadline missed". */
export class StatementDeadlineMissed extends Error {
  constructor(readonly deadlineMs: number) {
    super('database statement deadline missed');
    this.name = 'StatementDeadlineMissed';
  }
}

/** A new connection found the server in recovery: a standby, not the primary. */
export class ServerInRecovery extends Error {
  readonly code = '25006';
  constructor() {
    super('the database server is in recovery (a standby)');
    this.name = 'ServerInRecovery';
  }
}

/** What happened to this process's connections since start (metrics read it). */
export interface ConnectionCounts {
  /** Statements that missed their client-side deadline. */
  deadlinesMissed: number;
  /** Statements the server cancelled (57014: statement_timeout). */
  statementTimeouts: number;
  /** Connections destroyed by us: a missed deadline or a read-only server. */
  destroyed: number;
  /** New connections refused because the server was in recovery. */
  standbyRefused: number;
}

export function newConnectionCounts(): ConnectionCounts {
  return { deadlinesMissed: 0, statementTimeouts: 0, destroyed: 0, standbyRefused: 0 };
}

export interface DeadlineOptions {
  /** Server-side statement_timeout in ms; undefined: none (CLI commands: a migration may take minutes). */
  statementTimeoutMs: number | undefined;
  /**
   * The whole opening of a pooled connection, session settings included
   * (DATABASE_ACQUIRE_TIMEOUT); pg-pool's own timer stops at the handshake.
   */
  connectTimeoutMs?: number;
  counts: ConnectionCounts;
}

type Callback = (err: Error | null, res?: unknown) => void;
/** pg.Client's query, without its overloads. */
type PgQuery = (config: unknown, values?: unknown, callback?: unknown) => never;

function isSubmittable(arg: unknown): boolean {
  return typeof arg === 'object' && arg !== null && typeof (arg as { submit?: unknown }).submit === 'function';
}

/**
 * A pg.Client class whose statements each carry a deadline
 * (statementTimeoutMs + DEADLINE_GRACE_MS) and whose connections die on a
 * missed deadline or on 25006. Given to pg.Pool as its `Client`, and used
 * alone for the key watcher's LISTEN and the retention lock.
 */
export function deadlineClient(options: DeadlineOptions): typeof pg.Client {
  const { counts } = options;
  const deadlineMs = options.statementTimeoutMs === undefined ? undefined : options.statementTimeoutMs + DEADLINE_GRACE_MS;
  return class DeadlineClient extends pg.Client {
    private destroyedBy: Error | undefined;
    /** performance.now() when made, just before pg-pool connects it: prepareConnection's budget starts here. */
    readonly openedAt = performance.now();

    constructor(config?: string | pg.ClientConfig) {
      super(config);
      // A destroyed connection emits 'error' on its client; checked out by a
      // caller that listens for none (pg-pool listens only while it is idle),
      // that would be an uncaught exception. Its queries get the error anyway.
      this.on('error', () => undefined);
    }

    /** Ends the connection at once: no Terminate message, no waiting for a FIN a dead path never sends. */
    destroy(cause: Error): void {
      if (this.destroyedBy) return;
      this.destroyedBy = cause;
      counts.destroyed += 1;
      const stream = (this as unknown as { connection?: { stream?: { destroy(err?: Error): void } } }).connection?.stream;
      stream?.destroy(cause);
    }

    // pg's overloads: (text|config, values?, callback?) or a Submittable. Only
    // plain statements get a deadline; a cursor or COPY stream is its caller's to bound.
    //
    // The arguments go on one by one. This used to take `...args` and put the
    // wrapped callback back into that array: then every statement's callback,
    // and through it every request waiting on the statement, survived minor
    // collections until the next full one (V8's GC counters, one one-row
    // statement per request at one connection: 170 KB promoted per minor
    // collection, 10 KB without; docs/performance.md, "Garbage collection").
    override query(config: unknown, values?: unknown, callback?: unknown): never {
      if (isSubmittable(config)) return (super.query as PgQuery)(config, values, callback);
      const timer = deadlineMs === undefined ? undefined : setTimeout(() => {
        counts.deadlinesMissed += 1;
        this.destroy(new StatementDeadlineMissed(deadlineMs));
      }, deadlineMs);
      timer?.unref();
      const settled = (err: unknown) => {
        clearTimeout(timer);
        const code = (err as { code?: unknown } | null)?.code;
        if (code === '57014') counts.statementTimeouts += 1;
        // A read-only server answers every write of ours so: drop the connection, the next one may reach the primary.
        if (code === '25006') this.destroy(err as Error);
      };
      const wrap = (cb: Callback): Callback => (err, res) => {
        settled(err);
        cb(err, res);
      };
      if (typeof callback === 'function') return (super.query as PgQuery)(config, values, wrap(callback as Callback));
      if (typeof values === 'function') return (super.query as PgQuery)(config, wrap(values as Callback));
      const result = (super.query as PgQuery)(config, values) as unknown as Promise<unknown>;
      result.then(() => settled(null), settled);
      return result as never;
    }
  };
}

/** pg options every connection of ours shares: keepalive, and the session settings set as it opens. */
export function connectionOptions(options: DeadlineOptions): Pick<pg.PoolConfig, 'keepAlive' | 'keepAliveInitialDelayMillis'> & { Client: typeof pg.Client } {
  return { keepAlive: true, keepAliveInitialDelayMillis: KEEPALIVE_INITIAL_DELAY_MS, Client: deadlineClient(options) };
}

/**
 * Run on every pooled connection as it opens, before the pool hands it out,
 * in one round trip (several statements of one simple query):
 * - synchronous_commit on: every ID token's audit row is durable before the
 *   token is returned, whatever a server or database default says (a DBA may
 *   set synchronous_commit=off "for speed");
 * - statement_timeout: the server cancels a statement that runs too long;
 * - pg_is_in_recovery(): a standby is refused here (ServerInRecovery), so no
 *   request is ever handed a connection that can only fail its writes.
 * SETs rather than startup options, so that PgBouncer accepts them.
 */
export async function prepareConnection(client: pg.ClientBase, options: DeadlineOptions): Promise<void> {
  const timeout = options.statementTimeoutMs === undefined ? '' : `SET statement_timeout TO ${Math.round(options.statementTimeoutMs)}; `;
  // Opening a connection, these settings included, takes at most the connect
  // timeout: a path that dies right after the handshake must not add a whole
  // statement deadline to the wait.
  const own = client as unknown as { openedAt?: number; destroy?(cause: Error): void };
  const left = options.connectTimeoutMs === undefined ? undefined : Math.max(0, options.connectTimeoutMs - (performance.now() - (own.openedAt ?? performance.now())));
  const timer = left === undefined ? undefined : setTimeout(() => own.destroy?.(new Error('Connection terminated due to connection timeout')), left);
  let results: pg.QueryResult[];
  try {
    results = (await client.query(`SET synchronous_commit TO on; ${timeout}SELECT pg_is_in_recovery() AS in_recovery`)) as unknown as pg.QueryResult[];
  } finally {
    clearTimeout(timer);
  }
  const last = results[results.length - 1];
  if (last?.rows[0]?.in_recovery === true) {
    options.counts.standbyRefused += 1;
    throw new ServerInRecovery();
  }
}
