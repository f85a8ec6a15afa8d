// A silent failover under load (issue 17), with real parts: a PostgreSQL
// primary and its streaming standby (own-postgres.ts), the service in
// production mode reaching them through a relay (relay.ts) that goes silent
// the way a dead host does, without FIN or RST. Under steady exchange, GET
// /id-token and mint load:
// 1. the relay silences every connection, open and new: requests in flight
//    and new ones get 503 within their deadline, /readyz says 503;
// 2. the relay points at the standby, still in recovery: the only server
//    left is read-only, and /readyz says so;
// 3. the standby is promoted: every kind of request succeeds again within
//    10 s, /readyz says 200, and every token a client received is on the new
//    primary with its audit row.
// The old connections stay silent forever, as after a real failover: only
// the service's own deadlines free them.
import pg from 'pg';
import { hashSecret } from '../../src/secrets/bearer-secrets.js';
import { connectionCountsOf, poolOf } from '../../src/store/prisma.js';
import { createTestDatabase, databaseUrl, type TestDatabase } from '../helpers/database.js';
import { postgresServerBinaries, startReplicatedPostgres, type ReplicatedPostgres } from '../helpers/own-postgres.js';
import { startRelay, type Relay } from '../helpers/relay.js';
import { addClient, basic, decodeJwt, EXCHANGE, MINT, REQUEST_TOKEN_TYPE, startTestService, type TestService } from '../helpers/service.js';
import { checkTool } from '../helpers/tools.js';
import { waitFor } from '../helpers/wait.js';

const hasServerBinaries = checkTool(postgresServerBinaries() !== undefined, 'PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup)', 'apt-get install -y postgresql, or set PG_BIN');
const test = hasServerBinaries ? global.test : global.test.skip;

const ACQUIRE_SECONDS = 1;
const STATEMENT_SECONDS = 2;
/**
 * The longest a request may wait on the database: a redeem waits for its
 * turn at most the acquire timeout, then for a connection as long, then its
 * statement runs until its deadline (statement timeout + 1 s).
 */
const REQUEST_DEADLINE_MS = (2 * ACQUIRE_SECONDS + STATEMENT_SECONDS + 1) * 1000;
/** The bound: no request unanswered longer than its deadline plus a second. */
const ANSWERED_WITHIN_MS = REQUEST_DEADLINE_MS + 1000;
/**
 * The clients run in this process, beside the service: a stall of its event
 * loop on a busy machine delays what their clocks measure, not the service's
 * answer (database-outage.test.ts saw 3 s at a load of 10). The service's own
 * measure, its request log line, is held to the bound exactly; the clients'
 * clocks with this slack, which still catches a hang.
 */
const CLIENT_SLACK_MS = 5_000;
/** The service's own time for every token request so far (its request log lines) is within the bound. */
function expectServiceAnsweredInTime(): void {
  const answers = t.logs.filter((l) => l.msg === 'request' && (l.route === 'token' || l.route === 'id-token'));
  expect(answers.length).toBeGreaterThan(0);
  expect(answers.filter((l) => (l.ms as number) > ANSWERED_WITHIN_MS).map((l) => ({ route: l.route, status: l.status, ms: l.ms }))).toEqual([]);
}
/** A client's own limit, far past any deadline: a request still open then is counted as unanswered. */
const CLIENT_GIVES_UP_MS = 30_000;

const UNAVAILABLE = {
  error: 'temporarily_unavailable',
  error_description: 'the token service cannot reach its database right now; retry after the Retry-After delay',
};

type Kind = 'exchange' | 'id-token' | 'mint';

interface Sample {
  kind: Kind;
  started: number;
  ended: number;
  status: number;
  body: unknown;
  retryAfter: string | null;
  jti?: string;
  requestToken?: string;
  failure?: string;
}

let repl: ReplicatedPostgres;
let database: TestDatabase;
let relay: Relay;
let t: TestService;
let secret: string;
const tokens: string[] = [];

beforeAll(async () => {
  if (!hasServerBinaries) return;
  repl = await startReplicatedPostgres();
  database = await createTestDatabase(repl.primary.url);
  relay = await startRelay(repl.primary.port, repl.primary.host);
  const viaRelay = new URL(databaseUrl(database.name, repl.primary.url));
  viaRelay.hostname = '127.0.0.1';
  viaRelay.port = String(relay.port);
  t = await startTestService(
    // A pool of 8 (the suite's default is 4): 6 clients, the readiness probe and the key watcher
    // never wait for a connection once the database is back, so the 1 s acquire timeout only acts
    // during the outage, not on a busy machine after it.
    { DATABASE_URL: viaRelay.toString(), DATABASE_ACQUIRE_TIMEOUT: String(ACQUIRE_SECONDS), DATABASE_STATEMENT_TIMEOUT: String(STATEMENT_SECONDS), KEY_CHECK_INTERVAL: '1', DATABASE_POOL_SIZE: '8' },
    database,
  );
  ({ secret } = await addClient(t));
  for (let i = 0; i < 8; i += 1) {
    const res = await call('mint', i);
    expect(res.status).toBe(200);
    tokens.push(res.requestToken!);
  }
}, 120_000);
afterAll(async () => {
  await t?.stop();
  await relay?.close();
  await database?.drop().catch(() => undefined);
  await repl?.destroy();
});

