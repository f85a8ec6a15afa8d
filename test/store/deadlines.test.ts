// Deadlines on statements (store/deadlines.ts), against the run's PostgreSQL
// and through a relay that goes silent without closing anything: a slow
// statement is cancelled by the server and keeps its connection; a statement
// on a silent path fails a second later and its connection is destroyed; the
// next statement opens a fresh one and succeeds.
import { databaseUnavailable } from '../../src/store/connectivity.js';
import { deadlineClient, newConnectionCounts, prepareConnection } from '../../src/store/deadlines.js';
import { closePrisma, connectionCountsOf, createPrisma, poolOf, type Db } from '../../src/store/prisma.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startRelay, type Relay } from '../helpers/relay.js';
import { waitFor } from '../helpers/wait.js';

/** What a missed deadline may take beyond its bound on a loaded 2-core machine. */
const SLACK_MS = 5_000;

let database: TestDatabase;
let relay: Relay;
let db: Db | undefined;

beforeAll(async () => {
  database = await createTestDatabase();
  relay = await startRelay(Number(new URL(database.url).port || 5432), new URL(database.url).hostname);
});
afterEach(async () => {
  if (db) await closePrisma(db).catch(() => undefined);
  db = undefined;
});
afterAll(async () => {
  await relay?.close();
  await database?.drop();
});

function viaRelay(): string {
  const url = new URL(database.url);
  url.hostname = '127.0.0.1';
  url.port = String(relay.port);
  return url.toString();
}

async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the statement to fail');
}

test('a statement past DATABASE_STATEMENT_TIMEOUT is cancelled by the server (57014, unavailable) and its connection stays usable', async () => {
  db = createPrisma(database.url, 2, 1, 1);
  const pool = poolOf(db);
  const err = await failure(pool.query('SELECT pg_sleep(3)'));
  expect((err as { code?: string }).code).toBe('57014');
  expect(databaseUnavailable(err)).toBe('query_canceled (57014)');
  // Through Prisma as well.
  expect(databaseUnavailable(await failure(db.$queryRaw`SELECT pg_sleep(3)`))).toBe('query_canceled (57014)');
  expect(connectionCountsOf(pool)).toEqual({ deadlinesMissed: 0, statementTimeouts: 2, destroyed: 0, standbyRefused: 0 });
  expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  expect(pool.totalCount).toBe(1);
});

test.each([
  ['pg pool', (d: Db) => poolOf(d).query('SELECT 1')],
  ['Prisma', (d: Db) => d.$queryRaw`SELECT 1`],
])('through the %s, a statement on a connection gone silent fails a second past the timeout as "statement deadline missed", the connection is destroyed, and the next statement succeeds', async (_name, statement) => {
  db = createPrisma(viaRelay(), 1, 1, 1);
  const pool = poolOf(db);
  await statement(db);
  expect(pool.totalCount).toBe(1);
  relay.blackhole('existing');
  const started = Date.now();
  const err = await failure(statement(db));
  const ms = Date.now() - started;
  expect(databaseUnavailable(err)).toBe('statement deadline missed');
  // Not the server's cancel (it never heard of it) and not TCP giving up (minutes).
  expect(ms).toBeGreaterThanOrEqual(2000 - 50);
  expect(ms).toBeLessThan(2000 + SLACK_MS);
  expect(connectionCountsOf(pool)).toMatchObject({ deadlinesMissed: 1, destroyed: 1 });
  await waitFor('the pool to forget the dead connection', () => pool.totalCount === 0);
  // New connections pass the relay: a fresh one answers.
  await statement(db);
  expect(pool.totalCount).toBe(1);
});

test('a connection whose path goes silent right after the handshake is given up within the connect timeout, session settings included', async () => {
  const options = { statementTimeoutMs: 20_000, connectTimeoutMs: 500, counts: newConnectionCounts() };
  const Client = deadlineClient(options);
  const client = new Client({ connectionString: viaRelay() });
  await client.connect();
  relay.blackhole('existing');
  const started = Date.now();
  const err = await failure(prepareConnection(client, options));
  const ms = Date.now() - started;
  expect(databaseUnavailable(err)).toBe('connect timeout');
  // Not the statement deadline (21 s): the connect timeout's remainder.
  expect(ms).toBeLessThan(500 + SLACK_MS);
  expect(options.counts).toEqual({ deadlinesMissed: 0, statementTimeouts: 0, destroyed: 1, standbyRefused: 0 });
  relay.pass();
});
