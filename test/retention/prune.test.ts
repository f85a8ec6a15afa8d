// The data lifecycle on a real database, with the clock passed in: rows are
// written at chosen times and exactly the ones past their retention go, in
// bounded batches, under one cluster-wide lock.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { pruneExpiredData, pruneUnderLock, RETENTION_LOCK } from '../../src/retention/prune.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';

const DAY = 86400;
const NOW = new Date('2027-03-01T12:00:00.000Z');
const ago = (seconds: number, ms = 0) => new Date(NOW.getTime() - seconds * 1000 - ms);
const retention = { auditRetention: 400 * DAY, requestTokenRetention: 7 * DAY };

let d: TestDatabase;
beforeEach(async () => {
  d = await createTestDatabase();
  await d.query(`INSERT INTO clients (name, jenkins_url, audiences, sub_claims, max_request_token_ttl, secret_hash, secret_prefix, secret_last4)
                 VALUES ('ci-main', 'https://jenkins.example.com', '{sts.amazonaws.com}', '{jenkins_instance,job}', 3600, 'x', 'jocs_', 'abcd')`);
});
afterEach(async () => d.drop());

async function auditAt(at: Date): Promise<string> {
  const [row] = await d.query<{ id: string }>(
    `INSERT INTO audit_events (at, event, client_name, job) VALUES ($1, 'id_token.issued', 'ci-main', 'team/app') RETURNING id::text`,
    [at],
  );
  return row!.id;
}

async function tokenExpiring(expiresAt: Date): Promise<string> {
  const id = randomUUID();
  await d.query(
    `INSERT INTO request_tokens (id, token_hash, client_name, job, build_number, claims, audiences, created_at, expires_at)
     VALUES ($1, $2, 'ci-main', 'team/app', 1, '{}', '{sts.amazonaws.com}', $3, $3)`,
    [id, `hash-${id}`, expiresAt],
  );
  return id;
}

const auditIds = async () => (await d.query<{ id: string }>('SELECT id::text FROM audit_events ORDER BY id')).map((r) => r.id);
const tokenIds = async () => (await d.query<{ id: string }>('SELECT id FROM request_tokens ORDER BY expires_at')).map((r) => r.id);

test('deletes exactly the audit rows older than AUDIT_RETENTION and the tokens expired longer than REQUEST_TOKEN_RETENTION ago', async () => {
  await auditAt(ago(500 * DAY));
  await auditAt(ago(400 * DAY, 1));
  const boundary = await auditAt(ago(400 * DAY));
  const recent = await auditAt(ago(399 * DAY));
  const current = await auditAt(NOW);
  await tokenExpiring(ago(8 * DAY));
  await tokenExpiring(ago(7 * DAY, 1));
  const justInGrace = await tokenExpiring(ago(7 * DAY));
  const expiredYesterday = await tokenExpiring(ago(DAY));
  const live = await tokenExpiring(new Date(NOW.getTime() + 3600_000));

  const result = await pruneExpiredData(d.db, retention, { now: NOW, pauseMs: 0 });

  expect(result).toEqual({
    dryRun: false,
    stopped: false,
    auditEvents: { retention: 400 * DAY, before: '2026-01-25T12:00:00.000Z', rows: 2, batches: 1 },
    requestTokens: { retention: 7 * DAY, before: '2027-02-22T12:00:00.000Z', rows: 2, batches: 1 },
  });
  expect(await auditIds()).toEqual([boundary, recent, current]);
  expect(await tokenIds()).toEqual([justInGrace, expiredYesterday, live]);
});

test('deletes in batches of the given size, pausing between them, until nothing is due', async () => {
  const due: string[] = [];
  for (let i = 0; i < 23; i++) due.push(await auditAt(ago(401 * DAY, i)));
  const kept = [await auditAt(ago(DAY)), await auditAt(NOW)];
  for (let i = 0; i < 10; i++) await tokenExpiring(ago(30 * DAY, i));
  const live = await tokenExpiring(new Date(NOW.getTime() + 60_000));

  const progress: [string, number][] = [];
  const started = Date.now();
  const result = await pruneExpiredData(d.db, retention, { now: NOW, batchSize: 5, pauseMs: 20, onBatch: (table, rows) => progress.push([table, rows]) });
  const elapsed = Date.now() - started;

  expect(result.auditEvents).toMatchObject({ rows: 23, batches: 5 });
  // 10 rows in batches of 5: the third statement finds nothing and ends the loop.
  expect(result.requestTokens).toMatchObject({ rows: 10, batches: 3 });
  expect(progress).toEqual([
    ['audit_events', 5], ['audit_events', 10], ['audit_events', 15], ['audit_events', 20], ['audit_events', 23],
    ['request_tokens', 5], ['request_tokens', 10], ['request_tokens', 10],
  ]);
  // A pause before every statement but the first: 7 pauses of 20 ms.
  expect(elapsed).toBeGreaterThanOrEqual(7 * 20);
  expect(await auditIds()).toEqual(kept);
  expect(await tokenIds()).toEqual([live]);
});