async function call(kind: Kind, i: number): Promise<Sample> {
  const started = Date.now();
  const signal = AbortSignal.timeout(CLIENT_GIVES_UP_MS);
  try {
    let res: Response;
    if (kind === 'id-token') {
      res = await fetch(`${t.url}/id-token?api-version=1`, { headers: { authorization: `Bearer ${tokens[i % tokens.length]}` }, signal });
    } else {
      const form: Record<string, string> =
        kind === 'exchange'
          ? { grant_type: EXCHANGE, client_id: 'jenkins-build', subject_token: tokens[i % tokens.length]!, subject_token_type: REQUEST_TOKEN_TYPE }
          : { grant_type: MINT, job: 'folder/app', build_number: String(i + 1), build_url: `https://jenkins.example.com/job/folder/job/app/${i + 1}/` };
      const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
      if (kind === 'mint') headers.authorization = basic('ci-main', secret);
      res = await fetch(`${t.url}/token`, { method: 'POST', headers, body: new URLSearchParams(form), signal });
    }
    const text = await res.text();
    const body = (text ? JSON.parse(text) : undefined) as Record<string, string> | undefined;
    const sample: Sample = { kind, started, ended: Date.now(), status: res.status, body, retryAfter: res.headers.get('retry-after') };
    if (res.status === 200 && kind === 'mint') sample.requestToken = body!.access_token;
    if (res.status === 200 && kind !== 'mint') sample.jti = decodeJwt(body!.access_token ?? body!.value!).payload.jti as string;
    return sample;
  } catch (err) {
    return { kind, started, ended: Date.now(), status: 0, body: undefined, retryAfter: null, failure: String((err as Error).cause ?? err) };
  }
}

