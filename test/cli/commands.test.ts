// The CLI as scripts and admins use it: --json output, exit codes, errors
// with advice, and configuration refused with the variable's name.
//
// Each test stands on its own (any one may run alone, in any order): the two
// that need a database without tables get one of their own; the others share
// a migrated one and name their own clients.
import { randomBytes } from 'node:crypto';
import { createEmptyDatabase, createTestDatabase } from '../helpers/database.js';
import { runCli, startServe } from '../helpers/cli.js';
import { readMigrations } from '../../src/store/migrate.js';

const KEK = randomBytes(32).toString('base64');
let env: Record<string, string>;
const drops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  const db = await createTestDatabase();
  drops.push(db.drop);
  env = { DATABASE_URL: db.url, KEY_ENCRYPTION_KEY: KEK, ISSUER: 'https://oidc.example.com' };
});
afterAll(async () => {
  for (const drop of drops) await drop();
});

/** The CLI's environment on a database of its own, without any table. */
async function emptyDatabaseEnv(): Promise<Record<string, string>> {
  const db = await createEmptyDatabase();
  drops.push(db.drop);
  return { ...env, DATABASE_URL: db.url };
}

test('commands before migrate say to migrate', async () => {
  const res = await runCli(['clients', 'list'], await emptyDatabaseEnv());
  expect(res).toEqual({ code: 1, stdout: '', stderr: 'error: the database has no jenkins-oidc tables yet\n  run: jenkins-oidc migrate\n' });
});

test('migrate --json reports what it applied, then that nothing is pending', async () => {
  const empty = await emptyDatabaseEnv();
  const names = readMigrations().map((m) => m.name);
  const first = await runCli(['migrate', '--json'], empty);
  expect(first.code).toBe(0);
  expect(JSON.parse(first.stdout)).toEqual({ applied: names, alreadyApplied: [], modified: [], available: names });
  const second = await runCli(['migrate'], empty);
  expect(second).toEqual({ code: 0, stdout: 'database is up to date\n', stderr: '' });
});

test('clients add prints the secret once with a warning; show never prints it', async () => {
  // (A database of its own: `clients list` pads its columns to the longest name of any client.)
  const own = await emptyDatabaseEnv();
  expect((await runCli(['migrate'], own)).code).toBe(0);
  const added = await runCli(['clients', 'add', 'ci-main', '--jenkins-url', 'https://jenkins.example.com', '--audience', 'sts.amazonaws.com,vault', '--sub-claims', 'jenkins_instance,job,ref'], own);
  expect(added.code).toBe(0);
  const secret = /client_secret {2}(jocs_\S+)/.exec(added.stdout)![1]!;
  expect(added.stderr).toBe('\nStore the client secret now, in a SYSTEM-scoped Jenkins credential: it is shown only this once.\n');
  const shown = await runCli(['clients', 'show', 'ci-main', '--json'], own);
  expect(JSON.parse(shown.stdout)).toMatchObject({ name: 'ci-main', audiences: ['sts.amazonaws.com', 'vault'], subClaims: ['jenkins_instance', 'job', 'ref'], secretHint: `jocs_…${secret.slice(-4)}` });
  expect(shown.stdout).not.toContain(secret);
  const listed = await runCli(['clients', 'list'], own);
  expect(listed.stdout.split('\n')[0]).toBe('name     jenkins_url                  audiences                sub_claims                enabled  secret_hint');
});

test('errors name the problem and the next command, with exit code 1', async () => {
  expect((await runCli(['clients', 'add', 'ci-kept', '--jenkins-url', 'https://kept.example.com'], env)).code).toBe(0);
  expect(await runCli(['clients', 'show', 'nope'], env)).toEqual({
    code: 1, stdout: '', stderr: 'error: client "nope" not found\n  list registered clients with: jenkins-oidc clients list\n',
  });
  expect(await runCli(['clients', 'add', 'Bad Name', '--jenkins-url', 'https://j'], env)).toMatchObject({
    code: 1, stderr: 'error: name: must be a slug of 2-63 lowercase letters, digits and dashes, starting and ending with a letter or digit (it becomes client_id and jenkins_instance)\n',
  });
  expect(await runCli(['clients', 'remove', 'ci-kept'], env)).toEqual({
    code: 1, stdout: '', stderr: 'error: not removing "ci-kept" without --yes\n  to stop it reversibly instead: jenkins-oidc clients disable ci-kept\n',
  });
  expect(JSON.parse((await runCli(['clients', 'show', 'ci-kept', '--json'], env)).stdout)).toMatchObject({ name: 'ci-kept', enabled: true });
  expect(await runCli(['audit', 'list', '--since', 'yesterday'], env)).toMatchObject({
    code: 1, stderr: 'error: since: must be an ISO time (2026-11-25T10:00:00Z) or a duration such as 30m, 12h, 7d; got "yesterday"\n',
  });
});

