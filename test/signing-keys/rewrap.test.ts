// Changing the key-encryption key: `keys rewrap`, then the service starts with
// only the new key; with only the old one it refuses, naming the kid.
import { randomBytes } from 'node:crypto';
import { runCli, startServe } from '../helpers/cli.js';
import { createEmptyDatabase } from '../helpers/database.js';

const OLD = randomBytes(32).toString('base64');
const NEW = randomBytes(32).toString('base64');
let env: Record<string, string>;
let drop: () => Promise<void>;

beforeAll(async () => {
  const db = await createEmptyDatabase();
  drop = db.drop;
  env = { DATABASE_URL: db.url, ISSUER: 'https://oidc.example.com' };
});
afterAll(async () => drop());

async function serveOnce(kek: string) {
  const s = await startServe({ ...env, KEY_ENCRYPTION_KEY: kek });
  const listening = s.url !== undefined;
  if (listening) s.child.kill('SIGTERM');
  const code = await s.exited;
  return { listening, code, output: s.output() };
}

test('rewrap, then restart with only the new key-encryption key', async () => {
  expect(await serveOnce(OLD)).toMatchObject({ listening: true, code: 0 });
  const kid = (JSON.parse((await runCli(['keys', 'list', '--json'], { ...env, KEY_ENCRYPTION_KEY: OLD })).stdout) as { kid: string }[])[0]!.kid;

  const missing = await runCli(['keys', 'rewrap'], { ...env, KEY_ENCRYPTION_KEY: NEW });
  expect(missing).toEqual({ code: 1, stdout: '', stderr: 'error: KEY_ENCRYPTION_KEY_PREVIOUS is not set\n  set it to the key the service runs with today, and KEY_ENCRYPTION_KEY to the new one\n' });

  const rewrapped = await runCli(['keys', 'rewrap'], { ...env, KEY_ENCRYPTION_KEY: NEW, KEY_ENCRYPTION_KEY_PREVIOUS: OLD });
  expect(rewrapped).toEqual({ code: 0, stdout: 'rewrapped 1 key(s)\n', stderr: 'Restart every replica with the new KEY_ENCRYPTION_KEY; the previous key is no longer needed.\n' });

  expect(await serveOnce(NEW)).toMatchObject({ listening: true, code: 0 });
  const old = await serveOnce(OLD);
  expect(old.listening).toBe(false);
  expect(old.code).toBe(1);
  expect(old.output).toContain(`error: signing key ${kid} could not be decrypted with the configured key-encryption key. Is KEY_ENCRYPTION_KEY (or KEY_ENCRYPTION_KEY_FILE) the one this database was created with?`);

  const listed = await runCli(['keys', 'list'], { ...env, KEY_ENCRYPTION_KEY: NEW });
  expect(listed.code).toBe(0);
  expect(listed.stdout).toMatch(new RegExp(`history:\\n.*  ${kid}  \\(new\\) -> active  by startup: first key\\n.*  ${kid}  active -> active  by admin:\\S+: rewrapped under a new key-encryption key\\n$`));
});
