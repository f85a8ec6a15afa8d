// The abuse limits against the attacks that stepped around them (issue 18),
// on the real service over real sockets: spoofed X-Forwarded-For, bodies that
// never come, revocation as a trust launderer, a valid token that keeps
// failing, and clients that go away mid-request. Distinct callers are
// distinct loopback source addresses (127.0.0.0/8 is all local on Linux), or
// distinct addresses a trusted proxy reports.
import http from 'node:http';
import net from 'node:net';
import pg from 'pg';
import { createTestDatabase } from '../helpers/database.js';
import { sampleValue } from '../helpers/metrics.js';
import { addClient, basic, BUILD, MINT, postForm, REQUEST_TOKEN_TYPE, EXCHANGE, startTestService, type TestService } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: http.IncomingHttpHeaders;
}

/** One request from a chosen loopback source address, with the headers given. */
function request(t: TestService, opts: { path: string; method?: string; from?: string; headers?: Record<string, string>; body?: string }): Promise<Answer> {
  const url = new URL(t.url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: url.hostname, port: url.port, path: opts.path, method: opts.method ?? 'GET', localAddress: opts.from ?? '127.0.0.1', agent: false, headers: opts.headers },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

const form = (fields: Record<string, string>) => new URLSearchParams(fields).toString();
const formHeaders = (body: string, extra: Record<string, string> = {}) => ({ 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)), ...extra });

function idToken(t: TestService, token: string, opts: { from?: string; forwardedFor?: string; audience?: string } = {}) {
  const headers: Record<string, string> = { authorization: `Bearer ${token}` };
  if (opts.forwardedFor) headers['x-forwarded-for'] = opts.forwardedFor;
  return request(t, { path: `/id-token?api-version=1&audience=${encodeURIComponent(opts.audience ?? 'sts.amazonaws.com')}`, from: opts.from, headers });
}

async function mintToken(t: TestService, auth: string, headers: Record<string, string> = {}): Promise<string> {
  const res = await postForm(`${t.url}/token`, { grant_type: MINT, ...BUILD }, { authorization: auth, ...headers });
  expect(res.status).toBe(200);
  return res.json.access_token as string;
}

/** Sends a POST's headers from a chosen source address, announcing a body it never sends; resolves with the raw answer once the server closes. */
function silentBody(t: TestService, from: string): Promise<string> {
  const url = new URL(t.url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: url.hostname, port: Number(url.port), localAddress: from });
    let raw = '';
    socket.on('data', (c) => (raw += c));
    socket.on('close', () => resolve(raw));
    socket.on('error', () => undefined);
    socket.write(`POST /token HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 16000\r\n\r\n`);
  });
}

/** The status code of a raw HTTP answer (0: the connection closed without one). */
const statusOf = (raw: string) => Number(raw.split(' ')[1] ?? 0);

const tally = (answers: Answer[]) => answers.reduce<Record<number, number>>((acc, a) => ({ ...acc, [a.status]: (acc[a.status] ?? 0) + 1 }), {});

