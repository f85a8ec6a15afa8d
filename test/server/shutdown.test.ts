// Shutdown (issue 9): `jenkins-oidc serve` as a real process, real keep-alive
// clients on loopback. On SIGTERM (or SIGINT) /readyz answers 503 at once,
// the service keeps serving through SHUTDOWN_GRACE with `Connection: close`,
// then closes the listener, answers what is in flight, and exits 0 — no
// accepted request is reset, and idle keep-alive connections do not hold it
// for keepAliveTimeout (65 s).
//
// The load clients behave as a load balancer's traffic does: they keep going
// until the balancer (polling /readyz like an ALB health check) has seen the
// 503, then a little longer (its detection delay), then stop sending here.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { registerClient } from '../../src/clients/commands.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServe, type ServeProcess } from '../helpers/cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { basic, freePort, MINT } from '../helpers/service.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Outcome {
  path: string;
  started: number;
  ended: number;
  status?: number;
  connection?: string;
  /** ECONNRESET / "socket hang up" / ECONNREFUSED ... */
  error?: string;
  reused: boolean;
}

function get(base: string, path: string, agent: http.Agent | false, headers: Record<string, string> = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const started = Date.now();
    const req = http.get(`${base}${path}`, { agent, headers }, (res) => {
      res.resume();
      res.on('end', () => resolve({ path, started, ended: Date.now(), status: res.statusCode, connection: res.headers.connection, reused: req.reusedSocket }));
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ path, started, ended: Date.now(), error: err.code ?? err.message, reused: req.reusedSocket }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ path, started, ended: Date.now(), error: err.code ?? err.message, reused: req.reusedSocket }));
  });
}

async function getJson(base: string, path: string): Promise<{ status: number; body: unknown } | { error: string }> {
  return new Promise((resolve) => {
    const req = http.get(`${base}${path}`, { agent: false }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
  });
}

const isReset = (o: Outcome) => o.error === 'ECONNRESET' || o.error === 'socket hang up' || o.error === 'EPIPE';

interface Service {
  serve: ServeProcess;
  base: string;
  requestToken: string;
  secret: string;
}

let database: TestDatabase;
// One database for the file, so one key-encryption key for every service on it.
const KEK = randomBytes(32).toString('base64');
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

async function startService(env: Record<string, string>): Promise<Service> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const serve = await startServe({
    DATABASE_URL: database.url,
    KEY_ENCRYPTION_KEY: KEK,
    ISSUER: base,
    ALLOW_INSECURE_ISSUER: 'true',
    PORT: String(port),
    DATABASE_POOL_SIZE: '4',
    ...env,
  });
  expect(serve.output()).toContain('"msg":"jenkins-oidc listening"');
  const name = `ci-${randomBytes(4).toString('hex')}`;
  const { secret } = await registerClient(database.db, { name, jenkinsUrl: 'https://jenkins.example.com' }, 86400);
  const minted = await fetch(`${base}/token`, {
    method: 'POST',
    headers: { authorization: basic(name, secret), 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: MINT, job: 'app', build_number: '1', build_url: 'https://jenkins.example.com/job/app/1/' }),
  });
  expect(minted.status).toBe(200);
  const requestToken = ((await minted.json()) as { access_token: string }).access_token;
  return { serve, base, requestToken, secret: `${name}:${secret}` };
}

async function stopLeftover(s: Service | undefined) {
  if (s && s.serve.child.exitCode === null && s.serve.child.signalCode === null) {
    s.serve.child.kill('SIGKILL');
    await s.serve.exited;
  }
}

/**
 * A POST /token mint whose body arrives in two halves: the first before the
 * listener closes, the second after. The request was accepted, so it must be
 * answered, not reset.
 */
