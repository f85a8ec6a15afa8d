// The exchange's redeem statement, batched: redeems that arrive while a
// statement runs go together in the next one. Each caller must get exactly the
// answer it would have had alone, and the audit rows must be exactly those of
// the ID tokens about to be issued: no more, no fewer.
import { randomUUID } from 'node:crypto';
import { registerClient, setClientEnabled } from '../../src/clients/commands.js';
import type { BuildClaims } from '../../src/claims/build-claims.js';
import { MAX_STATEMENTS, RedeemQueue, RedeemWaitTimeout, redeemQueueOf, redeemRequestToken, type RedeemInput } from '../../src/request-tokens/redeem.js';
import { databaseUnavailable } from '../../src/store/connectivity.js';
import { createRequestToken, revokeRequestToken } from '../../src/request-tokens/store.js';
import { closePrisma, createPrisma, poolOf, type Db } from '../../src/store/prisma.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../helpers/wait.js';

let database: TestDatabase;

function claimsOf(client: string, build: number): BuildClaims {
  return {
    sub: `job:team/app:ref:refs/heads/main`,
    jenkins_instance: client,
    jenkins_url: 'https://jenkins.example.com/',
    job: 'team/app',
    build_number: build,
    build_url: `https://jenkins.example.com/job/team/job/app/${build}/`,
  };
}

interface Minted { token: string; id: string; expiresAt: Date; client: string; build: number }

async function mint(client: string, build: number, ttl = 600): Promise<Minted> {
  const minted = await createRequestToken(database.db, { clientName: client, claims: claimsOf(client, build), audiences: ['sts.amazonaws.com', 'other.example.com'], ttl, remoteAddr: '10.0.0.1' });
  return { ...minted, client, build };
}

/** The exact answer of a redeem that issued, for a token minted above. */
function issued(t: Minted, audience = 'sts.amazonaws.com') {
  return { ok: true, requestTokenId: t.id, claims: claimsOf(t.client, t.build), audience, expiresAt: t.expiresAt };
}

function input(token: string, audience?: string): RedeemInput {
  return { token, audience, jti: randomUUID(), kid: 'kid-1', remoteAddr: '10.0.0.2' };
}

const issuedRows = (jtis: string[]) =>
  database.query<{ jti: string; request_token_id: string; audience: string; client_name: string; build_number: number; kid: string; remote_addr: string; detail: unknown }>(
    `SELECT jti, request_token_id, audience, client_name, build_number, kid, remote_addr, detail FROM audit_events
     WHERE event = 'id_token.issued' AND jti = ANY($1) ORDER BY build_number, jti`,
    [jtis],
  );

beforeAll(async () => {
  database = await createTestDatabase();
  await registerClient(database.db, { name: 'ci-main', jenkinsUrl: 'https://jenkins.example.com' }, 86400);
  await registerClient(database.db, { name: 'ci-off', jenkinsUrl: 'https://jenkins.example.com' }, 86400);
});
afterAll(async () => database.drop());

test('ten redeems at once: the first two go alone, the other eight in one statement; each gets its own answer and row', async () => {
  const queue = new RedeemQueue(poolOf(database.db));
  const tokens = await Promise.all(Array.from({ length: 10 }, (_, i) => mint('ci-main', 100 + i)));
  const inputs = tokens.map((t) => input(t.token));
  const results = await Promise.all(inputs.map((i) => queue.redeem(i)));

  expect(MAX_STATEMENTS).toBe(2);
  expect(queue.counts).toEqual({ statements: 3, redeems: 10 });
  expect(queue.backlog).toBe(0);
  results.forEach((r, i) => {
    expect(r).toEqual(issued(tokens[i]!));
  });
  const rows = await issuedRows(inputs.map((i) => i.jti));
  expect(rows).toEqual(tokens.map((t, i) => ({
    jti: inputs[i]!.jti, request_token_id: t.id, audience: 'sts.amazonaws.com', client_name: 'ci-main', build_number: 100 + i, kid: 'kid-1', remote_addr: '10.0.0.2',
    detail: { sub: 'job:team/app:ref:refs/heads/main' },
  })));
});