describe('spoofed addresses behind a trusted proxy (TRUST_PROXY=1)', () => {
  let t: TestService;
  let auth: string;
  beforeAll(async () => {
    t = await startTestService({ TRUST_PROXY: '1', FAILED_ATTEMPTS_PER_MINUTE: '30' });
    auth = basic('ci-main', (await addClient(t)).secret);
  });
  afterAll(async () => t.stop());

  test('a fresh left-most X-Forwarded-For per request changes nothing: the address the proxy appended is spent, stored, and alone in the trail', async () => {
    const build = await mintToken(t, auth, { 'x-forwarded-for': '203.0.113.5' });
    const answers: Answer[] = [];
    const started = performance.now();
    for (let i = 0; i < 120; i++) {
      answers.push(await idToken(t, `jort_${String(i).padStart(43, 'x')}`, { forwardedFor: `10.${i}.0.1, 198.51.100.7` }));
      // A build behind another address is served throughout.
      if (i % 10 === 0) expect((await idToken(t, build, { forwardedFor: '203.0.113.5' })).status).toBe(200);
    }
    const refill = Math.ceil((performance.now() - started) / 2000);
    const counts = tally(answers);
    expect(counts[401]).toBeGreaterThanOrEqual(30);
    expect(counts[401]).toBeLessThanOrEqual(30 + refill);
    expect(counts[429]).toBe(120 - counts[401]!);
    // 4 KB of caller-written header to the left: never stored.
    for (let i = 0; i < 50; i++) await idToken(t, 'jort_junk', { forwardedFor: `${'x'.repeat(4000)}, 198.51.100.8` });
    await t.service.audit.flush(true);
    const rows = await t.database.query<{ remote_addr: string; n: number; text: number }>(
      "SELECT remote_addr, count(*)::int AS n, max(length(detail::text))::int AS text FROM audit_events WHERE event LIKE '%.refused' GROUP BY remote_addr ORDER BY remote_addr",
    );
    expect(rows.map((r) => r.remote_addr)).toEqual(['198.51.100.7', '198.51.100.8']);
    // (401, 429) in at most two minute windows each.
    for (const r of rows) expect(r.n).toBeLessThanOrEqual(4);
    for (const r of rows) expect(r.text).toBeLessThan(400);
  });
});

describe('bodies that never come', () => {
  let t: TestService;
  let auth: string;
  beforeAll(async () => {
    // 5 s: every one of the 64 sockets has sent its headers long before the first 408 frees a
    // slot, even on a busy machine, so the split below is exact (2 s left a busy machine little room).
    t = await startTestService({ MAX_IN_FLIGHT: '16', REQUEST_BODY_TIMEOUT: '5s', FAILED_ATTEMPTS_PER_MINUTE: '1000' });
    auth = basic('ci-main', (await addClient(t)).secret);
  });
  afterAll(async () => t.stop());


  test('64 sockets that send headers and no body from one address: 16 wait and get 408, the rest 429 at once; every build meanwhile gets its token', async () => {
    const token = await mintToken(t, auth);
    const slow = Array.from({ length: 64 }, () => silentBody(t, '127.0.0.2'));
    // The legitimate build, from another address, while they hang.
    const legit: number[] = [];
    for (let i = 0; i < 40; i++) {
      const body = form({ grant_type: EXCHANGE, client_id: 'jenkins-build', subject_token: token, subject_token_type: REQUEST_TOKEN_TYPE });
      legit.push((await request(t, { path: '/token', method: 'POST', from: '127.0.0.3', headers: formHeaders(body), body })).status);
    }
    expect(legit).toEqual(Array(40).fill(200));
    const raws = await Promise.all(slow);
    expect(raws.filter((r) => statusOf(r) === 429)).toHaveLength(48);
    expect(raws.filter((r) => statusOf(r) === 408)).toHaveLength(16);
    expect(raws.find((r) => statusOf(r) === 408)).toContain('{"error":"invalid_request","error_description":"the request body did not arrive within 5 s of its headers"}');
    expect(raws.find((r) => statusOf(r) === 429)).toContain('"error":"slow_down","error_description":"this address has 16 requests still sending their bodies; finish those first"');
  });
});