function slowMint(s: Service) {
  const [name, secret] = s.secret.split(':') as [string, string];
  const body = new URLSearchParams({ grant_type: MINT, job: 'app', build_number: '2', build_url: 'https://jenkins.example.com/job/app/2/' }).toString();
  const url = new URL(s.base);
  const socket = net.connect(Number(url.port), url.hostname);
  let raw = '';
  socket.on('data', (c) => (raw += c));
  const answered = new Promise<{ raw: string; error?: string }>((resolve) => {
    socket.on('close', () => resolve({ raw }));
    socket.on('error', (err: NodeJS.ErrnoException) => resolve({ raw, error: err.code }));
  });
  const half = Math.floor(body.length / 2);
  socket.write(
    `POST /token HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: ${basic(name, secret)}\r\n` +
      `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, half)}`,
  );
  return { finish: () => socket.write(body.slice(half)), answered };
}

async function refused(base: string): Promise<boolean> {
  const r = await get(base, '/healthz', false);
  return r.error === 'ECONNREFUSED';
}

describe.each(['SIGTERM', 'SIGINT'] as const)('%s under keep-alive load', (signal) => {
  let s: Service | undefined;
  afterAll(() => stopLeftover(s));

  test(`/readyz 503 at once, served through the grace with Connection: close, in-flight answered, no reset, exit 0`, async () => {
    const GRACE = 3;
    s = await startService({ SHUTDOWN_GRACE: String(GRACE), SHUTDOWN_TIMEOUT: '10' });
    const service = s;
    const outcomes: Outcome[] = [];
    let balancerSaw503At: number | undefined;
    let signalled = Infinity;
    let sending = true;
    // The balancer's health check: fresh connection every 100 ms.
    const health: { started: number; at: number; status?: number; body?: unknown; error?: string }[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const started = Date.now();
        const r = await getJson(service.base, '/readyz');
        health.push({ started, at: Date.now(), ...r });
        if ('status' in r && r.status === 503 && balancerSaw503At === undefined) {
          balancerSaw503At = Date.now();
          // Detection delay (1 s, but inside the grace even on a loaded
          // machine); then traffic goes elsewhere.
          const stopAt = Math.min(balancerSaw503At + 1000, signalled + GRACE * 1000 - 1000);
          setTimeout(() => (sending = false), Math.max(0, stopAt - Date.now()));
        }
        if ('error' in r) break;
        await sleep(100);
      }
    })();
    const clients = [
      { path: '/jwks', headers: {} },
      { path: '/jwks', headers: {} },
      { path: '/id-token?api-version=1', headers: { authorization: `Bearer ${service.requestToken}` } },
      { path: '/id-token?api-version=1', headers: { authorization: `Bearer ${service.requestToken}` } },
    ].map(({ path, headers }) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      return (async () => {
        while (sending) outcomes.push(await get(service.base, path, agent, headers));
        agent.destroy();
      })();
    });

    await sleep(1000);
    signalled = Date.now();
    service.serve.child.kill(signal);
    // An accepted request whose body is still arriving when the listener closes.
    await sleep(GRACE * 1000 - 1000);
    const slow = slowMint(service);
    while (!(await refused(service.base))) await sleep(50);
    const listenerClosed = Date.now();
    slow.finish();
    const [code, slowAnswer] = await Promise.all([service.serve.exited, slow.answered]);
    const exited = Date.now();
    polling = false;
    sending = false;
    await Promise.all([poller, ...clients]);

    const afterSignal = outcomes.filter((o) => o.started >= signalled + 500);
    const firstUnready = health.find((h) => h.status === 503);
    if (!firstUnready) throw new Error(`/readyz never answered 503: ${JSON.stringify(health)}`);
    console.log(JSON.stringify({
      signal,
      shutdownMs: exited - signalled,
      readyz503AfterMs: firstUnready.at - signalled,
      listenerClosedAfterMs: listenerClosed - signalled,
      requests: outcomes.length,
      servedAfterSignal: outcomes.filter((o) => o.started >= signalled && o.status === 200).length,
      resets: outcomes.filter(isReset).length,
      errors: outcomes.filter((o) => o.error).map((o) => o.error),
    }));

    expect(code).toBe(0);
    // /readyz: ready before the signal, then 503 "shutting down" at once, and on until the listener closed.
    expect(health.filter((h) => h.at < signalled).every((h) => h.status === 200)).toBe(true);
    expect(firstUnready.body).toEqual({ status: 'unavailable', reason: 'shutting down' });
    // "At once": the flag is set in the signal handler; 500 ms covers signal
    // delivery and one event-loop turn on a loaded 2-core machine.
    const askedAfter = health.filter((h) => h.started >= signalled + 500 && h.status !== undefined);
    expect(askedAfter.length).toBeGreaterThan(0);
    expect(askedAfter.filter((h) => h.status !== 503)).toEqual([]);
    expect(health.filter((h) => h.at > firstUnready.at && h.status !== undefined).every((h) => h.status === 503)).toBe(true);
    // Served throughout; every response after the signal said Connection: close.
    expect(outcomes.filter((o) => o.status !== 200)).toEqual([]);
    expect(afterSignal.length).toBeGreaterThan(0);
    expect(afterSignal.filter((o) => o.connection !== 'close')).toEqual([]);
    expect(outcomes.filter((o) => o.ended < signalled).every((o) => o.connection === 'keep-alive')).toBe(true);
    // The grace was kept: the listener closed after SHUTDOWN_GRACE, not before.
    expect(listenerClosed - signalled).toBeGreaterThanOrEqual(GRACE * 1000 - 100);
    // The request in flight at the close was answered, on a connection closed after it.
    expect(slowAnswer.error).toBeUndefined();
    expect(slowAnswer.raw).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(slowAnswer.raw).toMatch(/\r\nConnection: close\r\n/i);
    expect(slowAnswer.raw).toContain('"access_token":"jort_');
    // Exit within grace + a few seconds (deadline 10 s never needed).
    expect(exited - signalled).toBeLessThan(GRACE * 1000 + 6000);
    // The last lines made it out of the 250 ms log buffer.
    expect(service.serve.output()).toMatch(/"msg":"jenkins-oidc stopped"/);
    expect(service.serve.output()).toMatch(/"inFlight":[1-9]\d*,"forced":0,"msg":"listener closed, requests in flight answered"/);
  }, 60_000);
});

