// `serve` with WORKERS > 1 (issue 11): a primary and its workers, real
// processes on one loopback port, real PostgreSQL. Which worker served a
// request is read from its log line's `worker` field (never from a response
// header: the public listener says nothing about the process behind it).
//
// PORT=0 and METRICS_PORT=0: the primary's ready line gives the port the
// workers share and the metrics port, as bound. Each test stands on its own:
// the ones that only read share a service and count from what they sent
// themselves; killing a worker and stopping the service each get their own.
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerClient } from '../../src/clients/commands.js';
import { ensureSigningKey } from '../../src/signing-keys/lifecycle.js';
import { type Db } from '../../src/store/prisma.js';
import { VERSION } from '../../src/version.js';
import { runNode } from '../helpers/agent.js';
import { runCli, scratchDir, startServe, type ServeProcess } from '../helpers/cli.js';
import { createEmptyDatabase, createTestDatabase, testPrisma } from '../helpers/database.js';
import { sampleValue } from '../helpers/metrics.js';
import { basic, decodeJwt, EXCHANGE, MINT, REQUEST_TOKEN_TYPE } from '../helpers/service.js';
import { privateLoopbackAddress } from '../helpers/ports.js';
import { waitFor, type Truthy } from '../helpers/wait.js';

const KEK = randomBytes(32).toString('base64');
const ISSUER = 'http://workers.example.com';

const lines = (s: ServeProcess) => s.lines();

/** Waits for `probe` over the service's log; on a timeout the error carries the log. */
function until<T>(what: string, probe: () => T, s: ServeProcess): Promise<Truthy<T>> {
  return waitFor(what, probe, { detail: () => s.output() });
}

/** Running, not a zombie. */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function childrenOf(pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number).sort((a, b) => a - b);
}

/**
 * One request on a connection of its own (round-robin hands out connections,
 * not requests). `from`: a loopback source address of the test's own, which
 * the request's log line gives as its ip: a test counts its own lines, not
 * late ones of an earlier test (each process writes its log every 250 ms).
 */
