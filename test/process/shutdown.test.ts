// Shutdown (issue 9): `jenkins-oidc serve` as a real process, real keep-alive
// clients on loopback. On SIGTERM (or SIGINT) /readyz answers 503 at once,
// the service keeps serving through SHUTDOWN_GRACE with `Connection: close`,
// then closes the listener, answers what is in flight, and exits 0 — no
// accepted request is reset, and idle keep-alive connections do not hold it
// for keepAliveTimeout (65 s).
//
// The load clients behave as a load balancer's traffic does: they keep going
// until the balancer (polling /readyz like an ALB health check) has seen the
// 503, then stop sending here.
//
// Nothing waits a fixed time: each step waits for what it needs (a request
// the service has accepted, a 503 seen, the listener closed), and the
// assertions are about order (what came before and after the signal, the
// close) and about what the service logged, not about elapsed times, except
// where the duration is the behaviour itself (the grace was kept).
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { registerClient } from '../../src/clients/commands.js';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServe, type ServeProcess } from '../helpers/cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { basic, MINT } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';

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
  // PORT 0 (startServe's default): the service binds a free port and reports it.
  const serve = await startServe({
    DATABASE_URL: database.url,
    KEY_ENCRYPTION_KEY: KEK,
    ISSUER: 'http://127.0.0.1',
    ALLOW_INSECURE_ISSUER: 'true',
    DATABASE_POOL_SIZE: '4',
    ...env,
  });
  if (!serve.url) throw new Error(`serve did not start:\n${serve.output()}`);
  const base = serve.url;
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

const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';

/**
 * A POST /token mint whose body arrives in two halves: the first at once, the
 * second on finish(). It asks `Expect: 100-continue`, so the service's
 * "100 Continue" says when it has read the headers and the request is in
 * flight (`accepted`). Once accepted it must be answered, not reset.
 */
function slowMint(s: Service) {
  const [name, secret] = s.secret.split(':') as [string, string];
  const body = new URLSearchParams({ grant_type: MINT, job: 'app', build_number: '2', build_url: 'https://jenkins.example.com/job/app/2/' }).toString();
  const url = new URL(s.base);
  const socket = net.connect(Number(url.port), url.hostname);
  let raw = '';
  let onData = () => {};
  socket.on('data', (c) => {
    raw += c;
    onData();
  });
  const answered = new Promise<{ raw: string; error?: string }>((resolve) => {
    socket.on('close', () => resolve({ raw }));
    socket.on('error', (err: NodeJS.ErrnoException) => resolve({ raw, error: err.code }));
  });
  const accepted = new Promise<void>((resolve, reject) => {
    onData = () => (raw.startsWith(CONTINUE) ? resolve() : raw.length >= CONTINUE.length && reject(new Error(`not a 100 Continue: ${raw}`)));
    void answered.then(() => reject(new Error(`closed before 100 Continue: ${raw}`)));
  });
  const half = Math.floor(body.length / 2);
  socket.write(
    `POST /token HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: ${basic(name, secret)}\r\nExpect: 100-continue\r\n` +
      `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body.slice(0, half)}`,
  );
  return { accepted, finish: () => socket.write(body.slice(half)), answered };
}

async function refused(base: string): Promise<boolean> {
  const r = await get(base, '/healthz', false);
  return r.error === 'ECONNREFUSED';
}