test('clients that ignore /readyz and keep connecting through the close: refused once the listener is closed, no reset of a connection that was in use', async () => {
  let s: Service | undefined;
  try {
    s = await startService({ SHUTDOWN_GRACE: '1' });
    const service = s;
    const outcomes: Outcome[] = [];
    const clients = Array.from({ length: 4 }, async () => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      for (;;) {
        const o = await get(service.base, '/jwks', agent);
        outcomes.push(o);
        if (o.error === 'ECONNREFUSED') break;
      }
      agent.destroy();
    });
    await sleep(500);
    service.serve.child.kill('SIGTERM');
    expect(await service.serve.exited).toBe(0);
    await Promise.all(clients);
    const errors = outcomes.filter((o) => o.error);
    console.log(JSON.stringify({ ignoringReadyz: { requests: outcomes.length, refused: errors.filter((o) => o.error === 'ECONNREFUSED').length, freshConnectionsReset: errors.filter(isReset).length } }));
    expect(outcomes.filter((o) => !o.error).every((o) => o.status === 200)).toBe(true);
    // A connection that had served a request was never reset: the service said
    // Connection: close and closed it after its answer. What the kernel resets
    // are connections still in its accept queue when the listener closed —
    // no request of theirs had been read.
    expect(errors.filter((o) => o.reused)).toEqual([]);
    expect(errors.every((o) => o.error === 'ECONNREFUSED' || isReset(o))).toBe(true);
  } finally {
    await stopLeftover(s);
  }
}, 60_000);

