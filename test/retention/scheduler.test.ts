// The retention schedule as `serve` runs it: on N replicas at once exactly one
// prunes, it logs what it deleted, it runs on its own, and it stops promptly.
//
// Where a test needs a run to be under way at a given moment, it holds row
// locks on the due rows: the run's DELETE waits on them, inside its run, for
// as long as the test needs, however slow the machine. Nothing here waits a
// fixed time.
import pg from 'pg';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/logger.js';
import { RetentionScheduler } from '../../src/retention/scheduler.js';
import { type Db } from '../../src/store/prisma.js';
import { createTestDatabase, testPrisma, type TestDatabase } from '../helpers/database.js';
import { waitFor } from '../helpers/wait.js';

const DAY = 86400;
const retention = { auditRetention: 400 * DAY, requestTokenRetention: 7 * DAY };

let d: TestDatabase;
beforeEach(async () => {
  d = await createTestDatabase();
});
afterEach(async () => d.drop());

function memoryLogger() {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { logger: createLogger('debug', sink), lines };
}

/** `due` audit rows 401 days old and `kept` from an hour ago; returns the kept ids. */
async function seed(due: number, kept: number): Promise<string[]> {
  await d.query(`INSERT INTO audit_events (at, event) SELECT now() - interval '401 days' - i * interval '1 ms', 'id_token.issued' FROM generate_series(1, $1) i`, [due]);
  const rows = await d.query<{ id: string }>(`INSERT INTO audit_events (at, event) SELECT now() - interval '1 hour', 'id_token.issued' FROM generate_series(1, $1) RETURNING id::text`, [kept]);
  return rows.map((r) => r.id);
}
const remaining = async () => (await d.query<{ id: string }>('SELECT id::text FROM audit_events ORDER BY id')).map((r) => r.id);

/** Locks every due audit row in a transaction of its own, until release(): a prune's DELETE waits on them. */
async function lockDueRows(): Promise<{ release(): Promise<void> }> {
  const c = new pg.Client({ connectionString: d.url });
  await c.connect();
  await c.query('BEGIN');
  await c.query("SELECT id FROM audit_events WHERE at < now() - interval '400 days' FOR UPDATE");
  return {
    release: async () => {
      await c.query('ROLLBACK');
      await c.end();
    },
  };
}

/** A DELETE of this database's waiting on a row lock: the run is under way and held there. */
const deleteWaiting = async () =>
  (await d.query("SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'DELETE FROM audit_events%'")).length > 0;

test('two replicas ticking at once: exactly one prunes, every due row goes once, and it logs how many', async () => {
  const kept = await seed(10, 2);
  const other: Db = testPrisma(d.url, 2);
  const a = memoryLogger();
  const b = memoryLogger();
  const options = { databaseUrl: d.url, retention, batchSize: 2, pauseMs: 0 };
  const replicas = [
    new RetentionScheduler({ ...options, db: d.db, logger: a.logger }),
    new RetentionScheduler({ ...options, db: other, logger: b.logger }),
  ];
  // The winner (whichever takes the cluster lock first) waits on the locked
  // rows while holding it, until the loser has given up.
  const rows = await lockDueRows();
  try {
    const ticks = replicas.map((r) => r.tick());
    const first = await Promise.race(ticks);
    expect(first).toBeUndefined();
    await waitFor('the winner\'s DELETE waiting on the locked rows', deleteWaiting);
    await rows.release();
    const results = await Promise.all(ticks);
    const ran = results.filter((r) => r !== undefined);
    expect(ran).toHaveLength(1);
    expect(ran[0]).toMatchObject({ auditEvents: { rows: 10, batches: 6 }, requestTokens: { rows: 0, batches: 1 } });
    expect(await remaining()).toEqual(kept);

    const winner = results[0] ? a.lines : b.lines;
    const loser = results[0] ? b.lines : a.lines;
    expect(winner.filter((l) => l.msg === 'retention: deleted expired rows')).toEqual([
      expect.objectContaining({
        level: 30,
        audit_events_deleted: 10,
        request_tokens_deleted: 0,
        audit_retention: '400d',
        request_token_retention: '7d',
        batches: 7,
        stopped: false,
      }),
    ]);
    expect(loser.map((l) => l.msg)).toEqual(['retention: another replica is pruning; skipped']);
  } finally {
    await rows.release().catch(() => undefined);
    await Promise.all(replicas.map((r) => r.stop()));
    await other.$disconnect();
  }
});

test('started, it prunes on its own after the first delay and then every interval', async () => {
  const kept = await seed(3, 1);
  const { logger, lines } = memoryLogger();
  const scheduler = new RetentionScheduler({ db: d.db, databaseUrl: d.url, retention, logger, firstDelayMs: 10, intervalMs: 50 });
  scheduler.start();
  // The log line comes once a round is over (rows are gone a moment earlier).
  const rounds = () => lines.filter((l) => l.msg === 'retention: deleted expired rows').map((l) => l.audit_events_deleted);
  const roundsDone = (n: number) => waitFor(`${n} round(s) that deleted rows`, () => rounds().length >= n);
  try {
    await roundsDone(1);
    expect(await remaining()).toEqual(kept);
    await seed(2, 0);
    await roundsDone(2);
    expect(await remaining()).toEqual(kept);
    expect(rounds()).toEqual([3, 2]);
  } finally {
    await scheduler.stop();
  }
});

test('stop() during a run returns after the statement under way, with rows left for next time', async () => {
  await seed(20, 0);
  const { logger } = memoryLogger();
  const scheduler = new RetentionScheduler({ db: d.db, databaseUrl: d.url, retention, logger, batchSize: 2, pauseMs: 0 });
  // The run's first DELETE is under way (waiting on the locked rows) when stop() is called.
  const rows = await lockDueRows();
  try {
    const run = scheduler.tick();
    await waitFor('the first DELETE under way', deleteWaiting);
    let stopped = false;
    const stopping = scheduler.stop().then(() => (stopped = true));
    // stop() waits for the statement under way...
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);
    await rows.release();
    await stopping;
    // ...and no more: that one batch went, the other 18 rows are left for next time.
    const result = await run;
    expect(result).toMatchObject({ stopped: true, auditEvents: { rows: 2, batches: 1 }, requestTokens: { rows: 0, batches: 0 } });
    expect(await remaining()).toHaveLength(18);
    // Stopped, it does not run again.
    expect(await scheduler.tick()).toBeUndefined();
  } finally {
    await rows.release().catch(() => undefined);
  }
});

test('with both retentions 0 it never runs', async () => {
  await seed(2, 0);
  const all = await remaining();
  const { logger, lines } = memoryLogger();
  const scheduler = new RetentionScheduler({ db: d.db, databaseUrl: d.url, retention: { auditRetention: 0, requestTokenRetention: 0 }, logger, firstDelayMs: 0 });
  scheduler.start();
  expect(await scheduler.tick()).toBeUndefined();
  // A round started by start() (firstDelayMs 0) would be under way once a
  // timer of the same delay set after it has fired, and stop() would wait for it.
  await new Promise((resolve) => setTimeout(resolve, 0));
  await scheduler.stop();
  expect(await remaining()).toEqual(all);
  expect(lines).toEqual([]);
});