function getOnce(base: string, path_: string, from?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}${path_}`, { agent: false, localAddress: from }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
  });
}

function serviceEnv(databaseUrl: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    KEY_ENCRYPTION_KEY: KEK,
    ISSUER,
    ALLOW_INSECURE_ISSUER: 'true',
    DATABASE_POOL_SIZE: '3',
    FAILED_ATTEMPTS_PER_MINUTE: '100000',
    WORKERS: '2',
    ...extra,
  };
}

interface Workers {
  s: ServeProcess;
  /** http://127.0.0.1:<the port the workers share>. */
  base: string;
  metricsUrl: string;
  /** The workers' pids, ascending. */
  pids: number[];
}

/** `serve` with two workers on a database of its own, once both workers have said they listen. */
async function startWorkers(databaseUrl?: string): Promise<Workers> {
  if (!databaseUrl) {
    const database = await createTestDatabase();
    cleanups.push(database.drop);
    databaseUrl = database.url;
  }
  const s = await startServe(serviceEnv(databaseUrl, { METRICS_PORT: '0' }));
  started.push(s);
  // Each process writes its log out every 250 ms: the workers' own lines may follow the primary's.
  await until('both workers\' listening lines', () => lines(s).filter((l) => l.msg === 'jenkins-oidc listening').length === 2, s);
  const ready = lines(s).find((l) => l.msg === 'jenkins-oidc workers listening')!;
  return { s, base: s.url!, metricsUrl: s.metricsUrl!, pids: (ready.pids as number[]).slice().sort((a, b) => a - b) };
}

async function scrape(metricsUrl: string): Promise<string> {
  const res = await fetch(metricsUrl);
  expect(res.status).toBe(200);
  return res.text();
}

const started: ServeProcess[] = [];
const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const s of started) {
    if (s.child.exitCode === null && s.child.signalCode === null) {
      s.child.kill('SIGKILL');
      await s.exited;
    }
    // Workers of a primary killed above exit when their IPC channel closes.
    for (const l of lines(s)) if (l.msg === 'worker started' && alive(l.pid as number)) process.kill(l.pid as number, 'SIGKILL');
  }
  for (const c of cleanups) await c();
});

describe('WORKERS=2: one port, two workers, each a whole replica', () => {
  let w: Workers;
  let db: Db;

  beforeAll(async () => {
    // An empty database: the primary's one-shot preparation applies the migrations and creates the first key.
    const empty = await createEmptyDatabase();
    cleanups.push(empty.drop);
    w = await startWorkers(empty.url);
    db = testPrisma(empty.url, 2);
    cleanups.unshift(() => db.$disconnect());
  });

  test('migrations and the first signing key happen once, before any worker is forked; the workers listen', async () => {
    const { s, base, metricsUrl, pids } = w;
    const all = lines(s);
    const firstFork = all.findIndex((l) => l.msg === 'worker started');
    const migrated = all.filter((l) => l.msg === 'migrations applied');
    const keySteps = all.filter((l) => l.msg === 'signing key step');
    expect(migrated).toHaveLength(1);
    expect(migrated[0]!.worker).toBeUndefined();
    expect(all.indexOf(migrated[0]!)).toBeLessThan(firstFork);
    expect(keySteps).toEqual([expect.objectContaining({ to: 'active', reason: 'first key' })]);
    expect(keySteps[0]!.worker).toBeUndefined();
    expect(all.indexOf(keySteps[0]!)).toBeLessThan(firstFork);

    expect(all.filter((l) => l.msg === 'worker started').map((l) => l.worker)).toEqual([1, 2]);
    const listening = all.filter((l) => l.msg === 'jenkins-oidc listening');
    expect(listening.map((l) => l.worker).sort()).toEqual([1, 2]);
    // PORT=0: the primary reports the port the workers share, as each worker does.
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:[1-9]\d*$/);
    expect(listening.map((l) => l.url)).toEqual([base, base]);
    const ready = all.find((l) => l.msg === 'jenkins-oidc workers listening')!;
    expect(ready).toMatchObject({ url: base, workers: 2, metrics: metricsUrl });
    expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:[1-9]\d*\/metrics$/);
    expect(new URL(metricsUrl).port).not.toBe(new URL(base).port);
    expect(ready.worker).toBeUndefined();
    // The primary's children are the two workers, nothing else.
    expect(childrenOf(s.child.pid!)).toEqual(pids);
  });

  test('connections are spread over both workers; /healthz and /readyz answer in each', async () => {
    const { s, base } = w;
    const me = privateLoopbackAddress();
    const answers = [];
    // (Round-robin alternates: interleaving the routes would send each route to one worker.)
    for (let i = 0; i < 8; i += 1) answers.push(await getOnce(base, i < 4 ? '/healthz' : '/readyz', me));
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(200));
    const served = await until('8 request lines', () => {
      const r = lines(s).filter((l) => l.msg === 'request' && l.ip === me);
      return r.length === 8 && r;
    }, s);
    const byWorker = (route: string) => [...new Set(served.filter((l) => l.route === route).map((l) => l.worker))].sort();
    expect(byWorker('healthz')).toEqual([1, 2]);
    expect(byWorker('readyz')).toEqual([1, 2]);
  });

  test('mint and exchange work across workers; /metrics on the primary aggregates them', async () => {
    const { s, base, metricsUrl } = w;
    const healthz = 'jenkins_oidc_http_request_duration_seconds_count{route="healthz",method="GET",status="200"}';
    const readyz = 'jenkins_oidc_http_request_duration_seconds_count{route="readyz",method="GET",status="200"}';
    const counted = await scrape(metricsUrl);
    for (let i = 0; i < 8; i += 1) expect((await getOnce(base, i % 2 ? '/readyz' : '/healthz')).status).toBe(200);
    const client = `ci-${randomBytes(3).toString('hex')}`;
    const { secret } = await registerClient(db, { name: client, jenkinsUrl: 'https://jenkins.example.com' }, 86400);
    const form = (f: Record<string, string>) => ({ method: 'POST', body: new URLSearchParams(f), headers: { 'content-type': 'application/x-www-form-urlencoded', connection: 'close' } });
    const minted = await fetch(`${base}/token`, {
      ...form({ grant_type: MINT, job: 'app', build_number: '1', build_url: 'https://jenkins.example.com/job/app/1/' }),
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(client, secret) },
    });
    expect(minted.status).toBe(200);
    const requestToken = ((await minted.json()) as { access_token: string }).access_token;
    const exchanged = await fetch(`${base}/token`, form({ grant_type: EXCHANGE, client_id: 'jenkins-build', subject_token: requestToken, subject_token_type: REQUEST_TOKEN_TYPE }));
    expect(exchanged.status).toBe(200);
    const body = (await exchanged.json()) as { access_token: string; issued_token_type: string };
    expect(body.issued_token_type).toBe('urn:ietf:params:oauth:token-type:id_token');
    const jwks = (await (await fetch(`${base}/jwks`)).json()) as { keys: { kid: string }[] };
    const { header, payload } = decodeJwt(body.access_token);
    expect(jwks.keys.map((k) => k.kid)).toEqual([header.kid]);
    expect(payload.iss).toBe(ISSUER);

    const text = await scrape(metricsUrl);
    // Summed over the workers: every request counted once, wherever it was served.
    expect(sampleValue(text, healthz)).toBe((sampleValue(counted, healthz) ?? 0) + 4);
    expect(sampleValue(text, readyz)).toBe((sampleValue(counted, readyz) ?? 0) + 4);
    expect(sampleValue(text, `jenkins_oidc_tokens_issued_total{kind="request_token",client="${client}"}`)).toBe(1);
    expect(sampleValue(text, `jenkins_oidc_tokens_issued_total{kind="id_token",client="${client}"}`)).toBe(1);
    // Facts every worker reads alike are not multiplied by the number of workers.
    expect(sampleValue(text, `jenkins_oidc_build_info{version="${VERSION}",node="${process.version}",alg="RS256"}`)).toBe(1);
    expect(sampleValue(text, 'jenkins_oidc_database_up')).toBe(1);
    expect(sampleValue(text, 'jenkins_oidc_signing_keys{status="active"}')).toBe(1);
    // A limit of each process (as the primary's, which they inherit), not their sum.
    const maxFds = Number(readFileSync(`/proc/${s.child.pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'))!.split(/\s+/)[3]);
    expect(sampleValue(text, 'jenkins_oidc_process_max_fds')).toBe(maxFds);
    // The primary's own.
    expect(sampleValue(text, 'jenkins_oidc_workers')).toBe(2);
    expect(sampleValue(text, 'jenkins_oidc_worker_restarts_total')).toBe(0);
    // Each worker's pool, summed: at least the connection each one used.
    expect(sampleValue(text, 'jenkins_oidc_db_pool_connections')).toBeGreaterThanOrEqual(2);
    // The workers opened no listener of their own.
    expect(lines(s).filter((l) => l.msg === 'jenkins-oidc listening').map((l) => l.metrics)).toEqual([undefined, undefined]);
  });
});