describe('trust is earned by a proof of possession only', () => {
  let t: TestService;
  let auth: string;
  beforeAll(async () => {
    t = await startTestService({ FAILED_ATTEMPTS_PER_MINUTE: '10' });
    auth = basic('ci-main', (await addClient(t, 'ci-main', { audiences: ['sts.amazonaws.com', 'vault'] })).secret);
  });
  afterAll(async () => t.stop());

  test('revoking an unknown token answers 200 (RFC 7009) but is charged, and the junk never becomes a credential that worked', async () => {
    const junk = `jort_${'j'.repeat(43)}`;
    const revoked = await request(t, { path: '/token/revocation', method: 'POST', from: '127.0.0.4', headers: formHeaders(form({ client_id: 'jenkins-build', token: junk })), body: form({ client_id: 'jenkins-build', token: junk }) });
    expect(revoked.status).toBe(200);
    const answers: Answer[] = [];
    const started = performance.now();
    while (answers.length < 30 && !answers.some((a) => a.status === 429)) answers.push(await idToken(t, junk, { from: '127.0.0.4' }));
    // 10 attempts a minute: the revocation spent one; one more back for every 6 s the loop took.
    const refill = Math.ceil((performance.now() - started) / 6000);
    expect(answers.at(-1)!.status).toBe(429);
    expect(answers.slice(0, -1).every((a) => a.status === 401)).toBe(true);
    expect(answers.length - 1).toBeGreaterThanOrEqual(9);
    expect(answers.length - 1).toBeLessThanOrEqual(9 + refill);
  });

  test('a valid token that keeps asking for audiences it lacks gets 429 after its budget, its refusals are a few rows, and another build is unharmed', async () => {
    const token = await mintToken(t, auth);
    const other = await mintToken(t, auth);
    expect((await idToken(t, token, { from: '127.0.0.5' })).status).toBe(200);
    const answers: Answer[] = [];
    const started = performance.now();
    for (let i = 0; i < 40; i++) answers.push(await idToken(t, token, { from: '127.0.0.5', audience: `not-allowed-${i}` }));
    // The credential's budget: 10 a minute, one more back for every 6 s the loop took.
    const refill = Math.ceil((performance.now() - started) / 6000);
    const counts = tally(answers);
    expect(counts[400]).toBeGreaterThanOrEqual(10);
    expect(counts[400]).toBeLessThanOrEqual(10 + refill);
    expect(counts[429]).toBe(40 - counts[400]!);
    expect(answers.find((a) => a.status === 429)!.body).toEqual({ error: 'slow_down', error_description: expect.stringMatching(/^too many failed attempts with this credential; retry in \d+ s$/) });
    // The same address, another build's token: served.
    expect((await idToken(t, other, { from: '127.0.0.5' })).status).toBe(200);
    await t.service.audit.flush(true);
    const rows = await t.database.query<{ request_token_id: string; count: number; audience: string }>(
      "SELECT request_token_id, (detail->>'count')::int AS count, audience FROM audit_events WHERE event = 'id_token.refused' AND remote_addr = '127.0.0.5' ORDER BY id",
    );
    expect(rows.length).toBeLessThanOrEqual(2);
    expect(rows.reduce((n, r) => n + r.count, 0)).toBe(counts[400]);
    expect(new Set(rows.map((r) => r.request_token_id)).size).toBe(1);
    expect(rows[0]!.audience).toBe('not-allowed-0');
  });
});

describe('a client that goes away', () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService({ METRICS_PORT: '0' });
    await addClient(t);
  });
  afterAll(async () => t.stop());

  test('mid-body is a client abort (counted, logged at debug), not a database outage, and the service serves on', async () => {
    const url = new URL(t.url);
    const metric = async () => sampleValue(await (await fetch(t.service.metricsUrl!)).text(), 'jenkins_oidc_client_aborts_total') ?? 0;
    const before = await metric();
    await new Promise<void>((resolve) => {
      const socket = net.connect({ host: url.hostname, port: Number(url.port) }, () => {
        socket.write(`POST /token HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=`);
        // Some of the body, then gone (RST, as a killed client).
        setImmediate(() => socket.resetAndDestroy());
      });
      socket.on('close', () => resolve());
      socket.on('error', () => undefined);
    });
    await waitFor('the abort to be counted', async () => (await metric()) === before + 1);
    expect(t.logs.filter((l) => l.msg === 'database unavailable: answered 503' || (l.msg === 'request' && l.route === 'token'))).toEqual([]);
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
  });
});