test('SIGINT with idle keep-alive clients: exit 0 just after the default grace, not after keepAliveTimeout (65 s)', async () => {
  let s: Service | undefined;
  try {
    // Default SHUTDOWN_GRACE (5 s) and SHUTDOWN_TIMEOUT.
    s = await startService({ SHUTDOWN_GRACE: '' });
    const service = s;
    const agents = Array.from({ length: 8 }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
    const first = await Promise.all(agents.map((a) => get(service.base, '/jwks', a)));
    expect(first.map((o) => [o.status, o.connection])).toEqual(agents.map(() => [200, 'keep-alive']));
    // Eight idle keep-alive connections; watch how they end.
    await sleep(100);
    const sockets = agents.flatMap((a) => Object.values(a.freeSockets).flat()) as net.Socket[];
    expect(sockets).toHaveLength(8);
    const ends = sockets.map((sock) => new Promise<string>((resolve) => {
      sock.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
      sock.once('close', () => resolve('closed'));
    }));

    const signalled = Date.now();
    service.serve.child.kill('SIGINT');
    const code = await service.serve.exited;
    const ms = Date.now() - signalled;
    console.log(JSON.stringify({ idleKeepAliveShutdownMs: ms }));
    expect(code).toBe(0);
    expect(ms).toBeGreaterThanOrEqual(5000 - 100);
    expect(ms).toBeLessThan(5000 + 6000);
    // Closed cleanly by the service (FIN), not reset.
    expect(await Promise.all(ends)).toEqual(sockets.map(() => 'closed'));
    agents.forEach((a) => a.destroy());
  } finally {
    await stopLeftover(s);
  }
}, 60_000);

test('a request that never completes cannot hold the process: its connection is closed at SHUTDOWN_TIMEOUT, exit 0', async () => {
  let s: Service | undefined;
  try {
    s = await startService({ SHUTDOWN_GRACE: '0', SHUTDOWN_TIMEOUT: '2' });
    const service = s;
    // Headers sent, body promised, never sent.
    const stuck = slowMint(service);
    await sleep(300);
    const signalled = Date.now();
    service.serve.child.kill('SIGTERM');
    const [code, answer] = await Promise.all([service.serve.exited, stuck.answered]);
    const ms = Date.now() - signalled;
    console.log(JSON.stringify({ stuckRequestShutdownMs: ms }));
    expect(code).toBe(0);
    expect(ms).toBeGreaterThanOrEqual(2000 - 100);
    expect(ms).toBeLessThan(2000 + 6000);
    expect(answer.raw).toBe('');
    expect(service.serve.output()).toMatch(/"forced":1,"timeoutSeconds":2,"msg":"connections still open at SHUTDOWN_TIMEOUT were closed"/);
  } finally {
    await stopLeftover(s);
  }
}, 60_000);

test('a second signal ends the grace at once', async () => {
  let s: Service | undefined;
  try {
    s = await startService({ SHUTDOWN_GRACE: '30' });
    const service = s;
    const signalled = Date.now();
    service.serve.child.kill('SIGINT');
    await sleep(500);
    expect(await getJson(service.base, '/readyz')).toEqual({ status: 503, body: { status: 'unavailable', reason: 'shutting down' } });
    service.serve.child.kill('SIGINT');
    expect(await service.serve.exited).toBe(0);
    expect(Date.now() - signalled).toBeLessThan(8000);
    expect(service.serve.output()).toContain('"msg":"second signal: ending the grace now"');
  } finally {
    await stopLeftover(s);
  }
}, 60_000);

describe.each([
  ['an uncaught exception', 'throw', 'uncaught exception: exiting', 'crash test: thrown'],
  ['an unhandled rejection', 'reject', 'unhandled promise rejection: exiting', 'crash test: rejected'],
])('a crash by %s', (_name, mode, msg, message) => {
  test('exits 1 with the cause as a fatal JSON line, and no line of the last 250 ms is lost', async () => {
    const preload = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../helpers/crash-on-signal.mjs');
    let s: Service | undefined;
    try {
      s = await startService({ NODE_OPTIONS: `--import=${preload}`, CRASH_MODE: mode });
      const service = s;
      const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
      const burst = await Promise.all(Array.from({ length: 40 }, () => get(service.base, '/healthz', agent)));
      expect(burst.every((o) => o.status === 200)).toBe(true);
      // At once: these 40 request lines are (mostly) still in the 250 ms buffer.
      service.serve.child.kill('SIGUSR2');
      expect(await service.serve.exited).toBe(1);
      agent.destroy();
      const lines = service.serve.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.filter((l) => l.msg === 'request' && l.route === 'healthz')).toHaveLength(40);
      const last = lines.at(-1)!;
      expect(last).toMatchObject({ level: 60, msg, err: { message } });
    } finally {
      await stopLeftover(s);
    }
  }, 60_000);
});
