// `serve` with the settings the deployments use and nothing else exercised:
// MIGRATE_ON_START=false (the Kubernetes Deployment: a Job runs
// `jenkins-oidc migrate` first), and the V8 heap it runs with, OPTIMIZE_FOR
// included (process/runtime.ts, docs/performance.md). Real processes, real PostgreSQL, clients added with the CLI
// and a mint and an exchange over HTTP, as an operator and a build do.
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { SERVE_HEAP_FLAGS } from '../../src/process/runtime.js';
import { readMigrations } from '../../src/store/migrate.js';
import { runCli, startServe, type ServeProcess } from '../helpers/cli.js';
import { createEmptyDatabase } from '../helpers/database.js';
import { basic, EXCHANGE, MINT, REQUEST_TOKEN_TYPE } from '../helpers/service.js';

const KEK = randomBytes(32).toString('base64');
const RECORD_RUNTIME = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../helpers/record-runtime.mjs');
const cleanups: (() => Promise<void>)[] = [];
const running: ServeProcess[] = [];
afterAll(async () => {
  for (const s of running) {
    if (s.child.exitCode === null && s.child.signalCode === null) {
      s.child.kill('SIGTERM');
      await s.exited;
    }
  }
  for (const c of cleanups) await c();
});

interface Database {
  url: string;
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
}

/** A database without any table, as a new deployment meets it. */
async function emptyDatabase(): Promise<Database> {
  const empty = await createEmptyDatabase();
  const pool = new pg.Pool({ connectionString: empty.url, max: 1 });
  pool.on('error', () => undefined);
  cleanups.push(async () => {
    await pool.end();
    await empty.drop();
  });
  return { url: empty.url, query: async (sql, params) => (await pool.query(sql, params)).rows };
}

const envFor = (database: Database, extra: Record<string, string> = {}) => ({
  DATABASE_URL: database.url,
  KEY_ENCRYPTION_KEY: KEK,
  ISSUER: 'http://127.0.0.1',
  ALLOW_INSECURE_ISSUER: 'true',
  DATABASE_POOL_SIZE: '2',
  ...extra,
});

async function serve(env: Record<string, string>, nodeArgs: string[] = []): Promise<ServeProcess> {
  const s = await startServe(env, undefined, { nodeArgs });
  running.push(s);
  return s;
}

async function stop(s: ServeProcess): Promise<void> {
  s.child.kill('SIGTERM');
  expect(await s.exited).toBe(0);
}

/** The error lines `serve` printed on stderr (the message and its advice). */
const errorLines = (s: ServeProcess) => s.output().split('\n').filter((l) => l.startsWith('error: ') || l.startsWith('  run: '));