test('a worker killed with SIGKILL is logged and replaced; the service keeps answering on both', async () => {
  const { s, base, metricsUrl, pids } = await startWorkers();
  const healthz = 'jenkins_oidc_http_request_duration_seconds_count{route="healthz",method="GET",status="200"}';
  for (let i = 0; i < 4; i += 1) expect((await getOnce(base, '/healthz')).status).toBe(200);
  await until('4 request lines', () => lines(s).filter((l) => l.msg === 'request').length === 4, s);
  const victim = pids[0]!;
  const survivor = pids[1]!;
  const worker = lines(s).find((l) => l.msg === 'worker started' && l.pid === victim)!.worker;
  const victimServed = lines(s).filter((l) => l.msg === 'request' && l.route === 'healthz' && l.worker === worker).length;
  process.kill(victim, 'SIGKILL');
  const died = await until('the death', () => lines(s).find((l) => l.msg === 'worker died; starting a replacement'), s);
  expect(died).toMatchObject({ level: 50, worker, pid: victim, code: null, signal: 'SIGKILL' });
  const replacement = await until('the replacement', () => lines(s).find((l) => l.msg === 'worker started' && l.worker === worker && l.pid !== victim), s);
  const at = lines(s).indexOf(replacement);
  await until('the replacement listening', () => lines(s).slice(at).some((l) => l.msg === 'jenkins-oidc listening' && l.worker === worker), s);
  expect(alive(victim)).toBe(false);
  expect(childrenOf(s.child.pid!)).toEqual([survivor, replacement.pid as number].sort((a, b) => a - b));

  const me = privateLoopbackAddress();
  const answers = [];
  for (let i = 0; i < 6; i += 1) answers.push((await getOnce(base, '/healthz', me)).status);
  expect(answers).toEqual(Array(6).fill(200));
  const served = await until('6 request lines', () => {
    const r = lines(s).filter((l) => l.msg === 'request' && l.ip === me);
    return r.length === 6 && r;
  }, s);
  expect([...new Set(served.map((l) => l.worker))].sort()).toEqual([1, 2]);
  const text = await scrape(metricsUrl);
  expect(sampleValue(text, 'jenkins_oidc_worker_restarts_total')).toBe(1);
  expect(sampleValue(text, 'jenkins_oidc_workers')).toBe(2);
  // The dead worker's counts are gone with it (Prometheus sees a counter reset); the replacement's start at 0.
  expect(sampleValue(text, healthz)).toBe(4 - victimServed + 6);
});