describe.each(['SIGTERM', 'SIGINT'] as const)('%s under keep-alive load', (signal) => {
  let s: Service | undefined;
  afterAll(() => stopLeftover(s));

  test(`/readyz 503 at once, served through the grace with Connection: close, in-flight answered, no reset, exit 0`, async () => {
    // Long enough for the steps below to happen inside it on a busy machine
    // (they take a few hundred ms on a quiet one); the test waits for each.
    const GRACE = 5;
    // A body may take longer than the grace here (the slow mint's second half is sent after the listener closed).
    s = await startService({ SHUTDOWN_GRACE: String(GRACE), SHUTDOWN_TIMEOUT: '10', REQUEST_BODY_TIMEOUT: '60s' });
    const service = s;
    const outcomes: Outcome[] = [];
    let balancerSaw503At: number | undefined;
    let signalled = Infinity;
    // The balancer's health check: fresh connection every 100 ms.
    const health: { started: number; at: number; status?: number; body?: unknown; error?: string }[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const started = Date.now();
        const r = await getJson(service.base, '/readyz');
        health.push({ started, at: Date.now(), ...r });
        if ('status' in r && r.status === 503 && balancerSaw503At === undefined) balancerSaw503At = Date.now();
        if ('error' in r) break;
        await sleep(100);
      }
    })();
    // Each load client sends until one of its requests, sent after the
    // balancer saw the 503, has been answered: then traffic goes elsewhere.
    const clients: { path: string; headers: Record<string, string> }[] = [
      { path: '/jwks', headers: {} },
      { path: '/jwks', headers: {} },
      { path: '/id-token?api-version=1', headers: { authorization: `Bearer ${service.requestToken}` } },
      { path: '/id-token?api-version=1', headers: { authorization: `Bearer ${service.requestToken}` } },
    ];
    const loads = clients.map(({ path, headers }) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      return (async () => {
        for (;;) {
          const o = await get(service.base, path, agent, headers);
          outcomes.push(o);
          if (o.error || (balancerSaw503At !== undefined && o.started >= balancerSaw503At)) break;
        }
        agent.destroy();
      })();
    });

    // Traffic on kept-alive connections, and an accepted request whose body is
    // still arriving: in flight from before the signal until after the close.
    await waitFor('every load client served twice on a kept-alive connection', () => outcomes.filter((o) => o.reused && o.status === 200).length >= 8);
    const slow = slowMint(service);
    await slow.accepted;
    signalled = Date.now();
    service.serve.child.kill(signal);
    await Promise.all(loads);
    await waitFor('the listener to close', () => refused(service.base), { intervalMs: 20 });
    const listenerClosed = Date.now();
    slow.finish();
    const [code, slowAnswer] = await Promise.all([service.serve.exited, slow.answered]);
    const exited = Date.now();
    polling = false;
    await poller;

    const firstUnready = health.find((h) => h.status === 503);
    if (!firstUnready) throw new Error(`/readyz never answered 503: ${JSON.stringify(health)}`);
    // Requests sent once the balancer had seen the 503: the service was draining by then.
    const afterUnready = outcomes.filter((o) => o.started >= firstUnready.at);
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
    // /readyz: ready before the signal, then 503 "shutting down", and on until the listener closed.
    expect(health.filter((h) => h.at < signalled).every((h) => h.status === 200)).toBe(true);
    expect(firstUnready.body).toEqual({ status: 'unavailable', reason: 'shutting down' });
    expect(health.filter((h) => h.started > firstUnready.at && h.status !== undefined).every((h) => h.status === 503)).toBe(true);
    // "At once": from the first answer that said Connection: close (the
    // drain had begun), every /readyz asked afterwards said 503: readiness
    // never lags behind the drain.
    const firstClose = outcomes.filter((o) => o.connection === 'close').sort((a, b) => a.ended - b.ended)[0];
    expect(firstClose).toBeDefined();
    const askedAfterDrain = health.filter((h) => h.started >= firstClose!.ended && h.status !== undefined);
    expect(askedAfterDrain.length).toBeGreaterThan(0);
    expect(askedAfterDrain.filter((h) => h.status !== 503)).toEqual([]);
    // Served throughout, never reset; before the signal connections were kept alive,
    // and every client's request sent after the 503 was seen was answered with Connection: close.
    expect(outcomes.filter((o) => o.status !== 200)).toEqual([]);
    expect(outcomes.filter((o) => o.ended < signalled).every((o) => o.connection === 'keep-alive')).toBe(true);
    expect(afterUnready.length).toBeGreaterThanOrEqual(4);
    expect(afterUnready.filter((o) => o.connection !== 'close')).toEqual([]);
    // The grace was kept: the listener closed SHUTDOWN_GRACE after the signal
    // at the earliest (the signal was sent at `signalled` or later).
    expect(listenerClosed - signalled).toBeGreaterThanOrEqual(GRACE * 1000 - 100);
    // The request in flight at the close was answered, on a connection closed after it.
    expect(slowAnswer.error).toBeUndefined();
    expect(slowAnswer.raw.startsWith(`${CONTINUE}HTTP/1.1 200 OK\r\n`)).toBe(true);
    expect(slowAnswer.raw).toMatch(/\r\nConnection: close\r\n/i);
    expect(slowAnswer.raw).toContain('"access_token":"jort_');
    // The last lines made it out of the 250 ms log buffer; the drain needed no
    // forced close (SHUTDOWN_TIMEOUT never reached), and it waited for the request in flight.
    const lines = service.serve.lines();
    expect(lines.at(-1)).toMatchObject({ msg: 'jenkins-oidc stopped' });
    expect(lines.filter((l) => l.msg === 'listener closed, requests in flight answered')).toEqual([expect.objectContaining({ inFlight: expect.any(Number), forced: 0 })]);
    expect(lines.find((l) => l.msg === 'listener closed, requests in flight answered')!.inFlight).toBeGreaterThanOrEqual(1);
    expect(lines.filter((l) => l.msg === 'connections still open at SHUTDOWN_TIMEOUT were closed')).toEqual([]);
  });
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
    await waitFor('the clients to be served on kept-alive connections', () => outcomes.filter((o) => o.reused && o.status === 200).length >= 8);
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
});

