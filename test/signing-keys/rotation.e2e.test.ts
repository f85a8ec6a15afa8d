// Zero-downtime rotation across replicas: two real `jenkins-oidc serve`
// processes on one database, a steady stream of exchanges through both, and
// a planned rotation, an emergency rotation and a revocation made through the
// admin CLI. Timings are measured, not assumed.
import { randomBytes } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose';
import { registerClient } from '../../src/clients/commands.js';
import { decryptPrivateKey } from '../../src/signing-keys/encryption.js';
import { createPrisma, type Db } from '../../src/store/prisma.js';
import { runCli, startServe, type ServeProcess } from '../helpers/cli.js';
import { createEmptyDatabase } from '../helpers/database.js';
import { basic, freePort } from '../helpers/service.js';
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

/** Polls until `check` is true; returns the milliseconds it took. */
async function within(ms: number, check: () => Promise<boolean>, what: string): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < ms) {
    if (await check()) return Date.now() - started;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not happen within ${ms} ms`);
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
    KEY_PUBLISH_LEAD: '3s',
    KEY_CHECK_INTERVAL: '1',
    KEY_RETIRED_RETENTION: '10m',
    DATABASE_POOL_SIZE: '4',
  };
  // Both replicas start at once: migrations and the first key are serialised by advisory locks.
  const ports = [await freePort(), await freePort()];
  const procs = await Promise.all(ports.map((p) => startServe({ ...env, PORT: String(p) })));
  ports.forEach((p, i) => replicas.push({ url: `http://127.0.0.1:${p}`, proc: procs[i]! }));
  db = createPrisma(database.url, 2);
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

  // Planned: the new key is published on both replicas at once, signs after the 3 s lead.
  const planned = await runCli(['keys', 'rotate', '--json'], env);
  expect(planned).toMatchObject({ code: 0, stderr: '' });
  const [pending] = JSON.parse(planned.stdout) as { kid: string; to: string }[];
  expect(pending!.to).toBe('pending');
  const published = await within(5000, publishes(pending!.kid), 'publication on both replicas');
  expect(await signsWith(first)()).toBe(true); // published, not signing yet
  await within(15000, async () => (await db.signingKey.findUnique({ where: { kid: pending!.kid } }))?.status === 'active', 'promotion');
  const promotedAt = (await db.signingKey.findUnique({ where: { kid: pending!.kid } }))!.activatedAt!.getTime();
  await within(10000, signsWith(pending!.kid), 'both replicas signing with the new key');
  const plannedSwap = Date.now() - promotedAt;
  expect(plannedSwap).toBeLessThan(5000);
  const beforeEmergency = issued.length;

  // Emergency: signs at once on every replica.
  const emergency = await runCli(['keys', 'rotate', '--now', '--json'], env);
  expect(emergency).toMatchObject({ code: 0, stderr: '' });
  const newest = (JSON.parse(emergency.stdout) as { kid: string; to: string }[]).find((s) => s.to === 'active')!.kid;
  const emergencySwap = await within(5000, signsWith(newest), 'both replicas signing with the emergency key');

  // Let the stream run a little on the final key, then stop it.
  await new Promise((r) => setTimeout(r, 500));
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

  // Revocation: out of both replicas' JWKS within 5 s; its tokens stop verifying.
  const revoked = await runCli(['keys', 'revoke', first, '--json'], env);
  expect(revoked).toMatchObject({ code: 0, stderr: '' });
  const revocationSwap = await within(5000, publishes(first, false), 'revocation on both replicas');
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
