// Zero-downtime rotation across replicas: two real `jenkins-oidc serve`
// processes on one database, a steady stream of exchanges through both, and
// a planned rotation, an emergency rotation and a revocation made through the
// admin CLI. Timings are measured and printed, not asserted: each step waits
// for the state it needs. The publish lead is an hour, so "published on both
// replicas, not signing yet" holds however slow the machine; the lead is then
// made to have passed (activate_after moved to now) and the replicas' own
// schedulers promote the key. (LISTEN/NOTIFY alone, without polling, is
// proven by notify.test.ts.)
import { randomBytes } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { registerClient } from '../../src/clients/commands.js';
import { decryptPrivateKey } from '../../src/signing-keys/encryption.js';
import { type Db } from '../../src/store/prisma.js';
import { runCli, startServe, type ServeProcess } from '../helpers/cli.js';
import { createEmptyDatabase, testPrisma } from '../helpers/database.js';
import { basic } from '../helpers/service.js';
import { waitFor } from '../helpers/wait.js';
import { createPrivateKey } from 'node:crypto';

const KEK = randomBytes(32).toString('base64');
let drop: () => Promise<void>;
let env: Record<string, string>;
let db: Db;
const replicas: { url: string; proc: ServeProcess }[] = [];
const requestTokens: string[] = [];

async function jwks(url: string): Promise<JSONWebKeySet> {
  return (await (await fetch(`${url}/jwks`)).json()) as JSONWebKeySet;
}

async function exchange(url: string, token: string): Promise<{ status: number; jwt?: string }> {
  const res = await fetch(`${url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      client_id: 'jenkins-build',
      subject_token: token,
      subject_token_type: 'urn:jenkins-oidc:token-type:build-request-token',
    }),
  });
  const body = (await res.json()) as { access_token?: string };
  return { status: res.status, jwt: body.access_token };
}

/** Waits until `check` is true; returns the milliseconds it took (a figure to print, not to assert). */
async function measured(what: string, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  await waitFor(what, check);
  return Date.now() - started;
}

const signsWith = (kid: string) => async () => {
  const kids = await Promise.all(replicas.map(async (r) => decodeProtectedHeader((await exchange(r.url, requestTokens[0]!)).jwt!).kid));
  return kids.every((k) => k === kid);
};
const publishes = (kid: string, yes = true) => async () =>
  (await Promise.all(replicas.map(async (r) => (await jwks(r.url)).keys.some((k) => k.kid === kid)))).every((p) => p === yes);

beforeAll(async () => {
  const database = await createEmptyDatabase();
  drop = database.drop;
  env = {
    DATABASE_URL: database.url,
    KEY_ENCRYPTION_KEY: KEK,
    ISSUER: 'https://oidc.example.com',
    KEY_PUBLISH_LEAD: '1h',
    KEY_CHECK_INTERVAL: '1',
    KEY_RETIRED_RETENTION: '10m',
    DATABASE_POOL_SIZE: '4',
  };
  // Both replicas start at once: migrations and the first key are serialised by advisory locks.
  // Each binds a free port itself (PORT=0) and reports it.
  const procs = await Promise.all([startServe(env), startServe(env)]);
  for (const proc of procs) {
    if (!proc.url) throw new Error(`serve did not start:\n${proc.output()}`);
    replicas.push({ url: proc.url, proc });
  }
  db = testPrisma(database.url, 2);
  const { secret } = await registerClient(db, { name: 'ci-main', jenkinsUrl: 'https://jenkins.example.com' }, 86400);
  for (let i = 1; i <= 10; i += 1) {
    const res = await fetch(`${replicas[0]!.url}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic('ci-main', secret) },
      body: new URLSearchParams({ grant_type: 'urn:jenkins-oidc:grant-type:build-request-token', job: 'app', build_number: String(i), build_url: `https://jenkins.example.com/job/app/${i}/` }),
    });
    requestTokens.push(((await res.json()) as { access_token: string }).access_token);
  }
});

afterAll(async () => {
  for (const r of replicas) {
    r.proc.child.kill('SIGTERM');
    await r.proc.exited;
  }
  await db?.$disconnect();
  await drop?.();
});

