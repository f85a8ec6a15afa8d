// `node bench/scale-ab.mjs`: is token exchange as fast on a database holding a
// year's rows as on an empty one? Two services side by side, one on an empty
// scratch database and one on a database seeded by bench/seed.mjs, driven by
// wrk in alternation (empty then seeded, then seeded then empty, ...), so that
// whatever else the machine runs meanwhile weighs on both alike. The bench's
// own BENCH_SEED_ROWS run measures empty and seeded once each, minutes apart:
// on a shared machine that single pair can differ by 20% either way.
//
// Settings (environment): DATABASE_URL (the server; required), BENCH_ALGS (the
// first one is used; default ES256, where the service's own cost weighs most),
// BENCH_SEED_ROWS (default 10,000,000), BENCH_ROUNDS (default 6),
// BENCH_SECONDS (per wrk run, default 10). Needs wrk and `npm run build`.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { registerClient } from '../dist/clients/commands.js';
import { closePrisma, createPrisma } from '../dist/store/prisma.js';
import { seedDatabase } from './seed.mjs';

const ADMIN = process.env.DATABASE_URL;
const ALG = (process.env.BENCH_ALGS ?? 'ES256').split(',')[0].trim().toUpperCase();
const ROWS = Number(process.env.BENCH_SEED_ROWS ?? 10_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/cli/main.js');
const log = (m) => process.stderr.write(`${m}\n`);
if (!ADMIN) throw new Error('set DATABASE_URL to the PostgreSQL server to create the two scratch databases on');

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const h = Math.floor(s.length / 2);
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}
const ms = (n) => n.toFixed(1);