test('SIGTERM: forwarded to every worker, each drains, then the primary exits 0 and no process is left', async () => {
  const { s } = await startWorkers();
  const everyPid = [s.child.pid!, ...lines(s).filter((l) => l.msg === 'worker started').map((l) => l.pid as number)];
  s.child.kill('SIGTERM');
  expect(await s.exited).toBe(0);
  const all = lines(s);
  expect(all.filter((l) => l.msg === 'shutting down: SIGTERM forwarded to every worker')).toEqual([expect.objectContaining({ signal: 'SIGTERM', workers: 2 })]);
  expect(all.filter((l) => l.msg === 'shutting down').map((l) => [l.worker, l.signal]).sort()).toEqual([[1, 'SIGTERM'], [2, 'SIGTERM']]);
  expect(all.filter((l) => l.msg === 'jenkins-oidc stopped').map((l) => l.worker).sort()).toEqual([1, 2]);
  expect(all.at(-1)).toMatchObject({ msg: 'jenkins-oidc stopped: every worker has exited', exitCode: 0 });
  expect(all.filter((l) => /second signal|did not stop|failed/.test(l.msg ?? ''))).toEqual([]);
  expect(everyPid.filter(alive)).toEqual([]);
});

test('Ctrl-C (SIGINT to the whole process group) is one signal, not two: the grace is kept; a second Ctrl-C hurries every worker', async () => {
  const database = await createTestDatabase();
  cleanups.push(database.drop);
  const GRACE = 30;
  const s = await startServe(serviceEnv(database.url, { SHUTDOWN_GRACE: String(GRACE) }), 60_000, { detached: true });
  started.push(s);
  const base = s.url!;
  const pid = s.child.pid!;
  const workers = childrenOf(pid);
  expect(workers).toHaveLength(2);

  process.kill(-pid, 'SIGINT');
  await until('both workers in their grace', () => lines(s).filter((l) => l.msg?.startsWith('shutting down: /readyz answers 503')).length === 2, s);
  // Still serving, /readyz 503 in each worker: the grace was not skipped.
  const during = [await getOnce(base, '/readyz'), await getOnce(base, '/readyz')];
  expect(during.map((a) => a.status)).toEqual([503, 503]);
  expect(lines(s).filter((l) => /second signal/.test(l.msg ?? ''))).toEqual([]);

  const signalled = Date.now();
  process.kill(-pid, 'SIGINT');
  expect(await s.exited).toBe(0);
  // Before the grace would have ended by itself.
  expect(Date.now() - signalled).toBeLessThan(GRACE * 1000);
  const all = lines(s);
  expect(all.filter((l) => l.msg === 'shutting down: SIGTERM forwarded to every worker')).toEqual([expect.objectContaining({ signal: 'SIGINT' })]);
  expect(all.filter((l) => l.msg === 'second signal: forwarded, the workers end their grace now')).toEqual([expect.objectContaining({ signal: 'SIGINT' })]);
  expect(all.filter((l) => l.msg === 'shutting down').map((l) => [l.worker, l.signal]).sort()).toEqual([[1, 'SIGTERM'], [2, 'SIGTERM']]);
  expect(all.filter((l) => l.msg === 'second signal: ending the grace now').map((l) => l.worker).sort()).toEqual([1, 2]);
  expect([pid, ...workers].filter(alive)).toEqual([]);
});

test('a worker that cannot start (wrong key-encryption key) stops serve: exit 1, the worker\'s error in the log, no restart loop', async () => {
  const database = await createTestDatabase();
  cleanups.push(database.drop);
  // The key exists, encrypted with another key-encryption key than the service is given.
  const [step] = await ensureSigningKey(database.db, randomBytes(32), 'RS256', { rotationInterval: 30 * 86400, publishLead: 3600, retiredRetention: 3600 });
  const s = await startServe(serviceEnv(database.url));
  started.push(s);
  expect(await s.exited).toBe(1);
  const all = lines(s);
  const reason = `signing key ${step!.kid} could not be decrypted with the configured key-encryption key`;
  const workerErrors = all.filter((l) => l.msg === 'worker failed to start');
  expect(workerErrors.length).toBeGreaterThanOrEqual(1);
  for (const l of workerErrors) expect((l.err as { message: string }).message).toContain(reason);
  const fatal = all.filter((l) => l.level === 60 && l.worker !== undefined && l.msg?.startsWith(`worker ${l.worker} failed to start: ${reason}`) && l.msg.endsWith('; stopping'));
  expect(fatal).toHaveLength(1);
  expect(fatal[0]).toMatchObject({ code: 1, signal: null });
  expect(all.filter((l) => /replacement/.test(l.msg ?? ''))).toEqual([]);
  expect(all.at(-1)).toMatchObject({ msg: 'jenkins-oidc stopped: every worker has exited', exitCode: 1 });
  // On stderr too, as a single process's start-up error.
  expect(s.output().split('\n').filter((l) => l.startsWith('error: '))).toEqual([`error: ${reason}. Is KEY_ENCRYPTION_KEY (or KEY_ENCRYPTION_KEY_FILE) the one this database was created with?`]);
  expect(all.filter((l) => l.msg === 'worker started').map((l) => l.pid as number).filter(alive)).toEqual([]);
});

