// The one Prisma client of a process: Prisma 7's Rust-free client over `pg`
// through @prisma/adapter-pg, so no engine binary is ever needed.
import { PrismaPg } from '@prisma/adapter-pg';
import pg from 'pg';
import { PrismaClient } from '../generated/prisma/client.js';
import { connectionOptions, newConnectionCounts, prepareConnection, type ConnectionCounts, type DeadlineOptions } from './deadlines.js';

export type Db = PrismaClient;
export { Prisma } from '../generated/prisma/client.js';

/** pg's own default is to wait forever; a request must not. */
export const DEFAULT_CONNECT_TIMEOUT_SECONDS = 3;

const pools = new WeakMap<Db, pg.Pool>();
const deadlinesOfPool = new WeakMap<pg.Pool, DeadlineOptions>();

/**
 * `connectTimeoutSeconds` bounds both a new connection's handshake and the
 * wait for a free pooled connection: past it, the query fails (and a request
 * gets 503, see http/unavailable.ts) instead of hanging on an unreachable
 * server for the operating system's TCP timeout. `statementTimeoutSeconds`
 * bounds each statement once sent (store/deadlines.ts); undefined: no bound
 * (CLI commands, whose migrations and exports may take minutes). The pool is
 * our own, handed to the adapter, so that metrics can watch it.
 */
export function createPrisma(
  databaseUrl: string,
  poolSize = 10,
  connectTimeoutSeconds = DEFAULT_CONNECT_TIMEOUT_SECONDS,
  statementTimeoutSeconds: number | undefined = undefined,
): Db {
  const deadlines: DeadlineOptions = {
    statementTimeoutMs: statementTimeoutSeconds === undefined ? undefined : statementTimeoutSeconds * 1000,
    connectTimeoutMs: connectTimeoutSeconds * 1000,
    counts: newConnectionCounts(),
  };
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: poolSize,
    application_name: 'jenkins-oidc',
    connectionTimeoutMillis: connectTimeoutSeconds * 1000,
    ...connectionOptions(deadlines),
    // Set as each connection opens, before the pool hands it out (pg-pool
    // awaits the hook): synchronous commit, statement_timeout, and a standby refused.
    onConnect: (client) => prepareConnection(client, deadlines),
  });
  deadlinesOfPool.set(pool, deadlines);
  // An idle connection's error (a server restart, the database dropped)
  // surfaces through the next query; unheard, the pool's 'error' event would
  // end the process. The adapter adds its own listener only once Prisma
  // connects, and code that reads through the pool alone (audit/query.ts)
  // never makes it connect.
  pool.on('error', () => undefined);
  const db = new PrismaClient({ adapter: new PrismaPg(pool, { disposeExternalPool: true }) });
  pools.set(db, pool);
  return db;
}

/** What happened to a pool's connections (deadlines missed, connections destroyed...), for metrics. */
export function connectionCountsOf(pool: pg.Pool): ConnectionCounts {
  return deadlinesOf(pool).counts;
}

/**
 * The deadlines of a pool's connections, for the process's other
 * connections to the same database (the key watcher's LISTEN, the retention
 * lock): the same statement bound, counted in the same metrics.
 */
export function deadlinesOf(pool: pg.Pool): DeadlineOptions {
  let d = deadlinesOfPool.get(pool);
  if (!d) {
    d = { statementTimeoutMs: undefined, counts: newConnectionCounts() };
    deadlinesOfPool.set(pool, d);
  }
  return d;
}

/**
 * Closes a client made by createPrisma and its pool. Prisma ends the pool on
 * $disconnect only if it ever connected; a process that read through the pool
 * alone (`audit export`: Prisma's first connection compiles its query engine,
 * about 100 ms of CPU) would otherwise keep its connections open.
 */
export async function closePrisma(db: Db): Promise<void> {
  await db.$disconnect();
  const pool = pools.get(db);
  if (pool && !pool.ending) await pool.end();
}

/** The connection pool behind a client made by createPrisma (the only kind this project makes). */
export function poolOf(db: Db): pg.Pool {
  const pool = pools.get(db);
  if (!pool) throw new Error('this database client was not made by createPrisma: it has no pg pool');
  return pool;
}