test('one batch, every outcome: each caller gets the refusal it would have had alone, and only the issued ones have rows', async () => {
  const queue = new RedeemQueue(poolOf(database.db));
  const live = await mint('ci-main', 200);
  const revoked = await mint('ci-main', 201);
  await revokeRequestToken(database.db, revoked.token, { by: 'ci-main', remoteAddr: undefined });
  const expired = await mint('ci-main', 202);
  await database.query(`UPDATE request_tokens SET expires_at = now() - interval '1 second' WHERE id = $1`, [expired.id]);
  const disabled = await mint('ci-off', 203);
  await setClientEnabled(database.db, 'ci-off', false);

  // Two fillers take both statement slots, so the six below share one statement.
  const fillers = [await mint('ci-main', 210), await mint('ci-main', 211)].map((t) => input(t.token));
  const cases = [
    input(live.token, 'other.example.com'),
    input(live.token), // the same token twice in one batch: two ID tokens, two rows
    input(revoked.token),
    input(expired.token),
    input(disabled.token),
    input(live.token, 'evil.example.com'),
    input('jrt_' + 'a'.repeat(43)),
  ];
  const all = await Promise.all([...fillers, ...cases].map((i) => queue.redeem(i)));
  expect(queue.counts).toEqual({ statements: 3, redeems: 9 });

  const [, , otherAud, firstAud, rev, exp, off, wrongAud, unknown] = all;
  expect(otherAud).toEqual(issued(live, 'other.example.com'));
  expect(firstAud).toEqual(issued(live));
  const audiences = ['sts.amazonaws.com', 'other.example.com'];
  expect(rev).toEqual({ ok: false, reason: 'revoked', requestTokenId: revoked.id, clientName: 'ci-main', claims: claimsOf('ci-main', 201), audience: 'sts.amazonaws.com', audiences });
  expect(exp).toEqual({ ok: false, reason: 'expired', requestTokenId: expired.id, clientName: 'ci-main', claims: claimsOf('ci-main', 202), audience: 'sts.amazonaws.com', audiences });
  expect(off).toEqual({ ok: false, reason: 'client_disabled', requestTokenId: disabled.id, clientName: 'ci-off', claims: claimsOf('ci-off', 203), audience: 'sts.amazonaws.com', audiences });
  expect(wrongAud).toEqual({ ok: false, reason: 'audience', requestTokenId: live.id, clientName: 'ci-main', claims: claimsOf('ci-main', 200), audience: 'evil.example.com', audiences });
  expect(unknown).toEqual({ ok: false, reason: 'unknown' });

  const rows = await issuedRows(cases.map((i) => i.jti));
  expect(rows.map((r) => [r.jti, r.request_token_id, r.audience])).toEqual(
    [[cases[0]!.jti, live.id, 'other.example.com'], [cases[1]!.jti, live.id, 'sts.amazonaws.com']].sort((a, b) => (a[0]! < b[0]! ? -1 : 1)),
  );
});

test('an input the server refuses fails only its own caller: the others of its batch are redeemed one by one', async () => {
  const queue = new RedeemQueue(poolOf(database.db));
  const fillers = [await mint('ci-main', 300), await mint('ci-main', 301)].map((t) => input(t.token));
  const good = await Promise.all([mint('ci-main', 302), mint('ci-main', 303)]);
  // A NUL byte: PostgreSQL refuses the whole statement (22021). The service's
  // edge refuses control characters long before; this is the queue's own guard.
  const poisoned = input(good[0]!.token, 'sts.amazonaws.com\u0000');
  const batch = [input(good[0]!.token), poisoned, input(good[1]!.token)];
  const settled = await Promise.allSettled([...fillers, ...batch].map((i) => queue.redeem(i)));

  expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
  expect((settled[3] as PromiseRejectedResult).reason).toMatchObject({ code: '22021' });
  expect((settled[2] as PromiseFulfilledResult<unknown>).value).toEqual(issued(good[0]!));
  expect((settled[4] as PromiseFulfilledResult<unknown>).value).toEqual(issued(good[1]!));
  // The batch of three, refused, then each alone.
  expect(queue.counts).toEqual({ statements: 6, redeems: 8 });
  const rows = await issuedRows(batch.map((i) => i.jti));
  expect(rows.map((r) => r.jti).sort()).toEqual([batch[0]!.jti, batch[2]!.jti].sort());
});

test('a batch that fails without the server refusing it (a lost connection) fails every caller and retries none', async () => {
  const port = Number(new URL(database.url).port || 5432);
  const proxy = await startTcpProxy(port);
  const url = new URL(database.url);
  url.port = String(proxy.port);
  // A 5 s connect timeout: a connection through the blackholed proxy fails
  // within it, and the batch waiting behind the first two statements (the
  // same bound, from when it was queued) is still waiting when the proxy
  // drops them, even on a busy machine (2 s left it little room).
  const db: Db = createPrisma(url.toString(), 4, 5);
  const locker = await poolOf(database.db).connect();
  try {
    // The first two statements' connections, opened before the clock starts.
    await Promise.all([poolOf(db).query('SELECT 1'), poolOf(db).query('SELECT 1')]);
    const queue = redeemQueueOf(db);
    expect(redeemQueueOf(db)).toBe(queue);
    const token = await mint('ci-main', 400);
    // The table locked: the first two statements wait on the server until the proxy drops them.
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE audit_events IN EXCLUSIVE MODE');
    const inputs = [input(token.token), input(token.token), input(token.token), input(token.token)];
    const pending = Promise.allSettled(inputs.map((i) => redeemRequestToken(db, i)));
    await waitFor('the first two statements waiting on the lock', async () =>
      (await database.query(`SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = 'jenkins-oidc' AND datname = current_database()`)).length >= 2);
    expect(queue.backlog).toBe(2);
    // Both connections dropped; the last two, sent together, never get a connection.
    proxy.setMode('blackhole');
    const settled = await pending;
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    for (const s of settled) expect((s as PromiseRejectedResult).reason).not.toHaveProperty('code', expect.stringMatching(/^[0-9A-Z]{5}$/));
    // Not tried again one by one: four redeems, three statements.
    expect(queue.counts).toEqual({ statements: 3, redeems: 4 });

    proxy.setMode('pass');
    await locker.query('ROLLBACK');
    const again = input(token.token);
    expect(await redeemRequestToken(db, again)).toEqual(issued(token));
    expect((await issuedRows([again.jti])).map((r) => r.jti)).toEqual([again.jti]);
    // The batch never reached the server. (The first two did: a server that
    // had not noticed the dropped connection may still commit their rows.)
    expect(await issuedRows(inputs.slice(2).map((i) => i.jti))).toEqual([]);
  } finally {
    locker.release();
    await closePrisma(db);
    await proxy.close();
  }
});

