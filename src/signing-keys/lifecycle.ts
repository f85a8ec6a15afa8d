// The signing key lifecycle and its schedule.
//
//   pending ──(publish lead passed)──▶ active ──(next key promoted)──▶ retired ──(retention passed)──▶ removed
//
// pending: in JWKS, not signing, so relying parties (AWS) learn it before it
//          signs anything.
// active:  the one key that signs (a partial unique index allows one).
// retired: in JWKS, not signing, until every token it signed has expired.
// removed: gone from JWKS; the encrypted private part is destroyed.
//
// Every step is a conditional update plus a row in signing_key_events, inside
// one transaction that holds an advisory lock shared by every replica, so
// exactly one replica performs each step and a process killed mid-way leaves
// nothing half-done: the next run of the schedule simply does the step again.
import type { Prisma } from '../generated/prisma/client.js';
import type { Db } from '../store/prisma.js';
import { encryptPrivateKey } from './encryption.js';
import { generateKeyPair, newKid, publicJwkOf, type KeyStatus, type SigningAlg } from './keys.js';

export type Tx = Prisma.TransactionClient;

/** Arbitrary constant shared by every replica: "jenkins-oidc signing keys". */
export const KEY_LOCK = 727_001_002;
/**
 * Key transactions generate keys and wait for the key lock: under load they
 * can outlast Prisma's 5 s interactive-transaction default, which would abort
 * them half-way (nothing is written, but the command fails).
 */
export const KEY_TX_OPTIONS = { maxWait: 10_000, timeout: 60_000 };

/** Channel on which key changes are announced to every replica. */
export const KEYS_CHANNEL = 'jenkins_oidc_keys';

export interface Timing {
  rotationInterval: number;
  publishLead: number;
  retiredRetention: number;
}

export function timingOf(config: { keyRotationInterval: number; keyPublishLead: number; keyRetiredRetention: number }): Timing {
  return { rotationInterval: config.keyRotationInterval, publishLead: config.keyPublishLead, retiredRetention: config.keyRetiredRetention };
}

export interface Step {
  kid: string;
  from: KeyStatus | null;
  to: KeyStatus;
  reason: string;
}

/** Creates a key (encrypted at rest) in the given state and records its first step. */
export async function createKey(
  tx: Tx,
  kek: Buffer,
  opts: { alg: SigningAlg; status: 'pending' | 'active'; actor: string; reason: string; now: Date; activateAfter?: Date },
): Promise<Step> {
  const kid = newKid();
  const privateKey = generateKeyPair(opts.alg);
  await tx.signingKey.create({
    data: {
      kid,
      alg: opts.alg,
      status: opts.status,
      createdAt: opts.now,
      activateAfter: opts.activateAfter ?? null,
      activatedAt: opts.status === 'active' ? opts.now : null,
      publicJwk: publicJwkOf(kid, opts.alg, privateKey) as object,
      privateKeyEncrypted: encryptPrivateKey(kek, kid, privateKey.export({ format: 'der', type: 'pkcs8' })),
    },
  });
  await tx.signingKeyEvent.create({ data: { kid, fromStatus: null, toStatus: opts.status, actor: opts.actor, reason: opts.reason, at: opts.now } });
  return { kid, from: null, to: opts.status, reason: opts.reason };
}

/** Moves one key from `from` to `to` if (and only if) it is still in `from`. */
export async function move(tx: Tx, kid: string, from: KeyStatus, to: KeyStatus, actor: string, reason: string, now: Date): Promise<Step | undefined> {
  const data: Prisma.SigningKeyUpdateManyMutationInput = { status: to };
  if (to === 'active') data.activatedAt = now;
  if (to === 'retired') data.retiredAt = now;
  if (to === 'removed') {
    data.removedAt = now;
    data.privateKeyEncrypted = null;
  }
  const { count } = await tx.signingKey.updateMany({ where: { kid, status: from }, data });
  if (count === 0) return undefined;
  await tx.signingKeyEvent.create({ data: { kid, fromStatus: from, toStatus: to, actor, reason, at: now } });
  return { kid, from, to, reason };
}

