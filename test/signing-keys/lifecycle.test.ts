// The key lifecycle and schedule on a real database, with the clock passed
// in so that a month of rotation takes milliseconds.
import { randomBytes } from 'node:crypto';
import { listKeys, revokeKey, rewrapKeys, rotateKeys } from '../../src/signing-keys/commands.js';
import { loadSigningKeys } from '../../src/signing-keys/keys.js';
import { ensureSigningKey, runSchedule } from '../../src/signing-keys/lifecycle.js';
import { DomainError } from '../../src/errors.js';
import { createTestDatabase, testPrisma, type TestDatabase } from '../helpers/database.js';

const timing = { rotationInterval: 30 * 86400, publishLead: 3600, retiredRetention: 3600 };
const kek = randomBytes(32);
let d: TestDatabase;
const T0 = new Date('2026-01-01T00:00:00Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

async function statuses() {
  return (await d.query<{ kid: string; status: string }>('SELECT kid, status FROM signing_keys ORDER BY created_at, kid')).map((r) => r.status);
}

beforeEach(async () => {
  d = await createTestDatabase();
});
afterEach(async () => d.drop());

test('the scheduler walks pending -> active -> retired -> removed on its own, recording every step', async () => {
  const [first] = await ensureSigningKey(d.db, kek, 'RS256', timing, T0);
  expect(await runSchedule(d.db, kek, timing, 'RS256', at(29 * 86400))).toEqual([]);

  const started = await runSchedule(d.db, kek, timing, 'RS256', at(30 * 86400));
  expect(started).toEqual([{ kid: expect.any(String), from: null, to: 'pending', reason: 'rotation interval reached' }]);
  const second = started[0]!.kid;
  expect(await statuses()).toEqual(['active', 'pending']);
  expect(await runSchedule(d.db, kek, timing, 'RS256', at(30 * 86400 + 3599))).toEqual([]);

  expect(await runSchedule(d.db, kek, timing, 'RS256', at(30 * 86400 + 3600))).toEqual([
    { kid: first!.kid, from: 'active', to: 'retired', reason: `replaced by ${second}` },
    { kid: second, from: 'pending', to: 'active', reason: 'publish lead passed' },
  ]);
  expect(await runSchedule(d.db, kek, timing, 'RS256', at(30 * 86400 + 7200))).toEqual([
    { kid: first!.kid, from: 'retired', to: 'removed', reason: 'retention passed' },
  ]);
  expect(await statuses()).toEqual(['removed', 'active']);
  const [removed] = await d.query('SELECT private_key_encrypted, removed_at FROM signing_keys WHERE kid = $1', [first!.kid]);
  expect(removed).toEqual({ private_key_encrypted: null, removed_at: at(30 * 86400 + 7200) });

  const keys = await listKeys(d.db);
  expect(keys[0]!.history).toEqual([
    { at: T0.toISOString(), from: null, to: 'active', actor: 'startup', reason: 'first key' },
    { at: at(30 * 86400 + 3600).toISOString(), from: 'active', to: 'retired', actor: 'scheduler', reason: `replaced by ${second}` },
    { at: at(30 * 86400 + 7200).toISOString(), from: 'retired', to: 'removed', actor: 'scheduler', reason: 'retention passed' },
  ]);
  expect((await loadSigningKeys(d.db, kek)).map((k) => [k.kid, k.status])).toEqual([[second, 'active']]);
});

test('two replicas running the schedule at once perform each step exactly once', async () => {
  await ensureSigningKey(d.db, kek, 'RS256', timing, T0);
  const other = testPrisma(d.url, 2);
  try {
    const now = at(30 * 86400);
    const results = await Promise.all([runSchedule(d.db, kek, timing, 'RS256', now), runSchedule(other, kek, timing, 'RS256', now)]);
    expect(results.flat()).toHaveLength(1);
    expect(await statuses()).toEqual(['active', 'pending']);
  } finally {
    await other.$disconnect();
  }
});

test('a rotation interrupted between steps is completed by the next run', async () => {
  const [first] = await ensureSigningKey(d.db, kek, 'RS256', timing, T0);
  await rotateKeys(d.db, kek, { alg: 'RS256', actor: 'admin:test', publishLead: 3600, clock: at(10) });
  // The process died after the lead passed, before anything promoted the key:
  const steps = await runSchedule(d.db, kek, timing, 'RS256', at(5000));
  expect(steps.map((s) => [s.from, s.to])).toEqual([['active', 'retired'], ['pending', 'active']]);
  expect(steps[0]!.kid).toBe(first!.kid);
});

test('planned rotation refuses a second one while the first is under way', async () => {
  await ensureSigningKey(d.db, kek, 'RS256', timing, T0);
  const [pending] = await rotateKeys(d.db, kek, { alg: 'RS256', actor: 'admin:test', publishLead: 3600, clock: at(10) });
  await expect(rotateKeys(d.db, kek, { alg: 'RS256', actor: 'admin:test', publishLead: 3600, clock: at(20) })).rejects.toThrow(
    new DomainError(`a rotation is already under way: ${pending!.kid} is published and starts signing at ${at(3610).toISOString()}`),
  );
});

test('emergency rotation signs at once with the already-published pending key, or a new one', async () => {
  const [first] = await ensureSigningKey(d.db, kek, 'RS256', timing, T0);
  const [pending] = await rotateKeys(d.db, kek, { alg: 'RS256', actor: 'admin:test', publishLead: 3600, clock: at(10) });
  const now1 = await rotateKeys(d.db, kek, { alg: 'RS256', now: true, actor: 'admin:test', publishLead: 3600, clock: at(20) });
  expect(now1).toEqual([
    { kid: first!.kid, from: 'active', to: 'retired', reason: `replaced by ${pending!.kid}` },
    { kid: pending!.kid, from: 'pending', to: 'active', reason: 'emergency rotation' },
  ]);
  const now2 = await rotateKeys(d.db, kek, { alg: 'ES256', now: true, actor: 'admin:test', publishLead: 3600, clock: at(30) });
  expect(now2.map((s) => [s.from, s.to])).toEqual([[null, 'pending'], ['active', 'retired'], ['pending', 'active']]);
  const keys = await loadSigningKeys(d.db, kek);
  expect(keys.map((k) => [k.alg, k.status])).toEqual([['RS256', 'retired'], ['RS256', 'retired'], ['ES256', 'active']]);
});

test('revoking the signing key alone is refused; with --rotate it is replaced and removed', async () => {
  const [first] = await ensureSigningKey(d.db, kek, 'RS256', timing, T0);
  await expect(revokeKey(d.db, kek, first!.kid, { actor: 'admin:test', alg: 'RS256' })).rejects.toThrow(
    new DomainError(`${first!.kid} is the key that signs right now; revoking it alone would leave nothing to sign`),
  );
  expect(await statuses()).toEqual(['active']);
  const steps = await revokeKey(d.db, kek, first!.kid, { actor: 'admin:test', alg: 'RS256', rotate: true, clock: at(5) });
  expect(steps.map((s) => [s.kid === first!.kid, s.from, s.to])).toEqual([
    [false, null, 'pending'],
    [true, 'active', 'retired'],
    [false, 'pending', 'active'],
    [true, 'retired', 'removed'],
  ]);
  expect(await statuses()).toEqual(['removed', 'active']);
  await expect(revokeKey(d.db, kek, first!.kid, { actor: 'admin:test', alg: 'RS256' })).rejects.toThrow(new DomainError(`signing key ${first!.kid} is already removed`));
});

test('rewrap moves every private key to a new key-encryption key, all or nothing', async () => {
  await ensureSigningKey(d.db, kek, 'RS256', timing, T0);
  await rotateKeys(d.db, kek, { alg: 'ES256', actor: 'admin:test', publishLead: 3600, clock: at(10) });
  const next = randomBytes(32);
  const result = await rewrapKeys(d.db, kek, next, 'admin:test');
  expect(result.rewrapped).toHaveLength(2);
  expect(result.alreadyCurrent).toEqual([]);
  expect((await loadSigningKeys(d.db, next)).map((k) => k.status)).toEqual(['active', 'pending']);
  await expect(loadSigningKeys(d.db, kek)).rejects.toThrow(/could not be decrypted with the configured key-encryption key/);
  // Running it again is harmless; a wrong previous key changes nothing.
  expect(await rewrapKeys(d.db, kek, next, 'admin:test')).toEqual({ rewrapped: [], alreadyCurrent: result.rewrapped });
  const before = await d.query('SELECT kid, private_key_encrypted FROM signing_keys ORDER BY kid');
  await expect(rewrapKeys(d.db, randomBytes(32), randomBytes(32), 'admin:test')).rejects.toThrow(/decrypts with neither KEY_ENCRYPTION_KEY_PREVIOUS nor KEY_ENCRYPTION_KEY; nothing was rewritten/);
  expect(await d.query('SELECT kid, private_key_encrypted FROM signing_keys ORDER BY kid')).toEqual(before);
});

test('changing SIGNING_ALG publishes a key of the new algorithm, which signs after the lead', async () => {
  await ensureSigningKey(d.db, kek, 'RS256', timing, T0);
  const steps = await ensureSigningKey(d.db, kek, 'ES256', timing, at(100));
  expect(steps).toEqual([{ kid: expect.any(String), from: null, to: 'pending', reason: 'SIGNING_ALG changed from RS256 to ES256' }]);
  const promoted = await runSchedule(d.db, kek, timing, 'ES256', at(3700));
  expect(promoted.map((s) => [s.from, s.to])).toEqual([['active', 'retired'], ['pending', 'active']]);
});