describe('every attack at once', () => {
  let t: TestService;
  let auth: string;
  beforeAll(async () => {
    t = await startTestService({ TRUST_PROXY: '1', MAX_IN_FLIGHT: '16', REQUEST_BODY_TIMEOUT: '2s', FAILED_ATTEMPTS_PER_MINUTE: '30', METRICS_PORT: '0' });
    auth = basic('ci-main', (await addClient(t)).secret);
  });
  afterAll(async () => t.stop());


  test('spoofed headers, slow bodies and a readiness flood together: the honest build gets every token, each attack meets its own limit', async () => {
    const build = await mintToken(t, auth, { 'x-forwarded-for': '203.0.113.5' });
    const probes = async () => sampleValue(await (await fetch(t.service.metricsUrl!)).text(), 'jenkins_oidc_readiness_probes_total') ?? 0;
    const probesBefore = await probes();
    const floodStarted = performance.now();
    let attacking = true;
    // 1. A readiness flood: 100 keep-alive clients looping /readyz from one address.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 100, localAddress: '127.0.0.4' });
    const readiness: number[] = [];
    const url = new URL(t.url);
    const readyz = () =>
      new Promise<number>((resolve) => {
        const req = http.get({ host: url.hostname, port: url.port, path: '/readyz', agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode!));
        });
        req.on('error', () => resolve(0));
      });
    const flood = Array.from({ length: 100 }, async () => {
      while (attacking) readiness.push(await readyz());
    });
    // 2. Slow bodies: 64 sockets from one address that never send theirs.
    const slow = Array.from({ length: 64 }, async () => statusOf(await silentBody(t, '127.0.0.2')));
    // 3. Spoofed addresses: junk tokens, a fresh left-most X-Forwarded-For each, through the "proxy" at 198.51.100.7.
    const spoofed: number[] = [];
    let spoofSeconds = 0;
    const spoofing = (async () => {
      const started = performance.now();
      for (let i = 0; attacking && i < 200; i++) spoofed.push((await idToken(t, `jort_${String(i).padStart(43, 'y')}`, { from: '127.0.0.5', forwardedFor: `10.${i % 250}.0.1, 198.51.100.7` })).status);
      spoofSeconds = (performance.now() - started) / 1000;
    })();
    // The honest build, behind the proxy at its own address, while all three run.
    await waitFor('the readiness flood to be under way', () => readiness.length >= 200);
    const honest: number[] = [];
    for (let i = 0; i < 40; i++) honest.push((await idToken(t, build, { forwardedFor: '203.0.113.5' })).status);
    attacking = false;
    await Promise.all([...flood, spoofing]);
    agent.destroy();
    const slowStatuses = await Promise.all(slow);
    const floodSeconds = (performance.now() - floodStarted) / 1000;
    const count = (statuses: number[]) => statuses.reduce<Record<number, number>>((acc, s) => ({ ...acc, [s]: (acc[s] ?? 0) + 1 }), {});
    // Every /readyz of the flood shared one database probe a second at most.
    expect(readiness.length).toBeGreaterThanOrEqual(200);
    const probesRun = (await probes()) - probesBefore;
    expect(probesRun).toBeLessThanOrEqual(Math.ceil(floodSeconds) + 1);
    // The figures, for the record (issue 18's note).
    console.log(`every attack at once, ${floodSeconds.toFixed(1)} s: ${readiness.length} /readyz on ${probesRun} database probes; spoofed ${JSON.stringify(count(spoofed))}; slow bodies ${JSON.stringify(count(slowStatuses))}; honest ${JSON.stringify(count(honest))}`);

    expect(count(honest)).toEqual({ 200: 40 });
    // Readiness stayed true (nothing is wrong with the service) at any rate.
    expect(count(readiness)).toEqual({ 200: readiness.length });
    // The spoofer's budget is the proxy-appended address's: 30 refusals, then 429s, and one more
    // refusal for every 2 s the spoofer kept going (the budget refills at 30 a minute). Its run
    // time grows with the machine's load, so the bound is worked out from it (10 s quiet: 35).
    expect(spoofed.filter((s) => s === 401).length).toBeGreaterThanOrEqual(30);
    expect(spoofed.filter((s) => s === 401).length).toBeLessThanOrEqual(30 + Math.ceil(spoofSeconds / 2) + 1);
    expect(spoofed.filter((s) => s !== 401 && s !== 429)).toEqual([]);
    // Slow bodies: at most 16 at a time wait out the body deadline (408), the others are turned
    // away at once (429). On a busy machine the 64 connect over more than the 2 s deadline, so a
    // later one may find a slot freed by an earlier 408: the sum is exact, the split is not.
    const slowCounts = count(slowStatuses);
    expect(slowCounts[408]! + slowCounts[429]!).toBe(64);
    expect(slowCounts[408]).toBeGreaterThanOrEqual(16);
    expect(slowCounts[429]).toBeGreaterThanOrEqual(1);
    // The trail: the spoofer is one address (the appended one); the forged ones are nowhere.
    await t.service.audit.flush(true);
    const addresses = await t.database.query<{ remote_addr: string }>("SELECT DISTINCT remote_addr FROM audit_events WHERE event LIKE '%.refused' ORDER BY 1");
    expect(addresses.map((r) => r.remote_addr)).toEqual(['198.51.100.7']);
  }, 180_000);
});