test('migrations that fail in the primary\'s preparation end serve with exit 1 and the error; no worker is forked', async () => {
  const empty = await createEmptyDatabase();
  cleanups.push(empty.drop);
  // A table in the way of the first migration.
  const pre = testPrisma(empty.url, 1);
  await pre.$executeRawUnsafe('CREATE TABLE clients (x int)');
  await pre.$disconnect();
  const s = await startServe(serviceEnv(empty.url));
  started.push(s);
  expect(await s.exited).toBe(1);
  expect(s.output()).toMatch(/^error: .*relation "clients" already exists/m);
  expect(lines(s).filter((l) => l.msg === 'worker started')).toEqual([]);
});

test('a crash loop (more than 5 worker deaths within 60 s) stops serve with exit 1', async () => {
  const database = await createTestDatabase();
  cleanups.push(database.drop);
  const s = await startServe(serviceEnv(database.url));
  started.push(s);
  const killed: number[] = [];
  for (let i = 0; i < 6; i += 1) {
    // Worker 1 each time: the first, then each replacement as soon as it is forked.
    const victim = await until(`worker 1 number ${i + 1}`, () => lines(s).find((l) => l.msg === 'worker started' && l.worker === 1 && !killed.includes(l.pid as number))?.pid as number | undefined, s);
    killed.push(victim);
    process.kill(victim, 'SIGKILL');
  }
  expect(await s.exited).toBe(1);
  const all = lines(s);
  expect(all.filter((l) => /; starting a replacement$/.test(l.msg ?? '')).map((l) => [l.worker, l.pid, l.signal])).toEqual(killed.slice(0, 5).map((p) => [1, p, 'SIGKILL']));
  expect(all.filter((l) => l.level === 60)).toEqual([
    expect.objectContaining({ msg: '6 worker deaths within 60 s: a crash loop; stopping', worker: 1, pid: killed[5], signal: 'SIGKILL', deaths: 6 }),
  ]);
  // Worker 2 was stopped cleanly.
  expect(all.filter((l) => l.msg === 'jenkins-oidc stopped').map((l) => l.worker)).toEqual([2]);
  expect(all.at(-1)).toMatchObject({ msg: 'jenkins-oidc stopped: every worker has exited', exitCode: 1 });
  expect(s.output().split('\n').filter((l) => l.startsWith('error: '))).toEqual(['error: 6 worker deaths within 60 s: a crash loop; the service log has each worker\'s exit']);
  expect(all.filter((l) => l.msg === 'worker started').map((l) => l.pid as number).filter(alive)).toEqual([]);
});

test('processes sharing stdout write whole log lines at most PIPE_BUF (4096 bytes) at a time, so lines never mix', async () => {
  // A pipe keeps a write of up to PIPE_BUF in one piece; a larger one may be
  // interleaved with another process's write.
  const helper = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../helpers/log-writes.mjs');
  const logger = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/logger.js');
  const run = async (mode: string) => {
    const r = await runNode([helper, logger, mode], {});
    expect(r.code).toBe(0);
    const parsed = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { i: number });
    expect(parsed.map((l) => l.i)).toEqual([...Array(3000).keys()]);
    return JSON.parse(r.stderr) as { largestWrite: number };
  };
  expect((await run('shared')).largestWrite).toBeLessThanOrEqual(4096);
  // Why the option: a single process writes up to 16 KB at once (fewer system calls).
  expect((await run('single')).largestWrite).toBeGreaterThan(4096);
});

test('WORKERS=2 with the embedded PostgreSQL is refused before anything starts, naming the fix', async () => {
  const dataDir = path.join(scratchDir(), 'data');
  const r = await runCli(['serve'], { WORKERS: '2', DATA_DIR: dataDir });
  expect(r.code).toBe(2);
  expect(r.stderr).toBe(
    'jenkins-oidc: invalid configuration:\n' +
      '  - WORKERS: 2 processes need DATABASE_URL: the embedded PostgreSQL belongs to one process. Set DATABASE_URL to run several, or WORKERS=1 (or unset it) for the embedded PostgreSQL\n',
  );
  expect(existsSync(dataDir)).toBe(false);
});
