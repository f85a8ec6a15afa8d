// The polling fallback: a key change that was never announced (a lost
// NOTIFY, a dropped listener connection) still reaches the replica: every
// KEY_CHECK_INTERVAL it checks the key set, and one check is enough.
// (The fast path, LISTEN/NOTIFY, is notify.test.ts.)
import { createKey } from '../../src/signing-keys/lifecycle.js';
import { inTransaction } from '../../src/store/sql.js';
import { startTestService, type TestService } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService({ KEY_CHECK_INTERVAL: '1' });
});
afterAll(async () => t.stop());

/** A pending ES256 key written straight to the database, without the NOTIFY every admin command sends. */
async function silentKey(): Promise<string> {
  const kek = t.config.keyEncryptionKey!;
  const step = await inTransaction(t.database.db, (tx) =>
    createKey(tx, kek, { alg: 'ES256', status: 'pending', actor: 'test', reason: 'silent change', now: new Date(), activateAfter: new Date(Date.now() + 3600_000) }),
  );
  return step.kid;
}

async function publishedKids(): Promise<string[]> {
  return ((await (await fetch(`${t.url}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
}

test('an unannounced new key is published by the replica\'s own periodic check', async () => {
  const kid = await silentKey();
  await waitFor('the unannounced key in the JWKS', async () => (await publishedKids()).includes(kid));
  const discovery = (await (await fetch(`${t.url}/.well-known/openid-configuration`)).json()) as { id_token_signing_alg_values_supported: string[] };
  expect(discovery.id_token_signing_alg_values_supported).toEqual(['RS256', 'ES256']);
  // The JWKS cache lifetime stays below half the publish lead (1 h): 300 s.
  expect((await fetch(`${t.url}/jwks`)).headers.get('cache-control')).toBe('public, max-age=300');
});

test('one check is enough: right after a single tick the unannounced key is published', async () => {
  const kid = await silentKey();
  await t.service.watcher.tick();
  expect(t.service.runtime.current.kids).toContain(kid);
  expect(await publishedKids()).toContain(kid);
});
