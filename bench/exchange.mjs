// `npm run bench`: the service's token paths against the physical limit of
// the machine, in one run. The real service (a child process running
// `jenkins-oidc serve`, production mode) on a scratch database is driven by
// wrk (a C load generator: its own CPU cost is small) when it is installed,
// else by a Node client in this process (said in the output). Every figure is
// printed beside the bare signing rate of the very same key (jose over
// WebCrypto, the plain way; the service's own signer is measured beside it),
// in the same run: the ratio says how much the service costs beyond the
// signature.
//
// Measured: exchange and GET /id-token at 64 connections, exchange p50/p99 at
// 16, JWKS and discovery, mint, and the service's peak RSS; for RS256 and then
// ES256 (BENCH_ALGS=RS256 for one).
//
// Settings (environment): BENCH_SECONDS (per measure, default 5), BENCH_ALGS
// (default RS256,ES256), BENCH_LOAD (wrk or node; default wrk when found),
// DATABASE_URL (a server to create the scratch database on; default: the
// embedded PostgreSQL in a scratch folder), BENCH_PROFILE (a folder: the
// service writes a V8 CPU profile there), BENCH_OPTIMIZE_FOR (the service's
// OPTIMIZE_FOR, default speed), BENCH_WORKERS (the service's
// WORKERS; default 1, so figures stay comparable with earlier runs),
// BENCH_NODE_OPTIONS (the service's NODE_OPTIONS: V8 flags such as
// --max-semi-space-size=16, to measure them), BENCH_NODE_ARGS (flags on the
// service's node command line, for those NODE_OPTIONS refuses, such as
// --heap-growing-percent), BENCH_SERVICE_ENV ("NAME=value NAME=value": more of
// the service's environment, to measure a setting), BENCH_ONLY (some measures
// only: exchange64, idtoken64, exchange16, mint, jwks, discovery, ceiling),
// BENCH_SEED_ROWS (after the measures: exchange and the
// audit commands on the empty database, then again once bench/seed.mjs has
// written that many audit rows and a tenth as many request tokens).
import { execFile, spawn, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes, webcrypto } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import pg from 'pg';
import { loadSigningKeys } from '../dist/signing-keys/keys.js';
import { LocalKeySigner } from '../dist/signing-keys/signer.js';
import { createPrisma } from '../dist/store/prisma.js';
import { openEmbedded } from '../dist/store/embedded.js';
import { registerClient } from '../dist/clients/commands.js';
import { measureAtScale, scaleTable } from './seed.mjs';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ALGS = (process.env.BENCH_ALGS ?? 'RS256,ES256').split(',').map((a) => a.trim().toUpperCase());
const WRK = process.env.BENCH_LOAD === 'node' ? undefined : spawnSync('wrk', ['--version']).error ? undefined : 'wrk';
// BENCH_ONLY=exchange64,jwks: only these measures (profiling one path); see MEASURES.
const ONLY = (process.env.BENCH_ONLY ?? '').split(',').map((w) => w.trim()).filter(Boolean);
const THREADS = Math.max(1, Math.min(2, os.cpus().length));
const SEED_ROWS = Number(process.env.BENCH_SEED_ROWS ?? 0);
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/cli/main.js');

const execFileAsync = promisify(execFile);
const log = (m) => process.stderr.write(`${m}\n`);

