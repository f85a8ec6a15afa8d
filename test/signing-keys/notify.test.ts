// Key changes reach every replica by LISTEN/NOTIFY (docs/key-rotation.md:
// within milliseconds; polling every KEY_CHECK_INTERVAL is only the fallback,
// tested by watcher.test.ts). Two replicas on one database poll once an hour
// here, so within this test only a notification can bring them a change: a
// replica that stopped listening fails the test instead of passing on its
// polling. The changes are made by the admin CLI, a process of its own, as an
// operator makes them.
import { randomBytes } from 'node:crypto';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';

const KEK = randomBytes(32).toString('base64');
let database: TestDatabase;
let cli: Record<string, string>;
const replicas: TestService[] = [];

beforeAll(async () => {
  database = await createTestDatabase();
  cli = { DATABASE_URL: database.url, KEY_ENCRYPTION_KEY: KEK, ISSUER: 'https://oidc.example.com' };
  // KEY_PUBLISH_LEAD 1h: a planned key stays pending for the whole test.
  const env = { KEY_ENCRYPTION_KEY: KEK, KEY_CHECK_INTERVAL: '1h', KEY_PUBLISH_LEAD: '1h' };
  replicas.push(await startTestService(env, database));
  replicas.push(await startTestService(env, database));
});
afterAll(async () => {
  for (const r of replicas) await r.stop();
  await database?.drop();
});

async function published(r: TestService): Promise<string[]> {
  const res = await fetch(`${r.url}/jwks`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid).sort();
}

const signer = (r: TestService) => r.service.runtime.current.signer.kid;

async function keysCli(args: string[]): Promise<{ kid: string; to: string }[]> {
  const res = await runCli(['keys', ...args, '--json'], cli);
  expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: '' });
  return JSON.parse(res.stdout) as { kid: string; to: string }[];
}

test('a planned rotation is published on every replica by NOTIFY alone, and signs nowhere yet', async () => {
  const active = signer(replicas[0]!);
  expect(signer(replicas[1]!)).toBe(active);
  const before = await published(replicas[0]!);
  const [pending] = await keysCli(['rotate']);
  expect(pending!.to).toBe('pending');
  const announced = Date.now();
  await waitFor('both replicas to publish the new key', () => replicas.every((r) => r.service.runtime.current.kids.includes(pending!.kid)));
  const ms = Date.now() - announced;
  for (const r of replicas) {
    expect(await published(r)).toEqual([...before, pending!.kid].sort());
    expect(signer(r)).toBe(active);
  }
  process.stdout.write(`notify: a planned key published on both replicas within ${ms} ms of the CLI's return\n`);
});

test('an emergency rotation signs at once on every replica, and a revoked key leaves every JWKS, by NOTIFY alone', async () => {
  const previous = signer(replicas[0]!);
  const steps = await keysCli(['rotate', '--now']);
  const newest = steps.find((s) => s.to === 'active')!.kid;
  await waitFor('both replicas to sign with the emergency key', () => replicas.every((r) => signer(r) === newest));
  for (const r of replicas) expect(await published(r)).toContain(previous);

  const revoked = await keysCli(['revoke', previous]);
  expect(revoked).toEqual([expect.objectContaining({ kid: previous, to: 'removed' })]);
  await waitFor('both replicas to drop the revoked key', () => replicas.every((r) => !r.service.runtime.current.kids.includes(previous)));
  for (const r of replicas) {
    expect(await published(r)).not.toContain(previous);
    expect(signer(r)).toBe(newest);
  }
});