test('a redeem waits for a statement no longer than for a pooled connection; past it, the database counts as unavailable', async () => {
  // DATABASE_ACQUIRE_TIMEOUT 1 s: the pool's bound is the queue's.
  const db: Db = createPrisma(database.url, 4, 1);
  const locker = await poolOf(database.db).connect();
  try {
    // The first two statements' connections, opened before the clock starts: a connect slower
    // than the 1 s bound on a busy machine would fail them instead of leaving them on the lock.
    await Promise.all([poolOf(db).query('SELECT 1'), poolOf(db).query('SELECT 1')]);
    const queue = redeemQueueOf(db);
    const token = await mint('ci-main', 500);
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE audit_events IN EXCLUSIVE MODE');
    // The first two statements wait on the lock, as on a stalled server; the third redeem waits for them.
    const inputs = [input(token.token), input(token.token), input(token.token)];
    const started = performance.now();
    const pending = inputs.map((i) => redeemRequestToken(db, i));
    const third = await pending[2]!.then(() => 'resolved', (err: unknown) => err);
    const waited = performance.now() - started;

    expect(third).toBeInstanceOf(RedeemWaitTimeout);
    expect(databaseUnavailable(third)).toBe('statement wait timeout');
    // It waited its bound, and the bound ended the wait: the statements ahead of it are still stuck on the lock.
    expect(waited).toBeGreaterThanOrEqual(990);
    expect(queue.counts).toEqual({ statements: 2, redeems: 2 });
    expect(queue.backlog).toBe(0);

    await locker.query('ROLLBACK');
    const [first, second] = await Promise.all(pending.slice(0, 2));
    expect(first).toEqual(issued(token));
    expect(second).toEqual(issued(token));
    expect((await issuedRows(inputs.map((i) => i.jti))).map((r) => r.jti).sort()).toEqual([inputs[0]!.jti, inputs[1]!.jti].sort());
  } finally {
    locker.release();
    await closePrisma(db);
  }
});

test('a batch the server ends for another reason than its inputs (57P01, a backend terminated) fails every caller and retries none', async () => {
  const db: Db = createPrisma(database.url, 4, 5);
  const locker = await poolOf(database.db).connect();
  const lockWaiters = () => database.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND application_name = 'jenkins-oidc' AND datname = current_database() ORDER BY query_start DESC`,
  );
  const untilWaiters = async (n: number) => {
    await waitFor(`${n} statements waiting on the lock`, async () => (await lockWaiters()).length >= n);
    return lockWaiters();
  };
  try {
    const queue = redeemQueueOf(db);
    const token = await mint('ci-main', 600);
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE audit_events IN EXCLUSIVE MODE');
    const inputs = [input(token.token), input(token.token), input(token.token), input(token.token)];
    const pending = Promise.allSettled(inputs.map((i) => redeemRequestToken(db, i)));
    // The first two, alone, wait on the lock; ending one lets the other two go, together.
    const [one] = await untilWaiters(2);
    await database.query('SELECT pg_terminate_backend($1)', [one!.pid]);
    await waitFor('the third statement', () => queue.counts.statements >= 3);
    expect(queue.counts).toEqual({ statements: 3, redeems: 4 });
    const [batch] = await untilWaiters(2);
    await database.query('SELECT pg_terminate_backend($1)', [batch!.pid]);
    await waitFor('the terminated batch to be gone', async () => queue.backlog + (await lockWaiters()).length <= 1);
    await locker.query('ROLLBACK');
    const settled = await pending;

    // One of the first two was ended alone, the batch of two together; the other one went through.
    expect(settled.map((s) => s.status).sort()).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected']);
    for (const s of settled) if (s.status === 'rejected') expect(s.reason).toMatchObject({ code: '57P01' });
    expect(settled[2]!.status).toBe('rejected');
    expect(settled[3]!.status).toBe('rejected');
    for (const s of settled) if (s.status === 'fulfilled') expect(s.value).toEqual(issued(token));
    // Not tried again one by one: still three statements.
    expect(queue.counts).toEqual({ statements: 3, redeems: 4 });
    const done = inputs.filter((_, i) => settled[i]!.status === 'fulfilled').map((i) => i.jti);
    expect((await issuedRows(inputs.map((i) => i.jti))).map((r) => r.jti)).toEqual(done);
  } finally {
    locker.release();
    await closePrisma(db);
  }
});