async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function scratchDatabase() {
  let adminUrl = process.env.DATABASE_URL;
  let embedded;
  if (!adminUrl) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jenkins-oidc-bench-'));
    chmodSync(dir, 0o755);
    log(`starting an embedded PostgreSQL in ${dir}`);
    embedded = await openEmbedded(dir, 'cli');
    adminUrl = embedded.url;
  }
  const name = `jo_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
      await embedded?.stop();
    },
  };
}

/**
 * The baseline's signer: jose over WebCrypto with a non-extractable key, the
 * plain way to sign a JWT in Node (the issue that set the targets measured
 * against it), independent of how the service signs (its own signer is
 * measured beside it).
 */
async function joseSigner(kid, alg, privateKey) {
  const params = alg === 'RS256' ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } : { name: 'ECDSA', namedCurve: 'P-256' };
  const key = await webcrypto.subtle.importKey('pkcs8', privateKey.export({ format: 'der', type: 'pkcs8' }), params, false, ['sign']);
  return { sign: (payload) => new SignJWT(payload).setProtectedHeader({ alg, kid, typ: 'JWT' }).sign(key) };
}

async function measureSigning(signer, seconds, concurrency) {
  // Same concurrency as the HTTP run: WebCrypto signs on libuv's thread pool.
  const payload = { iss: 'https://bench', sub: 'jenkins_instance:bench:job:app', aud: 'sts.amazonaws.com', exp: 2e9, iat: 1e9, nbf: 1e9, jti: 'x', job: 'app', build_number: 1 };
  let done = 0;
  const cpu0 = process.cpuUsage();
  const until = performance.now() + seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < until) {
      await signer.sign(payload);
      done += 1;
    }
  }));
  const cpu = process.cpuUsage(cpu0);
  return { perSecond: done / seconds, cpuUs: Math.round((cpu.user + cpu.system) / done) };
}

/**
 * The machine's ceiling for JWKS and discovery: a bare node:http server (a
 * child process, the service's own Node) answering the service's JWKS bytes
 * with the same headers, nothing else. Whatever rate and tail it gets under
 * the same wrk is what loopback, the kernel, wrk and Node's HTTP parser leave
 * on this machine at this moment; the service's documents are read against
 * it, as tokens are against bare signing.
 */
async function startCeilingServer(servicePort) {
  const res = await fetch(`http://127.0.0.1:${servicePort}/jwks`);
  const body = Buffer.from(await res.arrayBuffer());
  const headers = { 'Content-Type': res.headers.get('content-type'), 'Cache-Control': res.headers.get('cache-control'), 'Content-Length': String(body.length) };
  const script = `
    const http = require('node:http');
    const body = Buffer.from(process.env.CEILING_BODY, 'base64');
    const headers = JSON.parse(process.env.CEILING_HEADERS);
    const server = http.createServer((req, res) => { res.writeHead(200, headers); res.end(body); });
    server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));`;
  const child = spawn(process.execPath, ['-e', script], { env: { CEILING_BODY: body.toString('base64'), CEILING_HEADERS: JSON.stringify(headers) }, stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    child.once('error', reject);
    child.stdout.once('data', (d) => resolve(Number(String(d).trim())));
  });
  return { pid: child.pid, port, stop: () => new Promise((resolve) => { child.once('close', resolve); child.kill('SIGTERM'); }) };
}

const CEILING_LABEL = 'bare node:http server, the same JWKS bytes, 64 connections (the machine\'s ceiling for JWKS and discovery)';
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const RTT = 'urn:jenkins-oidc:token-type:build-request-token';
const MINT = 'urn:jenkins-oidc:grant-type:build-request-token';

/**
 * One kind of request, described once for both load generators: a method, a
 * path, headers, and a body that may vary per request (index i).
 */
function exchangeRequest(tokens) {
  return { name: 'exchange', method: 'POST', path: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, values: tokens,
    body: (t) => `grant_type=${encodeURIComponent(EXCHANGE)}&client_id=jenkins-build&subject_token=${t}&subject_token_type=${encodeURIComponent(RTT)}` };
}
function idTokenRequest(tokens) {
  return { name: 'id-token', method: 'GET', path: '/id-token?api-version=1&audience=sts.amazonaws.com', headers: {}, values: tokens, header: (t) => ['authorization', `Bearer ${t}`] };
}
function mintRequest(auth) {
  const values = Array.from({ length: 500 }, (_, i) => String(i + 1));
  return { name: 'mint', method: 'POST', path: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: auth }, values,
    body: (n) => `grant_type=${encodeURIComponent(MINT)}&job=team%2Fapp&build_number=${n}&build_url=${encodeURIComponent(`https://jenkins.example.com/job/team/job/app/${n}/`)}` };
}
const staticRequest = (name, path) => ({ name, method: 'GET', path, headers: {}, values: [''] });

