// `npm run bench`: ID tokens through the token-exchange grant, from many
// concurrent keep-alive connections, against the real service (a child
// process running `jenkins-oidc serve`) on a scratch database. Printed beside
// the bare signing rate of the very same key, measured in the same run, so
// the figure says how much the service adds on top of RSA signing.
//
// Settings (environment): BENCH_CONNECTIONS (default 32), BENCH_SECONDS
// (default 10), DATABASE_URL (a server to create the scratch database on;
// default: the embedded PostgreSQL in a scratch folder), BENCH_PROFILE (a folder:
// the service writes a V8 CPU profile there).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { loadSigningKeys } from '../dist/signing-keys/keys.js';
import { LocalKeySigner } from '../dist/signing-keys/signer.js';
import { createPrisma } from '../dist/store/prisma.js';
import { openEmbedded } from '../dist/store/embedded.js';
import { registerClient } from '../dist/clients/commands.js';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/cli/main.js');

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

function post(agent, port, path, form, headers = {}) {
  const body = new URLSearchParams(form).toString();
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body), ...headers } },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (data += c));
        res.on('end', () => resolve({ status: res.statusCode, body: data }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function measureSigning(signer, seconds) {
  // Same concurrency as the HTTP run: WebCrypto signs on libuv's thread pool.
  const payload = { iss: 'https://bench', sub: 'jenkins_instance:bench:job:app', aud: 'sts.amazonaws.com', exp: 2e9, iat: 1e9, nbf: 1e9, jti: 'x', job: 'app', build_number: 1 };
  let done = 0;
  const until = performance.now() + seconds * 1000;
  await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    while (performance.now() < until) {
      await signer.sign(payload);
      done += 1;
    }
  }));
  return done / seconds;
}

async function main() {
  const db = await scratchDatabase();
  const kek = randomBytes(32).toString('base64');
  const port = await freePort();
  const env = { PATH: process.env.PATH, DATABASE_URL: db.url, KEY_ENCRYPTION_KEY: kek, ISSUER: `http://127.0.0.1:${port}`, ALLOW_INSECURE_ISSUER: 'true', PORT: String(port), LOG_LEVEL: 'info', SHUTDOWN_GRACE: '0' };
  log('starting the service');
  const child = spawn(process.execPath, [...(process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir=' + process.env.BENCH_PROFILE] : []), CLI, 'serve'], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  try {
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
    for (let i = 0; ; i += 1) {
      try {
        const res = await new Promise((resolve, reject) => http.get({ host: '127.0.0.1', port, path: '/readyz', agent }, resolve).on('error', reject));
        res.resume();
        if (res.statusCode === 200) break;
      } catch {
        if (i > 300) throw new Error('service did not become ready');
      }
      await new Promise((r) => setTimeout(r, 100));
    }

    const prisma = createPrisma(db.url, 2);
    const { secret } = await registerClient(prisma, { name: 'bench', jenkinsUrl: 'https://jenkins.example.com' }, 86400);
    const [key] = await loadSigningKeys(prisma, Buffer.from(kek, 'base64'));
    const signer = await LocalKeySigner.create(key.kid, key.alg, key.privateKey);
    await prisma.$disconnect();

    const auth = `Basic ${Buffer.from(`bench:${secret}`).toString('base64')}`;
    const tokens = [];
    for (let i = 1; i <= 200; i += 1) {
      const res = await post(agent, port, '/token', { grant_type: 'urn:jenkins-oidc:grant-type:build-request-token', job: `team/app-${i % 20}`, build_number: String(i), build_url: `https://jenkins.example.com/job/team/job/app-${i % 20}/${i}/` }, { authorization: auth });
      tokens.push(JSON.parse(res.body).access_token);
    }

    log(`baseline: signing with key ${key.kid} (${key.alg}) for ${SECONDS} s at concurrency ${CONNECTIONS}`);
    const signRate = await measureSigning(signer, SECONDS);

    log(`warm-up, then ${SECONDS} s of exchanges over ${CONNECTIONS} connections`);
    const exchangeOnce = (i) =>
      post(agent, port, '/token', {
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        client_id: 'jenkins-build',
        subject_token: tokens[i % tokens.length],
        subject_token_type: 'urn:jenkins-oidc:token-type:build-request-token',
      });
    const warmUntil = performance.now() + 2000;
    await Promise.all(Array.from({ length: CONNECTIONS }, async (_, c) => {
      for (let i = c; performance.now() < warmUntil; i += CONNECTIONS) await exchangeOnce(i);
    }));

    const latencies = [];
    let failures = 0;
    const started = performance.now();
    const until = started + SECONDS * 1000;
    await Promise.all(Array.from({ length: CONNECTIONS }, async (_, c) => {
      for (let i = c; performance.now() < until; i += CONNECTIONS) {
        const t0 = performance.now();
        const res = await exchangeOnce(i);
        latencies.push(performance.now() - t0);
        if (res.status !== 200) failures += 1;
      }
    }));
    const elapsed = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    const result = {
      connections: CONNECTIONS,
      seconds: Number(elapsed.toFixed(1)),
      exchanges: latencies.length,
      failures,
      tokens_per_second: Math.round(latencies.length / elapsed),
      p50_ms: Number(percentile(latencies, 50).toFixed(1)),
      p99_ms: Number(percentile(latencies, 99).toFixed(1)),
      baseline_sign_per_second: Math.round(signRate),
      cpus: os.cpus().length,
      node: process.version,
      postgres: process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded',
    };
    process.stdout.write(`\n| measure | value |\n|---|---|\n`);
    process.stdout.write(`| ID tokens/s via token exchange | ${result.tokens_per_second} |\n`);
    process.stdout.write(`| p50 latency | ${result.p50_ms} ms |\n| p99 latency | ${result.p99_ms} ms |\n`);
    process.stdout.write(`| baseline: bare RS256 signatures/s, same key | ${result.baseline_sign_per_second} |\n`);
    process.stdout.write(`| failures | ${failures} of ${result.exchanges} |\n\n`);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    agent.destroy();
    if (failures > 0) process.exitCode = 1;
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.on('close', r));
    await db.drop();
  }
}

await main();