test('SIGINT with idle keep-alive clients: exit 0 just after the default grace, not after keepAliveTimeout (65 s)', async () => {
  let s: Service | undefined;
  try {
    // Default SHUTDOWN_GRACE (5 s) and SHUTDOWN_TIMEOUT.
    s = await startService({ SHUTDOWN_GRACE: '' });
    const service = s;
    const agents = Array.from({ length: 8 }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
    const first = await Promise.all(agents.map((a) => get(service.base, '/jwks', a)));
    expect(first.map((o) => [o.status, o.connection])).toEqual(agents.map(() => [200, 'keep-alive']));
    // Eight idle keep-alive connections (each back in its agent's pool once its response ended); watch how they end.
    const idle = () => agents.flatMap((a) => Object.values(a.freeSockets).flat()) as net.Socket[];
    await waitFor('eight idle keep-alive connections', () => idle().length === 8);
    const sockets = idle();
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
    // The grace was kept (the signal went out at `signalled` or later)...
    expect(ms).toBeGreaterThanOrEqual(5000 - 100);
    // ...and then the idle connections were closed by the drain, none left
    // for SHUTDOWN_TIMEOUT to force (let alone for keepAliveTimeout, 65 s).
    const lines = service.serve.lines();
    expect(lines.filter((l) => l.msg === 'listener closed, requests in flight answered')).toEqual([expect.objectContaining({ inFlight: 0, forced: 0 })]);
    expect(lines.filter((l) => l.msg === 'connections still open at SHUTDOWN_TIMEOUT were closed')).toEqual([]);
    // Closed cleanly by the service (FIN), not reset.
    expect(await Promise.all(ends)).toEqual(sockets.map(() => 'closed'));
    agents.forEach((a) => a.destroy());
  } finally {
    await stopLeftover(s);
  }
});

test('a request that never completes cannot hold the process: its connection is closed at SHUTDOWN_TIMEOUT, exit 0', async () => {
  let s: Service | undefined;
  try {
    s = await startService({ SHUTDOWN_GRACE: '0', SHUTDOWN_TIMEOUT: '2' });
    const service = s;
    // Headers sent (and read: 100 Continue), body promised, never sent.
    const stuck = slowMint(service);
    await stuck.accepted;
    const signalled = Date.now();
    service.serve.child.kill('SIGTERM');
    const [code, answer] = await Promise.all([service.serve.exited, stuck.answered]);
    const ms = Date.now() - signalled;
    console.log(JSON.stringify({ stuckRequestShutdownMs: ms }));
    expect(code).toBe(0);
    // It waited SHUTDOWN_TIMEOUT for the request (the signal went out at `signalled` or later), then closed its connection unanswered.
    expect(ms).toBeGreaterThanOrEqual(2000 - 100);
    expect(answer).toEqual({ raw: CONTINUE });
    expect(service.serve.lines().filter((l) => l.msg === 'connections still open at SHUTDOWN_TIMEOUT were closed')).toEqual([expect.objectContaining({ forced: 1, timeoutSeconds: 2 })]);
  } finally {
    await stopLeftover(s);
  }
});

test('a second signal ends the grace at once', async () => {
  let s: Service | undefined;
  try {
    const GRACE = 30;
    s = await startService({ SHUTDOWN_GRACE: String(GRACE) });
    const service = s;
    const signalled = Date.now();
    service.serve.child.kill('SIGINT');
    // In its grace once /readyz says so.
    const readyz = await waitFor('/readyz 503', async () => {
      const r = await getJson(service.base, '/readyz');
      return 'status' in r && r.status === 503 && r;
    });
    expect(readyz).toEqual({ status: 503, body: { status: 'unavailable', reason: 'shutting down' } });
    service.serve.child.kill('SIGINT');
    expect(await service.serve.exited).toBe(0);
    // Long before the grace would have ended by itself.
    expect(Date.now() - signalled).toBeLessThan(GRACE * 1000);
    expect(service.serve.lines().filter((l) => l.msg === 'second signal: ending the grace now')).toHaveLength(1);
  } finally {
    await stopLeftover(s);
  }
});

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
      const lines = service.serve.lines();
      expect(lines.filter((l) => l.msg === 'request' && l.route === 'healthz')).toHaveLength(40);
      const last = lines.at(-1)!;
      expect(last).toMatchObject({ level: 60, msg, err: { message } });
    } finally {
      await stopLeftover(s);
    }
  });
});