async function readyz(): Promise<{ at: number; status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${t.url}/readyz`, { signal: AbortSignal.timeout(CLIENT_GIVES_UP_MS) });
  return { at: Date.now(), status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function lsn(url: string, sql: string): Promise<string> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<{ lsn: string }>(sql)).rows[0]!.lsn;
  } finally {
    await c.end();
  }
}

test('silence, a standby as the only server, promotion: 503s within the deadline, never a 500 or a hang, readiness 503 then 200, recovery within 10 s, every token audited', async () => {
  const kinds: Kind[] = ['exchange', 'exchange', 'id-token', 'id-token', 'mint', 'mint'];
  const every: Kind[] = ['exchange', 'id-token', 'mint'];
  const samples: Sample[] = [];
  const readiness: { at: number; status: number; body: Record<string, unknown> }[] = [];
  let running = true;
  const workers = kinds.map(async (kind, w) => {
    for (let i = w; running; i += kinds.length) samples.push(await call(kind, i));
  });
  const readyzPoller = (async () => {
    while (running) {
      readiness.push(await readyz());
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
  const seen = (kind: Kind, status: number, since: number) => samples.find((s) => s.kind === kind && s.started >= since && s.status === status);
  const detail = () => JSON.stringify({ last: samples.slice(-6), readyz: readiness.at(-1) });
  await waitFor('every kind served before the failover', () => every.every((k) => seen(k, 200, 0)), { detail });
  await waitFor('/readyz 200 before the failover', () => readiness.some((r) => r.status === 200));

  // 1. The primary's host goes silent: open connections and new ones.
  const silent = Date.now();
  relay.blackhole('both');
  await waitFor('a 503 for every kind', () => every.every((k) => seen(k, 503, silent)), { detail });
  await waitFor('/readyz 503', () => readiness.some((r) => r.at > silent && r.status === 503), { detail });

  // 2. The address now leads to the standby, not yet promoted (it has
  // replayed everything the primary committed: a careful failover waits so).
  const primaryLsn = await lsn(repl.primary.url, 'SELECT pg_current_wal_lsn()::text AS lsn');
  await waitFor('the standby to replay the primary\'s WAL', async () => {
    const replayed = await lsn(repl.standby.url, `SELECT (pg_last_wal_replay_lsn() >= '${primaryLsn}'::pg_lsn)::text AS lsn`);
    return replayed === 'true';
  });
  relay.pointAt(repl.standby.port, repl.standby.host);
  relay.pass();
  const onStandby = Date.now();
  const standbyReason = await waitFor('/readyz to name the standby', () =>
    readiness.find((r) => r.at > onStandby && r.body.reason === 'database unreachable: server in recovery (standby)'), { detail });
  await waitFor('a 503 for every kind while only the standby answers', () => every.every((k) => seen(k, 503, onStandby)), { detail });

  // 3. Promotion: pg_ctl promote -w returns once the server accepts writes.
  await repl.standby.promote();
  const up = Date.now();
  await waitFor('every kind served again', () => every.every((k) => seen(k, 200, up)), { detail });
  const back = Math.max(...every.map((k) => seen(k, 200, up)!.ended));
  await waitFor('every kind served once more', () => every.every((k) => seen(k, 200, back)), { detail });
  const ready = await waitFor('/readyz 200 again', () => readiness.find((r) => r.at > up && r.status === 200), { detail });
  // The key watcher's LISTEN connection went silent too: its heartbeat missed the deadline, and it listens on the new primary.
  const keyWatcher = t.service.watcher;
  await waitFor('the key watcher to listen again', () => keyWatcher.counts.reopened >= 1 && keyWatcher.listening, { detail: () => JSON.stringify(keyWatcher.counts) });
  running = false;
  await Promise.all([...workers, readyzPoller]);

  const recoveryMs = Object.fromEntries(every.map((k) => [k, seen(k, 200, up)!.ended - up]));
  const unavailable = samples.filter((s) => s.status === 503);
  const counts = connectionCountsOf(poolOf(t.service.database.db));
  console.log(JSON.stringify({
    requests: samples.length,
    ok: samples.filter((s) => s.status === 200).length,
    unavailable: unavailable.length,
    slowestMs: Math.max(...samples.map((s) => s.ended - s.started)),
    recoveryMsAfterPromotion: recoveryMs,
    readyMsAfterPromotion: ready.at - up,
    readyzReasons: [...new Set(readiness.filter((r) => r.status === 503).map((r) => r.body.reason))],
    connections: counts,
    relayAccepted: relay.accepted,
    keyWatcher: keyWatcher.counts,
    causes: t.logs.filter((l) => l.msg === 'database unavailable: answered 503').reduce<Record<string, number>>((n, l) => ({ ...n, [l.cause as string]: (n[l.cause as string] ?? 0) + 1 }), {}),
  }));

  // Only 200 or an exact 503, each within its deadline plus a second: no 500, no hang.
  expect(samples.filter((s) => s.status !== 200 && s.status !== 503).map((s) => ({ kind: s.kind, status: s.status, body: s.body, failure: s.failure }))).toEqual([]);
  for (const s of unavailable) expect({ kind: s.kind, body: s.body, retryAfter: s.retryAfter }).toEqual({ kind: s.kind, body: UNAVAILABLE, retryAfter: '3' });
  expectServiceAnsweredInTime();
  expect(samples.filter((s) => s.ended - s.started > ANSWERED_WITHIN_MS + CLIENT_SLACK_MS).map((s) => ({ kind: s.kind, status: s.status, ms: s.ended - s.started }))).toEqual([]);
  for (const kind of every) expect(recoveryMs[kind]).toBeLessThan(10_000);
  // Once every kind was served again, nothing failed any more.
  expect(samples.filter((s) => s.started >= back && s.status !== 200).map((s) => ({ kind: s.kind, status: s.status, body: s.body }))).toEqual([]);
  expect(standbyReason.status).toBe(503);
  expect(ready.body).toEqual({ status: 'ready', signing_kid: t.service.runtime.current.signer.kid });
  // The silent connections were destroyed by their deadlines, not left to TCP.
  expect(counts.deadlinesMissed).toBeGreaterThan(0);
  expect(counts.standbyRefused).toBeGreaterThan(0);
  expect(t.logs.filter((l) => l.msg === 'unexpected error' || (l.level === 50 && String(l.msg).includes('server_error')))).toEqual([]);

  // Every token a client received is on the new primary: ID tokens with their audit row, request tokens with theirs.
  const promoted = new pg.Client({ connectionString: databaseUrl(database.name, repl.standby.url) });
  await promoted.connect();
  try {
    const jtis = samples.filter((s) => s.jti).map((s) => s.jti!);
    expect(new Set(jtis).size).toBe(jtis.length);
    const issued = await promoted.query<{ jti: string }>(`SELECT jti FROM audit_events WHERE event = 'id_token.issued' AND jti = ANY($1)`, [jtis]);
    expect(issued.rows.map((r) => r.jti).sort()).toEqual([...jtis].sort());
    const minted = samples.filter((s) => s.requestToken).map((s) => hashSecret(s.requestToken!));
    const rows = await promoted.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM request_tokens rt JOIN audit_events a ON a.request_token_id = rt.id AND a.event = 'request_token.issued' WHERE rt.token_hash = ANY($1)`,
      [minted],
    );
    expect(rows.rows[0]!.n).toBe(minted.length);
    expect(jtis.length).toBeGreaterThan(0);
    // Statements lost mid-flight are on record, and none of their tokens reached a client.
    await t.service.audit.flush();
    const unknown = await promoted.query<{ event: string; ids: string[]; cause: string }>(
      `SELECT event, detail->'ids' AS ids, detail->>'cause' AS cause FROM audit_events WHERE event LIKE '%.commit_unknown'`,
    );
    console.log(JSON.stringify({ commitUnknown: unknown.rows.map((r) => ({ event: r.event, ids: r.ids.length, cause: r.cause })) }));
    const mintedIds = await promoted.query<{ id: string }>('SELECT id FROM request_tokens WHERE token_hash = ANY($1)', [minted]);
    const received = new Set([...jtis, ...mintedIds.rows.map((r) => r.id)]);
    expect(unknown.rows.flatMap((r) => r.ids).filter((id) => received.has(id))).toEqual([]);
  } finally {
    await promoted.end();
  }
}, 180_000);