/** Makes `kid` the signing key; whatever signed before is retired (published until its tokens expire). */
export async function promote(tx: Tx, kid: string, actor: string, reason: string, now: Date): Promise<Step[]> {
  const steps: Step[] = [];
  const current = await tx.signingKey.findMany({ where: { status: 'active', kid: { not: kid } } });
  for (const old of current) {
    const s = await move(tx, old.kid, 'active', 'retired', actor, `replaced by ${kid}`, now);
    if (s) steps.push(s);
  }
  const s = await move(tx, kid, 'pending', 'active', actor, reason, now);
  if (s) steps.push(s);
  return steps;
}

export async function announce(tx: Tx): Promise<void> {
  await tx.$executeRaw`SELECT pg_notify(${KEYS_CHANNEL}, '')`;
}

/**
 * Runs the schedule once, as of `now`. Returns the steps taken; an empty list
 * when there was nothing to do or another replica holds the lock right now.
 */
export async function runSchedule(db: Db, kek: Buffer, timing: Timing, alg: SigningAlg, now = new Date()): Promise<Step[]> {
  return db.$transaction(async (tx) => {
    const [lock] = await tx.$queryRaw<{ locked: boolean }[]>`SELECT pg_try_advisory_xact_lock(${KEY_LOCK}) AS locked`;
    if (!lock?.locked) return [];
    const steps: Step[] = [];
    const keys = await tx.signingKey.findMany({ where: { status: { not: 'removed' } }, orderBy: { createdAt: 'asc' } });

    // 1. A pending key whose publish lead has passed starts signing.
    const due = keys.filter((k) => k.status === 'pending' && k.activateAfter && k.activateAfter <= now);
    const next = due.at(-1);
    if (next) steps.push(...(await promote(tx, next.kid, 'scheduler', 'publish lead passed', now)));

    // 2. An active key older than the rotation interval gets a successor, published first.
    const active = next ? undefined : keys.find((k) => k.status === 'active');
    const pending = keys.some((k) => k.status === 'pending');
    if (active && !pending && active.activatedAt && active.activatedAt.getTime() + timing.rotationInterval * 1000 <= now.getTime()) {
      steps.push(
        await createKey(tx, kek, {
          alg,
          status: 'pending',
          actor: 'scheduler',
          reason: 'rotation interval reached',
          now,
          activateAfter: new Date(now.getTime() + timing.publishLead * 1000),
        }),
      );
    }

    // 3. A retired key is unpublished once every token it signed has expired.
    for (const k of keys) {
      if (k.status === 'retired' && k.retiredAt && k.retiredAt.getTime() + timing.retiredRetention * 1000 <= now.getTime()) {
        const s = await move(tx, k.kid, 'retired', 'removed', 'scheduler', 'retention passed', now);
        if (s) steps.push(s);
      }
    }
    if (steps.length) await announce(tx);
    return steps;
  }, KEY_TX_OPTIONS);
}

/**
 * At start: an empty database gets its first key, active at once (nothing
 * was published before, so there is nothing to wait for). If SIGNING_ALG
 * changed, a key of the new algorithm is published and signs after the lead.
 */
export async function ensureSigningKey(db: Db, kek: Buffer, alg: SigningAlg, timing: Timing, now = new Date()): Promise<Step[]> {
  return db.$transaction(async (tx) => {
    await tx.$executeRaw`SELECT pg_advisory_xact_lock(${KEY_LOCK})`;
    const keys = await tx.signingKey.findMany({ where: { status: { in: ['pending', 'active'] } } });
    const active = keys.find((k) => k.status === 'active');
    if (!active) {
      const pending = keys.find((k) => k.status === 'pending');
      const steps = pending
        ? await promote(tx, pending.kid, 'startup', 'no key was active', now)
        : [await createKey(tx, kek, { alg, status: 'active', actor: 'startup', reason: 'first key', now })];
      await announce(tx);
      return steps;
    }
    if (active.alg !== alg && !keys.some((k) => k.status === 'pending' && k.alg === alg)) {
      const step = await createKey(tx, kek, {
        alg,
        status: 'pending',
        actor: 'startup',
        reason: `SIGNING_ALG changed from ${active.alg} to ${alg}`,
        now,
        activateAfter: new Date(now.getTime() + timing.publishLead * 1000),
      });
      await announce(tx);
      return [step];
    }
    return [];
  }, KEY_TX_OPTIONS);
}