/** A wrk Lua script that cycles through the request's values. */
function wrkScript(dir, req) {
  const file = path.join(dir, `${req.name}.lua`);
  const lua = (v) => `"${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  const rendered = req.values.map((v) => ({ body: req.body ? req.body(v) : undefined, header: req.header ? req.header(v) : undefined }));
  writeFileSync(file, `
local bodies = { ${rendered.map((r) => (r.body === undefined ? 'false' : lua(r.body))).join(', ')} }
local extra = { ${rendered.map((r) => (r.header ? lua(r.header[1]) : 'false')).join(', ')} }
local headers = { ${Object.entries(req.headers).map(([k, v]) => `[${lua(k)}] = ${lua(v)}`).join(', ')} }
local i = math.random(#bodies)
request = function()
  i = (i % #bodies) + 1
  local h = {}
  for k, v in pairs(headers) do h[k] = v end
  ${req.header ? `h[${lua(req.header(req.values[0])[0])}] = extra[i]` : ''}
  local body = bodies[i]
  if body == false then body = nil end
  return wrk.format(${lua(req.method)}, ${lua(req.path)}, h, body)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\\nRESULT {"requests":%d,"duration_us":%d,"socket_errors":%d,"non_2xx":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status, latency:percentile(50), latency:percentile(99)))
end
`);
  return file;
}

async function loadWithWrk(port, req, connections, seconds, dir) {
  // Asynchronous, so that the service's memory is sampled while wrk runs.
  const { stdout: out } = await execFileAsync('wrk', ['-t', String(Math.min(THREADS, connections)), '-c', String(connections), '-d', `${seconds}s`, '--timeout', '10s', '--latency', '-s', wrkScript(dir, req), `http://127.0.0.1:${port}`], { encoding: 'utf8' });
  const r = JSON.parse(out.split('RESULT ')[1]);
  return { perSecond: r.requests / (r.duration_us / 1e6), p50: r.p50_us / 1000, p99: r.p99_us / 1000, requests: r.requests, failures: r.non_2xx, socketErrors: r.socket_errors };
}

async function loadWithNode(port, req, connections, seconds) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const once = (i) =>
    new Promise((resolve, reject) => {
      const v = req.values[i % req.values.length];
      const body = req.body ? req.body(v) : undefined;
      const headers = { ...req.headers, ...(req.header ? Object.fromEntries([req.header(v)]) : {}), ...(body ? { 'content-length': Buffer.byteLength(body) } : {}) };
      const r = http.request({ host: '127.0.0.1', port, path: req.path, method: req.method, agent, headers }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      });
      r.on('error', reject);
      r.end(body);
    });
  const latencies = [];
  let failures = 0;
  const started = performance.now();
  const until = started + seconds * 1000;
  await Promise.all(Array.from({ length: connections }, async (_, c) => {
    for (let i = c; performance.now() < until; i += connections) {
      const t0 = performance.now();
      const status = await once(i);
      latencies.push(performance.now() - t0);
      if (status < 200 || status >= 300) failures += 1;
    }
  }));
  agent.destroy();
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { perSecond: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99), requests: latencies.length, failures, socketErrors: 0 };
}

const TICK_US = 1e6 / Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);

/** utime+stime of a task (process or thread) from /proc, in clock ticks. */
function ticksOf(statFile) {
  try {
    const stat = readFileSync(statFile, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return 0;
  }
}

/** The service's processes: itself and, with BENCH_WORKERS > 1, its workers (its children, recursively). */
function serviceTree(pid) {
  let children = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // Gone meanwhile.
  }
  return [pid, ...children.flatMap(serviceTree)];
}

/**
 * Where the machine's CPU went, from /proc (a V8 profile samples wall time, so
 * it cannot say this): the service's main threads, its other threads (libuv's
 * pool, which signs; GC helpers), PostgreSQL (every postgres process) and wrk.
 * "The service" is its whole process tree: with workers, main is the sum of
 * every process's main thread (the primary's included), and byPid says how
 * much each process took.
 */
function cpuTicks(servicePid) {
  const out = { main: 0, threads: 0, postgres: 0, wrk: 0, byPid: {} };
  for (const pid of serviceTree(servicePid)) {
    let tids = [];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      const t = ticksOf(`/proc/${pid}/task/${tid}/stat`);
      if (Number(tid) === pid) out.main += t;
      else out.threads += t;
      out.byPid[pid] = (out.byPid[pid] ?? 0) + t;
    }
  }
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let comm;
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    if (comm.startsWith('postgres')) out.postgres += ticksOf(`/proc/${pid}/stat`);
  }
  // wrk has exited by the time it is read: its time is in this process's children's time (cutime, cstime).
  const self = readFileSync('/proc/self/stat', 'utf8');
  const fields = self.slice(self.lastIndexOf(')') + 2).split(' ');
  out.wrk = Number(fields[13]) + Number(fields[14]);
  return out;
}

function cpuPerRequest(before, after, requests) {
  // A postgres process that exited meanwhile takes its ticks with it: never below 0.
  const per = (k) => Math.round((Math.max(0, after[k] - before[k]) * TICK_US) / Math.max(1, requests));
  // The busiest single process of the service (main thread and the rest): with workers, whether one of them is the bottleneck.
  const largestProcess = Math.round((Math.max(0, ...Object.keys(after.byPid).map((pid) => after.byPid[pid] - (before.byPid[pid] ?? 0))) * TICK_US) / Math.max(1, requests));
  return { main: per('main'), threads: per('threads'), postgres: per('postgres'), wrk: per('wrk'), largestProcess };
}