test('only the open connections go silent, new ones reach the same server (issue 17\'s first finding): every kind is served again within a statement deadline, nothing hangs', async () => {
  // After the first test the relay leads to the promoted standby; any live primary will do.
  relay.pass();
  const kinds: Kind[] = ['exchange', 'exchange', 'id-token', 'id-token', 'mint', 'mint'];
  const every: Kind[] = ['exchange', 'id-token', 'mint'];
  const samples: Sample[] = [];
  let running = true;
  const workers = kinds.map(async (kind, w) => {
    for (let i = w; running; i += kinds.length) samples.push(await call(kind, i));
  });
  const seen = (kind: Kind, status: number, since: number) => samples.find((s) => s.kind === kind && s.started >= since && s.status === status);
  const detail = () => JSON.stringify({ last: samples.slice(-6) });
  await waitFor('every kind served', () => every.every((k) => seen(k, 200, 0)), { detail });
  const before = connectionCountsOf(poolOf(t.service.database.db)).deadlinesMissed;

  const silent = Date.now();
  relay.blackhole('existing');
  await waitFor('every kind served on a new connection', () => every.every((k) => seen(k, 200, silent)), { detail });
  const back = Math.max(...every.map((k) => seen(k, 200, silent)!.ended));
  await waitFor('every kind served once more', () => every.every((k) => seen(k, 200, back)), { detail });
  running = false;
  await Promise.all(workers);

  const after = samples.filter((s) => s.started >= silent);
  console.log(JSON.stringify({
    existingSilenced: { requests: after.length, ok: after.filter((s) => s.status === 200).length, unavailable: after.filter((s) => s.status === 503).length, servedAgainMs: back - silent, slowestMs: Math.max(...after.map((s) => s.ended - s.started)) },
  }));
  expect(samples.filter((s) => s.status !== 200 && s.status !== 503).map((s) => ({ kind: s.kind, status: s.status, failure: s.failure }))).toEqual([]);
  expectServiceAnsweredInTime();
  expect(samples.filter((s) => s.ended - s.started > ANSWERED_WITHIN_MS + CLIENT_SLACK_MS).map((s) => ({ kind: s.kind, status: s.status, ms: s.ended - s.started }))).toEqual([]);
  // Before issue 17: no exchange for as long as TCP took to give up (about 15 minutes).
  expect(back - silent).toBeLessThan(REQUEST_DEADLINE_MS + 10_000);
  expect(connectionCountsOf(poolOf(t.service.database.db)).deadlinesMissed).toBeGreaterThan(before);
  expect(samples.filter((s) => s.started >= back && s.status !== 200).map((s) => ({ kind: s.kind, status: s.status, body: s.body }))).toEqual([]);
}, 120_000);

test('200 ms added to every packet each way: every kind of request is served, none cut by a deadline', async () => {
  relay.pass();
  // On the connections open now and on new ones alike.
  relay.delay(200);
  const samples: Sample[] = [];
  for (let i = 0; i < 2; i += 1) for (const kind of ['exchange', 'id-token', 'mint'] as Kind[]) samples.push(await call(kind, i));
  relay.delay(0);
  console.log(JSON.stringify({ delayed200ms: samples.map((s) => ({ kind: s.kind, status: s.status, ms: s.ended - s.started })) }));
  expect(samples.map((s) => [s.kind, s.status])).toEqual(samples.map((s) => [s.kind, 200]));
  // Each crossed the delay (a round trip is 400 ms) and none waited for a deadline (2 s + 1 s).
  for (const s of samples) expect(s.ended - s.started).toBeGreaterThanOrEqual(400);
  expect(samples.filter((s) => s.ended - s.started >= STATEMENT_SECONDS * 1000).map((s) => ({ kind: s.kind, ms: s.ended - s.started }))).toEqual([]);
}, 120_000);