async function adminQuery(sql) {
  const c = new pg.Client({ connectionString: ADMIN });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** A port the system has just handed out (others run services on this machine too). */
function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * A scratch database, the service on it, the bench client and 200 request
 * tokens, and a wrk script that exchanges them. The service is added to
 * `services` as soon as its database exists, so that it is cleaned up however
 * the start ends.
 */
async function start(label, dir, services) {
  const name = `jo_bench_ab_${label}_${randomBytes(3).toString('hex')}`;
  await adminQuery(`CREATE DATABASE ${name}`);
  const url = new URL(ADMIN);
  url.pathname = `/${name}`;
  const s = { label, name, url: url.toString() };
  services.push(s);
  const port = await freePort();
  s.port = port;
  const env = {
    PATH: process.env.PATH, DATABASE_URL: url.toString(), KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'), ISSUER: `http://127.0.0.1:${port}`,
    ALLOW_INSECURE_ISSUER: 'true', PORT: String(port), LOG_LEVEL: 'warn', SHUTDOWN_GRACE: '0', SIGNING_ALG: ALG, DATABASE_POOL_SIZE: '16',
  };
  s.child = spawn(process.execPath, [CLI, 'serve'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  for (let i = 0; !(await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false)); i += 1) {
    // Exited (its port taken meanwhile, say): whatever answers there now is not ours.
    if (s.child.exitCode !== null || s.child.signalCode !== null) throw new Error(`${label}: the service exited during start-up`);
    if (i > 300) throw new Error(`${label}: the service did not become ready`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const db = createPrisma(s.url, 2);
  const { secret } = await registerClient(db, { name: 'bench', jenkinsUrl: 'https://jenkins.example.com', audiences: ['sts.amazonaws.com'] }, 86400);
  await closePrisma(db);
  const tokens = [];
  for (let i = 1; i <= 200; i += 1) {
    const res = await fetch(`http://127.0.0.1:${port}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`bench:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:jenkins-oidc:grant-type:build-request-token', job: `team/app-${i % 20}`, build_number: String(i), build_url: `https://jenkins.example.com/job/team/job/app-${i % 20}/${i}/` }),
    });
    tokens.push((await res.json()).access_token);
  }
  s.lua = path.join(dir, `${label}.lua`);
  writeFileSync(s.lua, `
local tokens = { ${tokens.map((t) => `"${t}"`).join(', ')} }
local i = math.random(#tokens)
request = function()
  i = (i % #tokens) + 1
  return wrk.format("POST", "/token", { ["content-type"] = "application/x-www-form-urlencoded" },
    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&client_id=jenkins-build&subject_token=" .. tokens[i] ..
    "&subject_token_type=urn%3Ajenkins-oidc%3Atoken-type%3Abuild-request-token")
end
done = function(summary, latency)
  io.write(string.format("\\nRESULT %d %d %d %d %d\\n", summary.requests, summary.duration, summary.errors.status, latency:percentile(50), latency:percentile(99)))
end
`);
  return s;
}

function exchange(s) {
  const out = execFileSync('wrk', ['-t', '2', '-c', '64', '-d', `${SECONDS}s`, '--timeout', '10s', '--latency', '-s', s.lua, `http://127.0.0.1:${s.port}`], { encoding: 'utf8' });
  const [requests, us, failures, p50, p99] = out.split('RESULT ')[1].trim().split(' ').map(Number);
  return { perSecond: requests / (us / 1e6), failures, p50: p50 / 1000, p99: p99 / 1000 };
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'jenkins-oidc-bench-ab-'));
const services = [];
try {
  const empty = await start('empty', dir, services);
  const seeded = await start('seeded', dir, services);
  const seed = await seedDatabase(seeded.url, ROWS, { log });
  exchange(empty);
  exchange(seeded);
  const runs = { empty: [], seeded: [] };
  for (let r = 0; r < ROUNDS; r += 1) {
    for (const s of r % 2 ? [seeded, empty] : [empty, seeded]) {
      const x = exchange(s);
      runs[s.label].push(x);
      log(`round ${r + 1}: ${s.label.padEnd(6)} ${Math.round(x.perSecond)} req/s, p50 ${x.p50} ms, p99 ${x.p99} ms, ${x.failures} failures`);
    }
  }
  const pairs = runs.empty.map((e, i) => runs.seeded[i].perSecond / e.perSecond);
  const m = (label, k) => median(runs[label].map((x) => x[k]));
  process.stdout.write(`\n${ALG}, exchange at 64 connections, ${ROUNDS} alternating rounds of ${SECONDS} s; seeded: ${ROWS.toLocaleString('en-US')} audit rows, ${seed.requestTokens.toLocaleString('en-US')} request tokens, ${(seed.databaseBytes / 2 ** 30).toFixed(2)} GiB, seeded in ${Math.round(seed.seconds)} s\n\n`);
  process.stdout.write('| | empty | seeded | seeded / empty |\n|---|---|---|---|\n');
  process.stdout.write(`| req/s, median | ${Math.round(m('empty', 'perSecond'))} | ${Math.round(m('seeded', 'perSecond'))} | ${(m('seeded', 'perSecond') / m('empty', 'perSecond')).toFixed(2)} |\n`);
  process.stdout.write(`| p50 / p99 ms, median | ${ms(m('empty', 'p50'))} / ${ms(m('empty', 'p99'))} | ${ms(m('seeded', 'p50'))} / ${ms(m('seeded', 'p99'))} | |\n`);
  process.stdout.write(`| seeded / empty, each round | | | ${pairs.map((p) => p.toFixed(2)).join(', ')} (median ${median(pairs).toFixed(2)}) |\n`);
  if ([...runs.empty, ...runs.seeded].some((x) => x.failures > 0)) process.exitCode = 1;
} finally {
  const running = services.filter((s) => s.child && s.child.exitCode === null && s.child.signalCode === null);
  for (const s of running) s.child.kill('SIGTERM');
  await Promise.all(running.map((s) => new Promise((r) => s.child.on('close', r))));
  for (const s of services) await adminQuery(`DROP DATABASE IF EXISTS ${s.name} WITH (FORCE)`);
  rmSync(dir, { recursive: true, force: true });
}