test('disable, enable and remove --yes with --json', async () => {
  expect((await runCli(['clients', 'add', 'ci-gone', '--jenkins-url', 'https://gone.example.com'], env)).code).toBe(0);
  expect(JSON.parse((await runCli(['clients', 'disable', 'ci-gone', '--json'], env)).stdout).enabled).toBe(false);
  expect((await runCli(['clients', 'enable', 'ci-gone'], env)).stdout).toBe('client ci-gone enabled\n');
  expect(JSON.parse((await runCli(['clients', 'rotate-secret', 'ci-gone', '--json'], env)).stdout).client_secret).toMatch(/^jocs_/);
  expect(JSON.parse((await runCli(['clients', 'remove', 'ci-gone', '--yes', '--json'], env)).stdout)).toEqual({ name: 'ci-gone', requestTokensRemoved: 0 });
  expect(await runCli(['clients', 'show', 'ci-gone'], env)).toMatchObject({ code: 1, stderr: 'error: client "ci-gone" not found\n  list registered clients with: jenkins-oidc clients list\n' });
});

test('invalid configuration is refused at start with the variable name and exit code 2', async () => {
  const res = await runCli(['serve'], { DATABASE_URL: env.DATABASE_URL!, ISSUER: 'http://oidc.example.com', ID_TOKEN_TTL: 'soon' });
  expect(res.code).toBe(2);
  expect(res.stderr).toBe([
    'jenkins-oidc: invalid configuration:',
    '  - ISSUER: production mode (DATABASE_URL is set) needs an https issuer, got "http://oidc.example.com". Set ISSUER=https://your-host, or ALLOW_INSECURE_ISSUER=true for a test lab',
    '  - KEY_ENCRYPTION_KEY: required in production mode (DATABASE_URL is set). Generate one with `openssl rand -base64 32` and set KEY_ENCRYPTION_KEY or KEY_ENCRYPTION_KEY_FILE',
    '  - ID_TOKEN_TTL: must be a duration such as 300, 5m, 1h or 1d, got "soon"',
    '',
  ].join('\n'));
});

test('a wrong key-encryption key stops serve with the kid that failed', async () => {
  // A database of its own: the first start creates its key under KEK; stopped once it is listening.
  const ok = { ...(await emptyDatabaseEnv()), ALLOW_INSECURE_ISSUER: 'true' };
  const s = await startServe(ok);
  expect(s.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  s.child.kill('SIGTERM');
  expect(await s.exited).toBe(0);
  const wrong = await runCli(['serve'], { ...ok, KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64') });
  expect(wrong.code).toBe(1);
  expect(wrong.stderr).toMatch(/error: signing key [A-Za-z0-9_-]{16} could not be decrypted with the configured key-encryption key\. Is KEY_ENCRYPTION_KEY \(or KEY_ENCRYPTION_KEY_FILE\) the one this database was created with\?/);
});

test('--help teaches the commands', async () => {
  const res = await runCli(['--help'], {});
  expect(res.code).toBe(0);
  for (const word of ['serve', 'migrate', 'clients', 'audit', 'Getting started:', 'DATA_DIR']) expect(res.stdout).toContain(word);
});

test('client and audit commands need only DATABASE_URL in production mode; key commands need the key-encryption key', async () => {
  const bare = { DATABASE_URL: env.DATABASE_URL!, ISSUER: 'http://internal-host:8080' };
  const added = await runCli(['clients', 'add', 'ci-bare', '--jenkins-url', 'https://bare.example.com', '--max-ttl', '2h', '--json'], bare);
  expect(added.code).toBe(0);
  expect(JSON.parse(added.stdout)).toMatchObject({ client_id: 'ci-bare' });
  const shown = await runCli(['clients', 'show', 'ci-bare', '--json'], bare);
  expect(JSON.parse(shown.stdout)).toMatchObject({ name: 'ci-bare', maxRequestTokenTtl: 7200 });
  expect((await runCli(['audit', 'list', '--limit', '1', '--json'], bare)).code).toBe(0);
  const rotate = await runCli(['keys', 'rotate'], bare);
  expect(rotate.code).toBe(2);
  expect(rotate.stderr).toBe(
    'jenkins-oidc: invalid configuration:\n  - KEY_ENCRYPTION_KEY: required in production mode (DATABASE_URL is set). Generate one with `openssl rand -base64 32` and set KEY_ENCRYPTION_KEY or KEY_ENCRYPTION_KEY_FILE\n',
  );
});

test('a misspelt variable is named on every command', async () => {
  const res = await runCli(['clients', 'list', '--json'], { ...env, DATABSE_URL: 'postgres://nowhere/x' });
  expect(res.code).toBe(0);
  expect(res.stderr).toBe('warning: DATABSE_URL is not a setting of jenkins-oidc and is ignored; did you mean DATABASE_URL?\n');
});

test('durations take one grammar: --max-ttl 90m', async () => {
  const res = await runCli(['clients', 'add', 'ci-dur', '--jenkins-url', 'https://dur.example.com', '--max-ttl', '90m', '--json'], env);
  expect(res.code).toBe(0);
  expect(JSON.parse((await runCli(['clients', 'show', 'ci-dur', '--json'], env)).stdout)).toMatchObject({ maxRequestTokenTtl: 5400 });
  const bad = await runCli(['clients', 'add', 'ci-bad', '--jenkins-url', 'https://bad.example.com', '--max-ttl', 'soon'], env);
  expect(bad).toEqual({ code: 1, stdout: '', stderr: 'error: --max-ttl: must be a duration such as 3600, 90m, 1h or 1d, got "soon"\n' });
});