/**
 * Peak RSS of the service's process tree: the sum of each process's peak
 * (VmHWM; peaks need not coincide, so an upper bound) and the largest one.
 * Without workers both are the one process's.
 */
function peakRssMb(pid) {
  const peaks = serviceTree(pid).map((p) => {
    try {
      const line = readFileSync(`/proc/${p}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmHWM:'));
      return Math.round(Number(line.split(/\s+/)[1]) / 1024);
    } catch {
      return 0;
    }
  });
  return peaks.some((m) => m > 0) ? { sum: peaks.reduce((a, b) => a + b, 0), largest: Math.max(...peaks), processes: peaks.length } : undefined;
}

/** Resident memory now, summed over the service's process tree. */
function rssMb(pid) {
  let kb = 0;
  for (const p of serviceTree(pid)) {
    try {
      const line = readFileSync(`/proc/${p}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
      kb += Number(line.split(/\s+/)[1]);
    } catch {
      // gone meanwhile
    }
  }
  return kb > 0 ? Math.round(kb / 1024) : undefined;
}

/**
 * IDLE_CONNECTIONS keep-alive connections, each after one GET /healthz,
 * held open together: the service's resident memory then (item 4 of issue
 * 11: the cost of a connection is bounded, and small).
 */
const IDLE_CONNECTIONS = 2000;
async function rssWithIdleConnections(port, pid) {
  const sockets = [];
  try {
    for (let i = 0; i < IDLE_CONNECTIONS; i += 1) {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => {});
      sockets.push(
        new Promise((resolve, reject) => {
          let seen = '';
          socket.once('connect', () => socket.write('GET /healthz HTTP/1.1\r\nHost: bench\r\n\r\n'));
          socket.on('data', (d) => {
            seen += d.toString();
            if (seen.includes('"status"')) resolve(socket);
          });
          socket.once('close', () => reject(new Error('an idle connection was closed')));
        }),
      );
      // Paced, so the accept queue never overflows.
      if (i % 100 === 99) await Promise.all(sockets.slice(-100));
    }
    await Promise.all(sockets);
    await new Promise((r) => setTimeout(r, 500));
    return rssMb(pid);
  } finally {
    for (const s of await Promise.allSettled(sockets)) if (s.status === 'fulfilled') s.value.destroy();
  }
}

async function post(port, path_, form, headers = {}) {
  const body = new URLSearchParams(form).toString();
  const res = await fetch(`http://127.0.0.1:${port}${path_}`, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
  return { status: res.status, json: await res.json() };
}

async function benchOne(alg, scratch) {
  const db = await scratchDatabase();
  const kek = randomBytes(32).toString('base64');
  const port = await freePort();
  const env = {
    PATH: process.env.PATH, DATABASE_URL: db.url, KEY_ENCRYPTION_KEY: kek, ISSUER: `http://127.0.0.1:${port}`, ALLOW_INSECURE_ISSUER: 'true',
    PORT: String(port), LOG_LEVEL: 'warn', SHUTDOWN_GRACE: '0', SIGNING_ALG: alg, DATABASE_POOL_SIZE: '16',
    // One process unless asked: production mode's default (one per core) would change every figure.
    WORKERS: process.env.BENCH_WORKERS ?? '1',
    OPTIMIZE_FOR: process.env.BENCH_OPTIMIZE_FOR ?? 'speed',
    ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}),
    // BENCH_SERVICE_ENV="MALLOC_ARENA_MAX=2 METRICS_PORT=9464": more of the service's environment, to measure a setting.
    ...Object.fromEntries((process.env.BENCH_SERVICE_ENV ?? '').split(/\s+/).filter(Boolean).map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])),
  };
  log(`${alg}: starting the service`);
  const child = spawn(process.execPath, [...(process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean), ...(process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.BENCH_PROFILE] : []), CLI, 'serve'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  // The service's warnings and errors (LOG_LEVEL=warn), counted by message: a failure in the table comes with its reason.
  const warnings = new Map();
  let partial = '';
  child.stdout.on('data', (chunk) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop();
    for (const line of lines) {
      try {
        const { msg, cap, cause } = JSON.parse(line);
        const key = [msg, cap, cause].filter(Boolean).join(': ');
        warnings.set(key, (warnings.get(key) ?? 0) + 1);
      } catch {
        // not a log line
      }
    }
  });
  try {
    for (let i = 0; ; i += 1) {
      const ok = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false);
      if (ok) break;
      if (i > 300) throw new Error('service did not become ready');
      await new Promise((r) => setTimeout(r, 100));
    }
    const prisma = createPrisma(db.url, 2);
    const { secret } = await registerClient(prisma, { name: 'bench', jenkinsUrl: 'https://jenkins.example.com', audiences: ['sts.amazonaws.com'] }, 86400);
    const [key] = (await loadSigningKeys(prisma, Buffer.from(kek, 'base64'))).filter((k) => k.status === 'active');
    const signer = await joseSigner(key.kid, key.alg, key.privateKey);
    const serviceSigner = await LocalKeySigner.create(key.kid, key.alg, key.privateKey);
    await prisma.$disconnect();
    const auth = `Basic ${Buffer.from(`bench:${secret}`).toString('base64')}`;
    const tokens = [];
    for (let i = 1; i <= 200; i += 1) {
      const res = await post(port, '/token', { grant_type: MINT, job: `team/app-${i % 20}`, build_number: String(i), build_url: `https://jenkins.example.com/job/team/job/app-${i % 20}/${i}/` }, { authorization: auth });
      tokens.push(res.json.access_token);
    }

    log(`${alg}: baseline, bare signing with key ${key.kid} (jose, WebCrypto), ${SECONDS} s at concurrency 64`);
    const signing = await measureSigning(signer, SECONDS, 64);
    const baseline = signing.perSecond;
    log(`${alg}: bare signing with the service's own signer, ${SECONDS} s at concurrency 64`);
    const serviceSigning = await measureSigning(serviceSigner, SECONDS, 64);
    const load = (req, c) => (WRK ? loadWithWrk(port, req, c, SECONDS, scratch) : loadWithNode(port, req, c, SECONDS));
    // Warm-up: JIT, pool, caches.
    await load(exchangeRequest(tokens), 16);
    const results = {};
    const measures = [
      ['exchange64', 'exchange, 64 connections', exchangeRequest(tokens), 64],
      ['idtoken64', 'GET /id-token, 64 connections', idTokenRequest(tokens), 64],
      ['exchange16', 'exchange, 16 connections', exchangeRequest(tokens), 16],
      ['mint', 'mint, 16 connections', mintRequest(auth), 16],
      ['jwks', 'JWKS, 64 connections', staticRequest('jwks', '/jwks'), 64],
      ['discovery', 'discovery, 64 connections', staticRequest('discovery', '/.well-known/openid-configuration'), 64],
      ['ceiling', CEILING_LABEL, staticRequest('jwks', '/jwks'), 64],
    ];
    const unknown = ONLY.filter((k) => !measures.some(([key]) => key === k));
    if (unknown.length > 0) throw new Error(`BENCH_ONLY: unknown measure ${unknown.join(', ')} (known: ${measures.map(([k]) => k).join(', ')})`);
    let loadRssMb = 0;
    for (const [key, label, req, c] of measures) {
      if (ONLY.length > 0 && !ONLY.includes(key)) continue;
      log(`${alg}: ${label}, ${SECONDS} s`);
      if (key === 'ceiling') {
        // Not the service: its CPU columns are the bare server's.
        const ceiling = await startCeilingServer(port);
        try {
          const before = cpuTicks(ceiling.pid);
          results[label] = await (WRK ? loadWithWrk(ceiling.port, req, c, SECONDS, scratch) : loadWithNode(ceiling.port, req, c, SECONDS));
          results[label].cpuUsPerRequest = cpuPerRequest(before, cpuTicks(ceiling.pid), results[label].requests);
        } finally {
          await ceiling.stop();
        }
        continue;
      }
      const before = cpuTicks(child.pid);
      // Resident memory sampled while the load runs: VmHWM would also count start-up's transient
      // peak (compiling Prisma's WebAssembly query compiler), which no load ever sees again.
      const sampler = setInterval(() => {
        loadRssMb = Math.max(loadRssMb, rssMb(child.pid) ?? 0);
      }, 100);
      try {
        results[label] = await load(req, c);
      } finally {
        clearInterval(sampler);
      }
      results[label].cpuUsPerRequest = cpuPerRequest(before, cpuTicks(child.pid), results[label].requests);
    }
    const peak = peakRssMb(child.pid);
    log(`${alg}: ${IDLE_CONNECTIONS} idle connections`);
    const idleRssMb = await rssWithIdleConnections(port, child.pid);
    const scale = SEED_ROWS > 0 ? await measureAtScale({ databaseUrl: db.url, rows: SEED_ROWS, cli: CLI, exchange: () => load(exchangeRequest(tokens), 64), log: (m) => log(`${alg}: ${m}`) }) : undefined;
    return { alg, baseline, signingCpuUs: signing.cpuUs, serviceSigning, results, peakRssMb: peak, loadRssMb, idleRssMb, scale, warnings: Object.fromEntries(warnings) };
  } finally {
    child.kill('SIGTERM');
    // A service that has died already will not close again: waiting for it would end the bench here, its database kept.
    if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.on('close', r));
    await db.drop();
  }
}

