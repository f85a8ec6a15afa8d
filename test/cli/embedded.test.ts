// The embedded default, as an admin meets it: `serve` with no DATABASE_URL
// runs its own PostgreSQL in DATA_DIR, a second terminal's CLI uses it, a
// second `serve` is refused, data survives a restart, SIGTERM stops cleanly.
// The tests follow one DATA_DIR through its life, in order. Each `serve`
// binds a free port itself (PORT=0) and the test reads it back: a port found
// free beforehand and reused across restarts could be taken meanwhile.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { runCli, scratchDir, startServe, type ServeProcess } from '../helpers/cli.js';

const dataDir = path.join(scratchDir(), 'data');
const env: Record<string, string> = { DATA_DIR: dataDir, ISSUER: 'http://127.0.0.1' };
let serve: ServeProcess | undefined;

/** `serve` on DATA_DIR, listening: its URL. */
async function startEmbedded(): Promise<string> {
  serve = await startServe(env);
  if (!serve.url) throw new Error(`serve did not start:\n${serve.output()}`);
  return serve.url;
}

afterAll(async () => {
  if (serve && serve.child.exitCode === null) {
    serve.child.kill('SIGTERM');
    await serve.exited;
  }
});

async function mintWith(url: string, secret: string) {
  return fetch(`${url}/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`ci-main:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'urn:jenkins-oidc:grant-type:build-request-token', job: 'app', build_number: '1', build_url: 'https://jenkins.example.com/job/app/1/' }),
  });
}

let url: string;

test('serve starts its own PostgreSQL and a 0600 key-encryption key in DATA_DIR', async () => {
  url = await startEmbedded();
  expect(statSync(path.join(dataDir, 'key-encryption-key')).mode & 0o777).toBe(0o600);
  expect(existsSync(path.join(dataDir, 'pg', 'PG_VERSION'))).toBe(true);
  const ready = await fetch(`${url}/readyz`);
  expect(ready.status).toBe(200);
});

let secret: string;
let kid: string;

test('a CLI command from a second terminal uses the running service\'s database', async () => {
  const added = await runCli(['clients', 'add', 'ci-main', '--jenkins-url', 'https://jenkins.example.com', '--json'], env);
  expect(added.stderr).toContain(`using the embedded database in ${dataDir}`);
  expect(added.code).toBe(0);
  const body = JSON.parse(added.stdout) as { client_id: string; client_secret: string };
  expect(body.client_id).toBe('ci-main');
  secret = body.client_secret;
  const res = await mintWith(url, secret);
  expect(res.status).toBe(200);
  kid = ((await (await fetch(`${url}/jwks`)).json()) as { keys: { kid: string }[] }).keys[0]!.kid;
});

test('a second serve on the same DATA_DIR gets a clear error and leaves the first one serving', async () => {
  const second = await startServe(env);
  const code = await second.exited;
  expect(code).toBe(1);
  expect(second.url).toBeUndefined();
  expect(second.output()).toMatch(new RegExp(`error: the embedded database in ${dataDir} is in use by \`jenkins-oidc serve\` \\(pid \\d+\\)\\. Stop that process first, or give this one another DATA_DIR\\.`));
  expect((await fetch(`${url}/readyz`)).status).toBe(200);
});

test('SIGTERM stops the service and its PostgreSQL cleanly', async () => {
  serve!.child.kill('SIGTERM');
  expect(await serve!.exited).toBe(0);
  expect(existsSync(path.join(dataDir, 'pg', 'postmaster.pid'))).toBe(false);
  expect(existsSync(path.join(dataDir, 'embedded.lock'))).toBe(false);
  expect(existsSync(path.join(dataDir, 'embedded.json'))).toBe(false);
});

test('with no serve running, a CLI command runs the database itself, then stops it', async () => {
  const listed = await runCli(['clients', 'list', '--json'], env);
  expect(listed.code).toBe(0);
  expect((JSON.parse(listed.stdout) as { name: string }[]).map((c) => c.name)).toEqual(['ci-main']);
  expect(existsSync(path.join(dataDir, 'pg', 'postmaster.pid'))).toBe(false);
});

test('after a restart the data and the signing key are still there', async () => {
  const restarted = await startEmbedded();
  expect((await mintWith(restarted, secret)).status).toBe(200);
  const keys = ((await (await fetch(`${restarted}/jwks`)).json()) as { keys: { kid: string }[] }).keys;
  expect(keys.map((k) => k.kid)).toEqual([kid]);
  const audit = await runCli(['audit', 'list', '--client', 'ci-main', '--json'], env);
  expect((JSON.parse(audit.stdout) as { event: string }[]).map((r) => r.event)).toEqual(['request_token.issued', 'request_token.issued']);
  serve!.child.kill('SIGINT');
  expect(await serve!.exited).toBe(0);
});

test('a serve killed with SIGKILL does not block the next start', async () => {
  await startEmbedded();
  serve!.child.kill('SIGKILL');
  await serve!.exited;
  const next = await startEmbedded();
  expect((await fetch(`${next}/readyz`)).status).toBe(200);
  serve!.child.kill('SIGTERM');
  expect(await serve!.exited).toBe(0);
});

describe('commands queue behind each other on one DATA_DIR', () => {
  const queueDir = path.join(scratchDir(), 'queue');
  const queueEnv = () => ({ DATA_DIR: queueDir, PORT: '1', ISSUER: 'http://127.0.0.1:8080' });

  test('two CLI commands at once both succeed: the second waits for the first', async () => {
    const [a, b] = await Promise.all([
      runCli(['clients', 'add', 'ci-one', '--jenkins-url', 'https://one.example.com', '--json'], queueEnv()),
      runCli(['clients', 'add', 'ci-two', '--jenkins-url', 'https://two.example.com', '--json'], queueEnv()),
    ]);
    expect([a.code, b.code]).toEqual([0, 0]);
    expect([a.stderr, b.stderr].filter((e) => /waiting for another jenkins-oidc command to finish \(pid \d+\)/.test(e))).toHaveLength(1);
    const listed = await runCli(['clients', 'list', '--json'], queueEnv());
    expect((JSON.parse(listed.stdout) as { name: string }[]).map((c) => c.name).sort()).toEqual(['ci-one', 'ci-two']);
  });
});
