// A fresh, migrated database per test file, on the run's PostgreSQL server.
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrate } from '../../src/store/migrate.js';
import { closePrisma, createPrisma, type Db } from '../../src/store/prisma.js';

export interface TestDatabase {
  url: string;
  name: string;
  db: Db;
  /** Runs SQL as-is (for asserting stored rows exactly). */
  query<T extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

function adminUrl(): string {
  const url = process.env.TEST_ADMIN_DATABASE_URL;
  if (!url) throw new Error('TEST_ADMIN_DATABASE_URL is not set: run the suite with `npm test`');
  return url;
}

export function databaseUrl(name: string, server = adminUrl()): string {
  const url = new URL(server);
  url.pathname = `/${name}`;
  return url.toString();
}

/** `server`: an admin URL of another PostgreSQL server than the run's (a test's own, see own-postgres.ts). */
export async function createEmptyDatabase(server = adminUrl()): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = `jo_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return {
    url: databaseUrl(name, server),
    name,
    drop: async () => {
      const c = new pg.Client({ connectionString: server });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/**
 * How long a test's own Prisma client waits for a connection. The product's
 * 3 s (DEFAULT_CONNECT_TIMEOUT_SECONDS) bounds a request's wait; a test's
 * client only sets up and inspects, and on a busy machine (load average 15 on
 * 2 cores) a new connection's handshake took longer than 3 s: the key
 * lifecycle test failed with pg's "connection timeout" with nothing wrong.
 * Generous, like every bound in the tests: it only costs time on failure.
 */
export const TEST_CONNECT_TIMEOUT_SECONDS = 60;

/** A Prisma client for a test's own use, with the generous connect bound above. */
export function testPrisma(url: string, poolSize: number): Db {
  return createPrisma(url, poolSize, TEST_CONNECT_TIMEOUT_SECONDS);
}

export async function createTestDatabase(server?: string): Promise<TestDatabase> {
  const empty = await createEmptyDatabase(server);
  await migrate(empty.url);
  const db = testPrisma(empty.url, 4);
  const pool = new pg.Pool({ connectionString: empty.url, max: 2 });
  // The database is dropped WITH (FORCE) at the end; a connection still
  // closing then gets 57P01, which must not become an unhandled 'error'.
  pool.on('error', () => undefined);
  return {
    ...empty,
    db,
    query: async (sql, params) => (await pool.query(sql, params as unknown[])).rows,
    drop: async () => {
      await closePrisma(db);
      await pool.end();
      await empty.drop();
    },
  };
}
