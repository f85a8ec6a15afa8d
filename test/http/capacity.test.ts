// A bounded cost per process (issue 11): past MAX_CONNECTIONS, MAX_IN_FLIGHT
// or DATABASE_MAX_QUEUE the service answers 503 at once, writes nothing, and
// serves again as soon as the load is gone; health checks are never refused.
// And discovery and JWKS are sent from memory before the app.
import net from 'node:net';
import pg from 'pg';
import type { Histogram } from 'prom-client';
import { poolOf } from '../../src/store/prisma.js';
import { EXCHANGE, REQUEST_TOKEN_TYPE as RTT, postForm, startWithToken, type TestService } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';

const BUSY = {
  error: 'temporarily_unavailable',
  error_description: '',
};

function connect(url: string): Promise<net.Socket> {
  const { port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(port), '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Everything the server sends on `socket` until it closes it (or, a bound for a broken service, `ms` pass). */
function readUntilClosed(socket: net.Socket, ms = 30_000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    let text = '';
    const timer = setTimeout(() => resolve({ text, closed: false }), ms);
    socket.on('data', (d) => (text += d.toString()));
    socket.once('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
  });
}

/** Connections the service has open (each one's 'close' has run once it is gone). */
function openConnections(t: TestService): Promise<number> {
  return new Promise((resolve, reject) => t.service.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
}

async function counts(t: TestService) {
  const [row] = await t.database.query('SELECT (SELECT count(*) FROM request_tokens)::int AS tokens, (SELECT count(*) FROM audit_events)::int AS audit');
  return row;
}

async function overloadCounter(t: TestService): Promise<Record<string, number>> {
  const metric = await t.service.metrics.registry.getSingleMetric('jenkins_oidc_overload_refusals_total')!.get();
  return Object.fromEntries(metric.values.map((v) => [String(v.labels.cap), v.value]));
}

const exchangeForm = (token: string) => ({ grant_type: EXCHANGE, client_id: 'jenkins-build', subject_token: token, subject_token_type: RTT });

describe('MAX_CONNECTIONS', () => {
  let t: TestService;
  beforeAll(async () => {
    ({ t } = await startWithToken({ MAX_CONNECTIONS: '3' }));
  });
  afterAll(async () => t.stop());

  test('the connection past the cap gets a 503 and is closed; a freed slot serves again', async () => {
    // The set-up's keep-alive connections: closed, so the test's own are the only ones.
    t.service.server.closeIdleConnections();
    await waitFor('the set-up\'s connections to close', async () => (await openConnections(t)) === 0);
    const held = await Promise.all([connect(t.url), connect(t.url), connect(t.url)]);
    const extra = await connect(t.url);
    extra.write('GET /jwks HTTP/1.1\r\nHost: x\r\n\r\n');
    const { text, closed } = await readUntilClosed(extra);
    const body = JSON.stringify({ error: 'temporarily_unavailable', error_description: 'this server has too many open connections; retry shortly' });
    expect(closed).toBe(true);
    expect(text).toBe(
      'HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\nRetry-After: 1\r\nConnection: close\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    expect(await overloadCounter(t)).toEqual({ connections: 1 });
    expect(t.logs.filter((l) => l.msg === 'over capacity: answered 503').map((l) => [l.cap, l.limit, l.refused])).toEqual([['connections', 3, 1]]);

    for (const s of held) s.destroy();
    await waitFor('the held connections to close on the service\'s side', async () => (await openConnections(t)) === 0);
    const res = await fetch(`${t.url}/healthz`);
    expect(res.status).toBe(200);
  });
});

describe('MAX_IN_FLIGHT', () => {
  let t: TestService;
  let token: string;
  beforeAll(async () => {
    // The held exchanges wait on a lock for as long as the test's steps take:
    // neither cancelled by the statement timeout nor counted as stalled by /readyz.
    ({ t, token } = await startWithToken({ MAX_IN_FLIGHT: '2', DATABASE_STATEMENT_TIMEOUT: '60', DATABASE_ACQUIRE_TIMEOUT: '60' }));
  });
  afterAll(async () => t.stop());

  test('past the cap a token request gets 503 at once and writes nothing; health and JWKS still answer', async () => {
    // Two requests held in flight while the service works on them: their
    // exchanges wait for a lock the test holds on the audit table. (A request
    // still sending its body is not counted: see abuse-attacks.test.ts.)
    const form = new URLSearchParams(exchangeForm(token)).toString();
    const blocker = new pg.Client({ connectionString: t.database.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE audit_events IN EXCLUSIVE MODE');
    const slow = await Promise.all([connect(t.url), connect(t.url)]);
    const answers = slow.map((s) => readUntilClosed(s));
    for (const s of slow) {
      s.write(`POST /token HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: ${form.length}\r\n\r\n${form}`);
    }
    await waitFor('both requests in flight', () => t.service.frontDoor.requestsInFlight === 2);
    const before = await counts(t);

    const refused = await fetch(`${t.url}/token`, { method: 'POST', body: form, headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(await refused.json()).toEqual({ ...BUSY, error_description: 'this server is working on 2 requests already; retry shortly' });
    expect(await counts(t)).toEqual(before);
    expect(await overloadCounter(t)).toEqual({ in_flight: 1 });

    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${t.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${t.url}/jwks`)).status).toBe(200);

    // The held requests finish; the next one is served.
    await blocker.query('ROLLBACK');
    await blocker.end();
    const done = await Promise.all(answers);
    expect(done.map((d) => d.text.split('\r\n')[0])).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
    await waitFor('no request in flight', () => t.service.frontDoor.requestsInFlight === 0);
    const again = await postForm(`${t.url}/token`, exchangeForm(token));
    expect(again.status).toBe(200);
  });
});

describe('DATABASE_MAX_QUEUE', () => {
  let t: TestService;
  let token: string;
  beforeAll(async () => {
    // The longest acquire timeout: the queued request waits for the held connection however slow the test's own steps are.
    ({ t, token } = await startWithToken({ DATABASE_POOL_SIZE: '1', DATABASE_MAX_QUEUE: '1', DATABASE_ACQUIRE_TIMEOUT: '60' }));
  });
  afterAll(async () => t.stop());

  test('with the queue full a token request gets 503 at once; the queued one is served when the database frees up', async () => {
    const pool = poolOf(t.service.database.db);
    // The pool's only connection, held: the next query waits in the queue.
    const held = await pool.connect();
    const queued = postForm(`${t.url}/token`, exchangeForm(token));
    await waitFor('the exchange waiting for the pool', () => pool.waitingCount === 1);

    // At once: answered while the pool's only connection is still held (a
    // request that had queued would get its connection, or the acquire
    // timeout's other 503, only after that), and without joining the queue.
    const refused = await fetch(`${t.url}/id-token?audience=sts.amazonaws.com`, { headers: { authorization: `Bearer ${token}` } });
    expect(refused.status).toBe(503);
    expect(await refused.json()).toEqual({ ...BUSY, error_description: 'this server is waiting for the database on too many requests already; retry shortly' });
    expect(pool.waitingCount).toBe(1);
    expect(await overloadCounter(t)).toEqual({ database_queue: 1 });
    // Not a database route: served from memory whatever the queue.
    expect((await fetch(`${t.url}/.well-known/openid-configuration`)).status).toBe(200);

    held.release();
    expect((await queued).status).toBe(200);
  });
});

describe('discovery and JWKS from memory', () => {
  let t: TestService;
  beforeAll(async () => {
    ({ t } = await startWithToken());
  });
  afterAll(async () => t.stop());

  test.each([
    ['/jwks', () => t.service.runtime.current.jwksJson, 'jwks'],
    ['/.well-known/openid-configuration', () => t.service.runtime.current.discoveryJson, 'discovery'],
  ])('GET and HEAD %s: the rendered bytes with their headers, counted in the metrics', async (path, json, route) => {
    const res = await fetch(`${t.url}${path}`);
    const body = await res.text();
    expect(res.status).toBe(200);
    expect(body).toBe(json());
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    expect(res.headers.get('content-length')).toBe(String(Buffer.byteLength(body)));

    const head = await fetch(`${t.url}${path}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(Buffer.byteLength(body)));
    expect(await head.text()).toBe('');

    // With a query it is the app's route: the same document.
    const viaApp = await fetch(`${t.url}${path}?x=1`);
    expect(await viaApp.text()).toBe(json());

    const metric = await (t.service.metrics.registry.getSingleMetric('jenkins_oidc_http_request_duration_seconds') as Histogram<string>).get();
    const count = metric.values.find((v) => v.metricName === 'jenkins_oidc_http_request_duration_seconds_count' && v.labels.route === route && v.labels.method === 'GET');
    expect(count?.value).toBe(2);
  });
});
