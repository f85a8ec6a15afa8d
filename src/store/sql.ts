// What `serve` says to PostgreSQL, it says through the `pg` pool, in SQL.
//
// Prisma stays the schema's home and the CLI's client, but the serving
// process never sends a Prisma query: the first one (a model call, or even
// `$queryRaw`) compiles Prisma's WebAssembly query compiler, about 40 MB a
// process keeps for its lifetime (measured on Node 24: 58 MB resident with
// the client loaded, 97 MB after one query; docs/performance.md, "Memory").
// With WORKERS processes that is WORKERS x 40 MB for a handful of statements
// whose SQL fits on a line. test/process/no-prisma-in-serve.test.ts keeps it so.
//
// Pool connections carry the deadlines of store/deadlines.ts, so every
// statement here has its statement_timeout and client-side cut like any other.
import type pg from 'pg';
import type { Db } from './prisma.js';
import { poolOf } from './prisma.js';

/** A pool or one connection of it inside a transaction: both run a statement the same way. */
export interface Sql {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

/**
 * Runs `fn` in one transaction on one pooled connection. A connection whose
 * ROLLBACK failed (the server went away mid-transaction) is destroyed
 * instead of returned to the pool.
 */
export async function inTransaction<T>(db: Db, fn: (tx: Sql) => Promise<T>): Promise<T> {
  const client = await poolOf(db).connect();
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK').catch((rollbackError: Error) => {
      broken = rollbackError;
    });
    throw err;
  } finally {
    client.release(broken);
  }
}