async function main() {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'jenkins-oidc-bench-wrk-'));
  const runs = [];
  try {
    for (const alg of ALGS) runs.push(await benchOne(alg, scratch));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
  const fmt = (n) => (n === undefined ? '-' : n >= 100 ? String(Math.round(n)) : n.toFixed(1));
  process.stdout.write(`\nload generator: ${WRK ? `wrk (${THREADS} threads)` : 'Node client in the bench process (install wrk for lower client cost)'}; ${os.cpus().length} CPUs; node ${process.version}; ${process.env.DATABASE_URL ? 'PostgreSQL from DATABASE_URL' : 'embedded PostgreSQL'}; ${SECONDS} s per measure\n`);
  for (const run of runs) {
    process.stdout.write(`\n${run.alg}\n\n| measure | req/s | ratio to bare signing | p50 ms | p99 ms | failures | CPU µs per request: service main thread / other threads / PostgreSQL / wrk | signature's share of that CPU |\n|---|---|---|---|---|---|---|---|\n`);
    process.stdout.write(`| bare ${run.alg} signing, same key, jose + WebCrypto, concurrency 64 (baseline) | ${fmt(run.baseline)} | 1.00 | | | | ${run.signingCpuUs} in all | 1.00 |\n`);
    process.stdout.write(`| bare ${run.alg} signing, same key, the service's signer (LocalKeySigner), concurrency 64 | ${fmt(run.serviceSigning.perSecond)} | ${(run.serviceSigning.perSecond / run.baseline).toFixed(2)} | | | | ${run.serviceSigning.cpuUs} in all | |\n`);
    for (const [label, r] of Object.entries(run.results)) {
      const ratio = /exchange|id-token|mint/.test(label) ? (r.perSecond / run.baseline).toFixed(2) : '';
      // The CPU an ID token cost on the whole machine, against the CPU of its bare signature: unlike the
      // rate ratio, this one holds when the machine is shared and its speed drifts between measures.
      const c = r.cpuUsPerRequest;
      process.stdout.write(`| ${label} | ${fmt(r.perSecond)} | ${ratio} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${r.failures} of ${r.requests}${r.socketErrors ? ` (+${r.socketErrors} socket errors)` : ''} | ${[c.main, c.threads, c.postgres, c.wrk].join(' / ')} | ${ratio ? (run.signingCpuUs / (c.main + c.threads + c.postgres + c.wrk)).toFixed(2) : ''} |\n`);
    }
    const rss = run.peakRssMb;
    process.stdout.write(`| service peak RSS, start-up included (VmHWM) | ${rss ? `${rss.sum} MB${rss.processes > 1 ? ` in ${rss.processes} processes, largest ${rss.largest} MB` : ''}` : '-'} | | | | | | |\n`);
    process.stdout.write(`| service RSS under load (highest sample, every 100 ms) | ${run.loadRssMb || '-'} MB | | | | | | |\n`);
    process.stdout.write(`| service RSS with ${IDLE_CONNECTIONS} idle connections | ${run.idleRssMb ?? '-'} MB | | | | | | |\n`);
    for (const [message, count] of Object.entries(run.warnings)) process.stdout.write(`service log: ${count} x ${message}\n`);
    if (run.scale) process.stdout.write(scaleTable(run.scale));
  }
  process.stdout.write(`\n${JSON.stringify({ load: WRK ? 'wrk' : 'node', cpus: os.cpus().length, node: process.version, runs })}\n`);
  // A non-2xx answer is a behaviour fault (a benchmark judges figures, not thresholds).
  if (runs.some((r) => Object.values(r.results).some((x) => x.failures > 0))) process.exitCode = 1;
}

await main();