test('planned and emergency rotation and revocation across two replicas, with zero failed exchanges', async () => {
  expect((await db.signingKey.findMany()).length).toBe(1);
  const first = (await jwks(replicas[0]!.url)).keys[0]!.kid!;
  expect((await jwks(replicas[1]!.url)).keys.map((k) => k.kid)).toEqual([first]);

  // A steady stream through both replicas for the whole test.
  const issued: string[] = [];
  let failures = 0;
  let running = true;
  const stream = Promise.all(
    [0, 1, 2, 3].map(async (worker) => {
      for (let i = worker; running; i += 4) {
        const res = await exchange(replicas[i % 2]!.url, requestTokens[i % requestTokens.length]!);
        if (res.status === 200) issued.push(res.jwt!);
        else failures += 1;
      }
    }),
  );

  // Planned: the new key is published on both replicas, and signs only once the lead has passed.
  const planned = await runCli(['keys', 'rotate', '--json'], env);
  expect(planned).toMatchObject({ code: 0, stderr: '' });
  const [pending] = JSON.parse(planned.stdout) as { kid: string; to: string }[];
  expect(pending!.to).toBe('pending');
  const published = await measured('publication on both replicas', publishes(pending!.kid));
  expect(await signsWith(first)()).toBe(true); // published, not signing yet
  // The lead has passed: the next scheduler tick of either replica promotes the key.
  await db.signingKey.update({ where: { kid: pending!.kid }, data: { activateAfter: new Date() } });
  await waitFor('promotion', async () => (await db.signingKey.findUnique({ where: { kid: pending!.kid } }))?.status === 'active');
  const promotedAt = (await db.signingKey.findUnique({ where: { kid: pending!.kid } }))!.activatedAt!.getTime();
  await waitFor('both replicas signing with the new key', signsWith(pending!.kid));
  const plannedSwap = Date.now() - promotedAt;
  const beforeEmergency = issued.length;

  // Emergency: signs at once on every replica.
  const emergency = await runCli(['keys', 'rotate', '--now', '--json'], env);
  expect(emergency).toMatchObject({ code: 0, stderr: '' });
  const newest = (JSON.parse(emergency.stdout) as { kid: string; to: string }[]).find((s) => s.to === 'active')!.kid;
  const emergencySwap = await measured('both replicas signing with the emergency key', signsWith(newest));

  // Let the stream run on the final key (a few tokens through each replica), then stop it.
  await waitFor('tokens signed with the emergency key', () => issued.slice(beforeEmergency).filter((jwt) => decodeProtectedHeader(jwt).kid === newest).length >= 8);
  running = false;
  await stream;
  expect(failures).toBe(0);
  expect(issued.length).toBeGreaterThan(beforeEmergency);

  // Every token issued during the run still verifies against either replica's JWKS.
  const keySets = await Promise.all(replicas.map((r) => jwks(r.url)));
  expect(keySets[0]!.keys.map((k) => k.kid).sort()).toEqual([first, pending!.kid, newest].sort());
  for (const set of keySets) {
    const verifier = createLocalJWKSet(set);
    for (const jwt of issued) await jwtVerify(jwt, verifier, { issuer: 'https://oidc.example.com', audience: 'sts.amazonaws.com' });
  }
  const kidsSeen = new Set(issued.map((jwt) => decodeProtectedHeader(jwt).kid));
  expect([...kidsSeen].sort()).toEqual([first, pending!.kid, newest].sort());

  // Revocation: out of both replicas' JWKS; its tokens stop verifying.
  const revoked = await runCli(['keys', 'revoke', first, '--json'], env);
  expect(revoked).toMatchObject({ code: 0, stderr: '' });
  const revocationSwap = await measured('revocation on both replicas', publishes(first, false));
  const afterRevoke = createLocalJWKSet(await jwks(replicas[1]!.url));
  const signedByFirst = issued.find((jwt) => decodeProtectedHeader(jwt).kid === first)!;
  await expect(jwtVerify(signedByFirst, afterRevoke)).rejects.toThrow('no applicable key found in the JSON Web Key Set');

  // The history reads like a migration log.
  const listed = JSON.parse((await runCli(['keys', 'list', '--json'], env)).stdout) as { kid: string; status: string; history: { to: string; actor: string }[] }[];
  expect(listed.map((k) => [k.kid, k.status])).toEqual([[first, 'removed'], [pending!.kid, 'retired'], [newest, 'active']]);
  expect(listed[0]!.history.map((h) => `${h.to}/${h.actor.split(':')[0]}`)).toEqual(['active/startup', 'retired/scheduler', 'removed/admin']);

  // A full dump holds no private key material in clear.
  const rows = await db.$queryRaw<Record<string, unknown>[]>`SELECT * FROM signing_keys`;
  let dump = JSON.stringify(rows, (_k, v) => (typeof v === 'bigint' ? String(v) : v));
  for (const t of ['signing_key_events', 'audit_events', 'request_tokens', 'clients', 'oidc_models', '_prisma_migrations']) {
    dump += JSON.stringify(await db.$queryRawUnsafe(`SELECT * FROM "${t}"`), (_k, v) => (typeof v === 'bigint' ? String(v) : v));
  }
  for (const row of rows.filter((r) => r.private_key_encrypted)) {
    const der = decryptPrivateKey(Buffer.from(KEK, 'base64'), row.kid as string, row.private_key_encrypted as string);
    const jwk = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' }) as Record<string, string>;
    for (const p of ['d', 'p', 'q', 'dp', 'dq', 'qi']) if (jwk[p]) expect(dump).not.toContain(jwk[p]);
  }
  expect(rows.find((r) => r.kid === first)!.private_key_encrypted).toBeNull();

  process.stdout.write(
    `rotation figures: ${issued.length} exchanges, ${failures} failures; new key published on both replicas in ${published} ms; ` +
      `planned swap ${plannedSwap} ms after promotion; emergency swap ${emergencySwap} ms; revocation ${revocationSwap} ms\n`,
  );
});