test('0 keeps every row, however old', async () => {
  const ids = [await auditAt(ago(10_000 * DAY)), await auditAt(ago(401 * DAY)), await auditAt(NOW)];
  const tokens = [await tokenExpiring(ago(10_000 * DAY)), await tokenExpiring(ago(8 * DAY))];

  const result = await pruneExpiredData(d.db, { auditRetention: 0, requestTokenRetention: 0 }, { now: NOW });

  expect(result).toEqual({
    dryRun: false,
    stopped: false,
    auditEvents: { retention: 0, before: null, rows: 0, batches: 0 },
    requestTokens: { retention: 0, before: null, rows: 0, batches: 0 },
  });
  expect(await auditIds()).toEqual(ids);
  expect(await tokenIds()).toEqual(tokens);
});

test('one table kept forever, the other pruned', async () => {
  const oldAudit = await auditAt(ago(500 * DAY));
  await tokenExpiring(ago(8 * DAY));
  const result = await pruneExpiredData(d.db, { auditRetention: 0, requestTokenRetention: 7 * DAY }, { now: NOW });
  expect([result.auditEvents.rows, result.requestTokens.rows]).toEqual([0, 1]);
  expect(await auditIds()).toEqual([oldAudit]);
  expect(await tokenIds()).toEqual([]);
});

test('a dry run counts what is due and deletes nothing', async () => {
  const ids = [await auditAt(ago(500 * DAY)), await auditAt(ago(401 * DAY)), await auditAt(NOW)];
  const tokens = [await tokenExpiring(ago(8 * DAY)), await tokenExpiring(NOW)];

  const result = await pruneExpiredData(d.db, retention, { now: NOW, dryRun: true });

  expect(result).toEqual({
    dryRun: true,
    stopped: false,
    auditEvents: { retention: 400 * DAY, before: '2026-01-25T12:00:00.000Z', rows: 2, batches: 0 },
    requestTokens: { retention: 7 * DAY, before: '2027-02-22T12:00:00.000Z', rows: 1, batches: 0 },
  });
  expect(await auditIds()).toEqual(ids);
  expect(await tokenIds()).toEqual(tokens);
});

test('asked to stop, it ends after the statement under way and says rows are left', async () => {
  for (let i = 0; i < 12; i++) await auditAt(ago(401 * DAY, i));
  await tokenExpiring(ago(8 * DAY));
  let batches = 0;
  const result = await pruneExpiredData(d.db, retention, { now: NOW, batchSize: 5, pauseMs: 0, onBatch: () => batches++, shouldStop: () => batches >= 2 });
  expect(result).toMatchObject({ stopped: true, auditEvents: { rows: 10, batches: 2 }, requestTokens: { rows: 0, batches: 0 } });
  expect(await auditIds()).toHaveLength(2);
  expect(await tokenIds()).toHaveLength(1);
});

test('the oldest due rows go first, whatever order they were written in', async () => {
  const audit: Record<number, string> = {};
  for (const days of [405, 401, 403, 402, 404]) audit[days] = await auditAt(ago(days * DAY));
  const tokens: Record<number, string> = {};
  for (const days of [10, 8, 12, 9]) tokens[days] = await tokenExpiring(ago(days * DAY));

  let batches = 0;
  const one = { now: NOW, batchSize: 2, pauseMs: 0, onBatch: () => batches++, shouldStop: () => batches >= 1 };
  expect(await pruneExpiredData(d.db, { auditRetention: 400 * DAY, requestTokenRetention: 0 }, one)).toMatchObject({ stopped: true, auditEvents: { rows: 2 } });
  expect(await auditIds()).toEqual([audit[401], audit[403], audit[402]]);
  batches = 0;
  expect(await pruneExpiredData(d.db, { auditRetention: 0, requestTokenRetention: 7 * DAY }, one)).toMatchObject({ stopped: true, requestTokens: { rows: 2 } });
  expect(await tokenIds()).toEqual([tokens[9], tokens[8]]);
});

test('under the lock: a process that finds it taken prunes nothing, and prunes once it is free', async () => {
  const kept = await auditAt(NOW);
  await auditAt(ago(401 * DAY));
  const other = new pg.Client({ connectionString: d.url });
  await other.connect();
  try {
    await other.query('BEGIN');
    await other.query('SELECT pg_advisory_xact_lock($1)', [RETENTION_LOCK]);
    expect(await pruneUnderLock({ db: d.db, url: d.url }, retention, { now: NOW })).toBeUndefined();
    expect(await auditIds()).toHaveLength(2);
    await other.query('COMMIT');
  } finally {
    await other.end();
  }
  const result = await pruneUnderLock({ db: d.db, url: d.url }, retention, { now: NOW });
  expect(result?.auditEvents.rows).toBe(1);
  expect(await auditIds()).toEqual([kept]);
  // The lock is given back at the end of the run: a second run takes it again.
  expect(await pruneUnderLock({ db: d.db, url: d.url }, retention, { now: NOW })).toMatchObject({ auditEvents: { rows: 0 } });
});
