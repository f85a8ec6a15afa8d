// The polling fallback: a key change that was never announced (a lost
// NOTIFY, a dropped listener connection) still reaches the replica within
// one KEY_CHECK_INTERVAL.
import { createKey } from '../../src/signing-keys/lifecycle.js';
import { startTestService, type TestService } from '../helpers/service.js';

let t: TestService;
beforeAll(async () => {
  t = await startTestService({ KEY_CHECK_INTERVAL: '1' });
});
afterAll(async () => t.stop());

test('an unannounced new key is published within one check interval', async () => {
  const kek = t.config.keyEncryptionKey!;
  const step = await t.database.db.$transaction((tx) =>
    createKey(tx, kek, { alg: 'ES256', status: 'pending', actor: 'test', reason: 'silent change', now: new Date(), activateAfter: new Date(Date.now() + 3600_000) }),
  );
  const started = Date.now();
  let kids: string[] = [];
  while (Date.now() - started < 3000) {
    kids = ((await (await fetch(`${t.url}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
    if (kids.includes(step.kid)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(kids).toContain(step.kid);
  expect(Date.now() - started).toBeLessThan(2500);
  const discovery = (await (await fetch(`${t.url}/.well-known/openid-configuration`)).json()) as { id_token_signing_alg_values_supported: string[] };
  expect(discovery.id_token_signing_alg_values_supported).toEqual(['RS256', 'ES256']);
  // The JWKS cache lifetime stays below half the publish lead (1 h): 300 s.
  expect((await fetch(`${t.url}/jwks`)).headers.get('cache-control')).toBe('public, max-age=300');
});
