// What an admin does with signing keys (`jenkins-oidc keys ...`). Each verb
// runs in one transaction under the same advisory lock as the scheduler and
// announces the change, so every replica swaps its key set within seconds.
import { DomainError, NotFoundError } from '../errors.js';
import type { Db } from '../store/prisma.js';
import { decryptPrivateKey, encryptPrivateKey, KeyDecryptionError } from './encryption.js';
import type { KeyStatus, SigningAlg } from './keys.js';
import { announce, createKey, move, promote, recordStep, withKeyLock, type Step, type Tx } from './lifecycle.js';
import { keyByKid, keysIn } from './rows.js';

export interface KeyEventView {
  at: string;
  from: string | null;
  to: string;
  actor: string;
  reason: string | null;
}

export interface KeyView {
  kid: string;
  alg: string;
  status: KeyStatus;
  createdAt: string;
  activateAfter: string | null;
  activatedAt: string | null;
  retiredAt: string | null;
  removedAt: string | null;
  history: KeyEventView[];
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export async function listKeys(db: Db): Promise<KeyView[]> {
  const rows = await db.signingKey.findMany({ orderBy: { createdAt: 'asc' }, include: { events: { orderBy: { id: 'asc' } } } });
  return rows.map((k) => ({
    kid: k.kid,
    alg: k.alg,
    status: k.status as KeyStatus,
    createdAt: k.createdAt.toISOString(),
    activateAfter: iso(k.activateAfter),
    activatedAt: iso(k.activatedAt),
    retiredAt: iso(k.retiredAt),
    removedAt: iso(k.removedAt),
    history: k.events.map((e) => ({ at: e.at.toISOString(), from: e.fromStatus, to: e.toStatus, actor: e.actor, reason: e.reason })),
  }));
}

/** The emergency path: a key signs now (the pending one if any, it is already published). */
async function rotateNowIn(tx: Tx, kek: Buffer, alg: SigningAlg, actor: string, reason: string, now: Date): Promise<Step[]> {
  const pending = (await keysIn(tx, ['pending'])).filter((k) => k.alg === alg).at(-1);
  const steps: Step[] = [];
  let kid = pending?.kid;
  if (!kid) {
    const created = await createKey(tx, kek, { alg, status: 'pending', actor, reason, now, activateAfter: now });
    steps.push(created);
    kid = created.kid;
  }
  steps.push(...(await promote(tx, kid, actor, reason, now)));
  return steps;
}

export interface RotateOptions {
  alg: SigningAlg;
  now?: boolean;
  actor: string;
  publishLead: number;
  clock?: Date;
}

/** Planned: publish a new key now, it signs after the lead. With `now`: it signs at once. */
export async function rotateKeys(db: Db, kek: Buffer, opts: RotateOptions): Promise<Step[]> {
  const now = opts.clock ?? new Date();
  return withKeyLock(db, async (tx) => {
    let steps: Step[];
    if (opts.now) {
      steps = await rotateNowIn(tx, kek, opts.alg, opts.actor, 'emergency rotation', now);
    } else {
      const [pending] = await keysIn(tx, ['pending']);
      if (pending) {
        throw new DomainError(
          `a rotation is already under way: ${pending.kid} is published and starts signing at ${pending.activateAfter?.toISOString()}`,
          'to make it sign at once: jenkins-oidc keys rotate --now',
        );
      }
      const activateAfter = new Date(now.getTime() + opts.publishLead * 1000);
      steps = [await createKey(tx, kek, { alg: opts.alg, status: 'pending', actor: opts.actor, reason: 'planned rotation', now, activateAfter })];
    }
    await announce(tx);
    return steps;
  });
}

/**
 * A compromised key leaves JWKS at once on every replica, so tokens it signed
 * stop verifying. The signing key can only go together with its replacement.
 */
export async function revokeKey(db: Db, kek: Buffer, kid: string, opts: { actor: string; rotate?: boolean; alg: SigningAlg; clock?: Date }): Promise<Step[]> {
  const now = opts.clock ?? new Date();
  return withKeyLock(db, async (tx) => {
    const key = await keyByKid(tx, kid);
    if (!key) throw new NotFoundError(`signing key ${kid}`, 'list keys with: jenkins-oidc keys list');
    if (key.status === 'removed') throw new DomainError(`signing key ${kid} is already removed`);
    const steps: Step[] = [];
    if (key.status === 'active') {
      if (!opts.rotate) {
        throw new DomainError(
          `${kid} is the key that signs right now; revoking it alone would leave nothing to sign`,
          `revoke it together with an emergency rotation: jenkins-oidc keys revoke ${kid} --rotate`,
        );
      }
      steps.push(...(await rotateNowIn(tx, kek, opts.alg, opts.actor, `emergency rotation: ${kid} revoked`, now)));
    }
    const status = (await keyByKid(tx, kid))!.status as KeyStatus;
    const removed = await move(tx, kid, status, 'removed', opts.actor, 'revoked (compromised)', now);
    if (removed) steps.push(removed);
    await announce(tx);
    return steps;
  });
}

/**
 * Re-encrypts every private key under a new key-encryption key. All or
 * nothing: a key that decrypts under neither key stops it with nothing written.
 */
export async function rewrapKeys(db: Db, previous: Buffer, next: Buffer, actor: string): Promise<{ rewrapped: string[]; alreadyCurrent: string[] }> {
  return withKeyLock(db, async (tx) => {
    const rows = (await keysIn(tx, ['pending', 'active', 'retired', 'removed'])).filter((k) => k.privateKeyEncrypted !== null);
    const result = { rewrapped: [] as string[], alreadyCurrent: [] as string[] };
    const now = new Date();
    for (const row of rows) {
      try {
        decryptPrivateKey(next, row.kid, row.privateKeyEncrypted!);
        result.alreadyCurrent.push(row.kid);
        continue;
      } catch (err) {
        if (!(err instanceof KeyDecryptionError)) throw err;
      }
      let der: Buffer;
      try {
        der = decryptPrivateKey(previous, row.kid, row.privateKeyEncrypted!);
      } catch {
        throw new DomainError(
          `signing key ${row.kid} decrypts with neither KEY_ENCRYPTION_KEY_PREVIOUS nor KEY_ENCRYPTION_KEY; nothing was rewritten`,
          'check that KEY_ENCRYPTION_KEY_PREVIOUS is the key the service runs with today',
        );
      }
      await tx.query('UPDATE signing_keys SET private_key_encrypted = $2 WHERE kid = $1', [row.kid, encryptPrivateKey(next, row.kid, der)]);
      await recordStep(tx, row.kid, row.status as KeyStatus, row.status as KeyStatus, actor, 'rewrapped under a new key-encryption key', now);
      result.rewrapped.push(row.kid);
    }
    return result;
  });
}