describe('a lock the token path cannot get', () => {
  let t: TestService;
  let auth: string;
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    database = await createTestDatabase();
    // Every connection the service opens gives up on a lock after 300 ms with 55P03
    // (an operator's lock_timeout), well before its statements' own deadline.
    await database.query(`ALTER DATABASE ${database.name} SET lock_timeout = '300ms'`);
    t = await startTestService({ DATABASE_STATEMENT_TIMEOUT: '60' }, database);
    auth = basic('ci-main', (await addClient(t)).secret);
  });
  afterAll(async () => {
    await t.stop();
    await database.drop();
  });

  test('55P03 (lock not available) is a 503 with Retry-After that issues nothing, never a 500; the next request is served', async () => {
    const token = await mintToken(t, auth);
    const exchange = () => {
      const body = form({ grant_type: EXCHANGE, client_id: 'jenkins-build', subject_token: token, subject_token_type: REQUEST_TOKEN_TYPE });
      return request(t, { path: '/token', method: 'POST', headers: formHeaders(body), body });
    };
    const issued = async () => (await t.database.query<{ n: number }>("SELECT count(*)::int AS n FROM audit_events WHERE event = 'id_token.issued'"))[0]!.n;
    const before = await issued();
    // Someone holds the audit trail (a long maintenance statement, say).
    const blocker = new pg.Client({ connectionString: t.database.url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE audit_events IN EXCLUSIVE MODE');
      const answers = [await exchange(), await idToken(t, token), await request(t, { path: '/token', method: 'POST', headers: { ...formHeaders(form({ grant_type: MINT, ...BUILD })), authorization: auth }, body: form({ grant_type: MINT, ...BUILD }) })];
      for (const a of answers) {
        expect(a.status).toBe(503);
        expect(a.body).toEqual({ error: 'temporarily_unavailable', error_description: 'the token service cannot reach its database right now; retry after the Retry-After delay' });
        expect(Number(a.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      }
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
    expect(await issued()).toBe(before);
    // The cause is in the log, named (the answer keeps it to itself).
    expect(t.logs.filter((l) => String(l.cause ?? '').includes('lock_not_available (55P03)')).length).toBeGreaterThanOrEqual(3);
    expect(t.logs.filter((l) => l.level === 50)).toEqual([]);
    expect((await exchange()).status).toBe(200);
    expect(await issued()).toBe(before + 1);
  });
});