/** A controller added with the CLI mints over HTTP, and its build exchanges: the statuses. */
async function mintAndExchange(s: ServeProcess, database: Database): Promise<{ mint: number; exchange: number }> {
  const name = `ci-${randomBytes(3).toString('hex')}`;
  const added = await runCli(['clients', 'add', name, '--jenkins-url', 'https://jenkins.example.com', '--json'], { DATABASE_URL: database.url });
  expect(added.code).toBe(0);
  const { client_secret: secret } = JSON.parse(added.stdout) as { client_secret: string };
  const minted = await fetch(`${s.url}/token`, {
    method: 'POST',
    headers: { authorization: basic(name, secret), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: MINT, job: 'app', build_number: '1', build_url: 'https://jenkins.example.com/job/app/1/' }),
  });
  const token = ((await minted.json()) as { access_token?: string }).access_token ?? '';
  const exchanged = await fetch(`${s.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: EXCHANGE, client_id: 'jenkins-build', subject_token: token, subject_token_type: REQUEST_TOKEN_TYPE }),
  });
  return { mint: minted.status, exchange: exchanged.status };
}

const migrationRows = (database: Database) => database.query('SELECT migration_name, checksum, finished_at FROM _prisma_migrations ORDER BY migration_name');

describe('MIGRATE_ON_START=false', () => {
  test('on a database the migrate Job has not reached yet, serve refuses to start and says to migrate', async () => {
    const database = await emptyDatabase();
    const s = await serve(envFor(database, { MIGRATE_ON_START: 'false' }));
    // (startServe returns once it listens or exits: it never listened.)
    expect(s.url).toBeUndefined();
    expect(await s.exited).toBe(1);
    expect(errorLines(s)).toEqual(['error: the database has no jenkins-oidc tables yet', '  run: jenkins-oidc migrate']);
    expect(await database.query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")).toEqual([]);
  });

  test('with a migration of this release still pending, serve refuses to start and applies nothing', async () => {
    const database = await emptyDatabase();
    expect((await runCli(['migrate'], envFor(database))).code).toBe(0);
    // As if this release brought the last migration and the Job had not run it yet.
    const last = readMigrations().at(-1)!.name;
    await database.query('DELETE FROM _prisma_migrations WHERE migration_name = $1', [last]);
    const before = await migrationRows(database);
    const s = await serve(envFor(database, { MIGRATE_ON_START: 'false' }));
    expect(s.url).toBeUndefined();
    expect(await s.exited).toBe(1);
    expect(errorLines(s)).toEqual([`error: 1 migration(s) pending: ${last}`, '  run: jenkins-oidc migrate']);
    expect(await migrationRows(database)).toEqual(before);
  });

  test('once `jenkins-oidc migrate` has run, serve starts without touching the schema, and serves', async () => {
    const database = await emptyDatabase();
    expect((await runCli(['migrate'], envFor(database))).code).toBe(0);
    const before = await migrationRows(database);
    expect(before).toHaveLength(readMigrations().length);
    const s = await serve(envFor(database, { MIGRATE_ON_START: 'false' }));
    expect(s.url).toBeDefined();
    expect(await mintAndExchange(s, database)).toEqual({ mint: 200, exchange: 200 });
    await stop(s);
    expect(s.lines().filter((l) => /migrat/i.test(l.msg ?? ''))).toEqual([]);
    expect(await migrationRows(database)).toEqual(before);
    // The first signing key is still the service's to create.
    expect(s.lines().filter((l) => l.msg === 'signing key step')).toEqual([expect.objectContaining({ to: 'active', reason: 'first key' })]);
  });
});

describe('the heap serve runs with (process/runtime.ts)', () => {
  let database: Database;
  beforeAll(async () => {
    database = await emptyDatabase();
    expect((await runCli(['migrate'], envFor(database))).code).toBe(0);
  });

  interface Runtime {
    pid: number;
    execArgv: string[];
    heapSizeLimitMb: number;
  }
  // NODE_OPTIONS preloads a reporter into every process serve becomes (helpers/record-runtime.mjs).
  const runtimes = (s: ServeProcess): Runtime[] =>
    s.output().split('\n').filter((l) => l.startsWith('runtime: ')).map((l) => JSON.parse(l.slice('runtime: '.length)) as Runtime);

  test('by default, serve replaces itself (same pid) with the heap flags, and serves', async () => {
    const s = await serve(envFor(database, { NODE_OPTIONS: `--import=${RECORD_RUNTIME}` }));
    expect(s.url).toBeDefined();
    const [started, serving, ...more] = runtimes(s);
    expect(more).toEqual([]);
    expect(started!.execArgv).toEqual([]);
    expect(serving).toEqual({ pid: started!.pid, execArgv: [...SERVE_HEAP_FLAGS], heapSizeLimitMb: expect.any(Number) });
    expect(serving!.pid).toBe(s.child.pid);
    // Three semi-spaces of 8 MB instead of V8's largest (64 MB on a large host, 16 MB on a small one).
    expect(serving!.heapSizeLimitMb).toBeLessThan(started!.heapSizeLimitMb);
    expect(await mintAndExchange(s, database)).toEqual({ mint: 200, exchange: 200 });
    await stop(s);
    expect(s.lines().filter((l) => /running without/.test(String(l.msg)))).toEqual([]);
  });

  test('a misspelt variable is named once, not again by the process serve replaces itself with', async () => {
    const s = await serve(envFor(database, { AUDIT_RETENTON: '30d', NODE_OPTIONS: `--import=${RECORD_RUNTIME}` }));
    expect(runtimes(s)).toHaveLength(2);
    expect(s.output().split('\n').filter((l) => l.startsWith('warning: '))).toEqual([
      'warning: AUDIT_RETENTON is not a setting of jenkins-oidc and is ignored; did you mean AUDIT_RETENTION?',
    ]);
    await stop(s);
  });

  test('OPTIMIZE_FOR=memory adds --optimize-for-size, and serves', async () => {
    const s = await serve(envFor(database, { OPTIMIZE_FOR: 'memory', NODE_OPTIONS: `--import=${RECORD_RUNTIME}` }));
    expect(runtimes(s).map((r) => r.execArgv)).toEqual([[], [...SERVE_HEAP_FLAGS, '--optimize-for-size']]);
    expect(await mintAndExchange(s, database)).toEqual({ mint: 200, exchange: 200 });
    await stop(s);
  });

  test('a heap flag the operator set is kept as set: only the other one is added', async () => {
    const s = await serve(envFor(database, { NODE_OPTIONS: `--max-semi-space-size=16 --import=${RECORD_RUNTIME}` }));
    expect(runtimes(s).map((r) => r.execArgv)).toEqual([[], ['--heap-growing-percent=30']]);
    expect(await mintAndExchange(s, database)).toEqual({ mint: 200, exchange: 200 });
    await stop(s);
  });

  test('forked with an IPC channel (a process manager), serve keeps its channel: it is not replaced, and says which flags it runs without', async () => {
    const s = await startServe(envFor(database, { NODE_OPTIONS: `--import=${RECORD_RUNTIME}` }), undefined, { ipc: true });
    running.push(s);
    expect(s.url).toBeDefined();
    expect(runtimes(s).map((r) => r.execArgv)).toEqual([[]]);
    expect(s.lines().filter((l) => String(l.msg).startsWith('running without')).map((l) => l.flags)).toEqual([[...SERVE_HEAP_FLAGS]]);
    expect(await mintAndExchange(s, database)).toEqual({ mint: 200, exchange: 200 });
    await stop(s);
  });

  test('with every flag given on node\'s command line, serve does not replace itself', async () => {
    const s = await serve(envFor(database, { NODE_OPTIONS: `--import=${RECORD_RUNTIME}` }), [...SERVE_HEAP_FLAGS]);
    expect(runtimes(s).map((r) => r.execArgv)).toEqual([[...SERVE_HEAP_FLAGS]]);
    await stop(s);
  });
});
