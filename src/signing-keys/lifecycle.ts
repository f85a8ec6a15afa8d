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
import type { Db } from '../store/prisma.js';
import { inTransaction, type Sql } from '../store/sql.js';
import { encryptPrivateKey } from './encryption.js';
import { generateKeyPair, newKid, publicJwkOf, type KeyStatus, type SigningAlg } from './keys.js';
import { keysIn } from './rows.js';

/**
 * A key transaction: one connection inside BEGIN ... COMMIT, in SQL rather
 * than Prisma so that `serve`, which runs the schedule, never loads Prisma's
 * query compiler (store/sql.ts).
 */
export type Tx = Sql;

/** Arbitrary constant shared by every replica: "jenkins-oidc signing keys". */
export const KEY_LOCK = 727_001_002;
/**
 * How long a key transaction waits for the key lock before it fails (55P03):
 * another replica or an admin's command holds it for milliseconds, so a wait
 * this long means something is stuck, and a command must not hang on it.
 */
export const KEY_LOCK_WAIT = '60s';

/** Channel on which key changes are announced to every replica. */
export const KEYS_CHANNEL = 'jenkins_oidc_keys';

/** Runs `fn` in a key transaction that holds the key lock (waiting for it up to KEY_LOCK_WAIT). */
export async function withKeyLock<T>(db: Db, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return inTransaction(db, async (tx) => {
    await tx.query(`SET LOCAL lock_timeout = '${KEY_LOCK_WAIT}'`);
    await tx.query('SELECT pg_advisory_xact_lock($1)', [KEY_LOCK]);
    return fn(tx);
  });
}

/** The row of signing_key_events that goes with every change of a key. */
export async function recordStep(tx: Tx, kid: string, from: KeyStatus | null, to: KeyStatus, actor: string, reason: string | null, at: Date): Promise<void> {
  await tx.query('INSERT INTO signing_key_events (kid, from_status, to_status, actor, reason, at) VALUES ($1, $2, $3, $4, $5, $6)', [kid, from, to, actor, reason, at]);
}

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
  await tx.query(
    `INSERT INTO signing_keys (kid, alg, status, created_at, activate_after, activated_at, public_jwk, private_key_encrypted)
     VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8)`,
    [
      kid,
      opts.alg,
      opts.status,
      opts.now,
      opts.activateAfter ?? null,
      opts.status === 'active' ? opts.now : null,
      JSON.stringify(publicJwkOf(kid, opts.alg, privateKey)),
      encryptPrivateKey(kek, kid, privateKey.export({ format: 'der', type: 'pkcs8' })),
    ],
  );
  await recordStep(tx, kid, null, opts.status, opts.actor, opts.reason, opts.now);
  return { kid, from: null, to: opts.status, reason: opts.reason };
}

/** Moves one key from `from` to `to` if (and only if) it is still in `from`. */
export async function move(tx: Tx, kid: string, from: KeyStatus, to: KeyStatus, actor: string, reason: string, now: Date): Promise<Step | undefined> {
  // The timestamp column of the state entered; a removed key loses its private part.
  const stamp = { pending: undefined, active: 'activated_at', retired: 'retired_at', removed: 'removed_at' }[to];
  const { rowCount } = await tx.query(
    `UPDATE signing_keys SET status = $3${stamp ? `, ${stamp} = $4` : ''}${to === 'removed' ? ', private_key_encrypted = NULL' : ''}
     WHERE kid = $1 AND status = $2`,
    stamp ? [kid, from, to, now] : [kid, from, to],
  );
  if (rowCount === 0) return undefined;
  await recordStep(tx, kid, from, to, actor, reason, now);
  return { kid, from, to, reason };
}

/** Makes `kid` the signing key; whatever signed before is retired (published until its tokens expire). */
export async function promote(tx: Tx, kid: string, actor: string, reason: string, now: Date): Promise<Step[]> {
  const steps: Step[] = [];
  const current = (await keysIn(tx, ['active'])).filter((k) => k.kid !== kid);
  for (const old of current) {
    const s = await move(tx, old.kid, 'active', 'retired', actor, `replaced by ${kid}`, now);
    if (s) steps.push(s);
  }
  const s = await move(tx, kid, 'pending', 'active', actor, reason, now);
  if (s) steps.push(s);
  return steps;
}

export async function announce(tx: Tx): Promise<void> {
  await tx.query('SELECT pg_notify($1, $2)', [KEYS_CHANNEL, '']);
}

/**
 * Runs the schedule once, as of `now`. Returns the steps taken; an empty list
 * when there was nothing to do or another replica holds the lock right now.
 */
export async function runSchedule(db: Db, kek: Buffer, timing: Timing, alg: SigningAlg, now = new Date()): Promise<Step[]> {
  return inTransaction(db, async (tx) => {
    const { rows: [lock] } = await tx.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS locked', [KEY_LOCK]);
    if (!lock?.locked) return [];
    const steps: Step[] = [];
    const keys = await keysIn(tx, ['pending', 'active', 'retired']);

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
  });
}

/**
 * At start: an empty database gets its first key, active at once (nothing
 * was published before, so there is nothing to wait for). If SIGNING_ALG
 * changed, a key of the new algorithm is published and signs after the lead.
 */
export async function ensureSigningKey(db: Db, kek: Buffer, alg: SigningAlg, timing: Timing, now = new Date()): Promise<Step[]> {
  return withKeyLock(db, async (tx) => {
    const keys = await keysIn(tx, ['pending', 'active']);
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
  });
}
