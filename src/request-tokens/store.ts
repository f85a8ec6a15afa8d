// Build request tokens in the database. The token itself is never stored:
// rows are keyed by its SHA-256. The claims snapshot is written once, at mint,
// and read back verbatim by the exchange (redeem.ts).
import { randomUUID } from 'node:crypto';
import { AUDIT_EVENTS } from '../audit/trail.js';
import type { BuildClaims } from '../claims/build-claims.js';
import { REQUEST_TOKEN_PREFIX, generateSecret, hashSecret } from '../secrets/bearer-secrets.js';
import type { Db } from '../store/prisma.js';

export interface MintRecord {
  clientName: string;
  claims: BuildClaims;
  audiences: string[];
  ttl: number;
  remoteAddr: string | undefined;
}

export async function createRequestToken(db: Db, record: MintRecord): Promise<{ token: string; id: string; expiresAt: Date }> {
  const token = generateSecret(REQUEST_TOKEN_PREFIX);
  const id = randomUUID();
  const expiresAt = new Date(Date.now() + record.ttl * 1000);
  const { claims } = record;
  await db.$transaction([
    db.requestToken.create({
      data: {
        id,
        tokenHash: hashSecret(token),
        clientName: record.clientName,
        job: claims.job,
        buildNumber: claims.build_number,
        claims: claims as object,
        audiences: record.audiences,
        expiresAt,
      },
    }),
    db.auditEvent.create({
      data: {
        event: AUDIT_EVENTS.requestTokenIssued,
        clientName: record.clientName,
        job: claims.job,
        buildNumber: claims.build_number,
        audience: record.audiences.join(' '),
        requestTokenId: id,
        remoteAddr: record.remoteAddr,
        detail: { claims: claims as object, expires_at: expiresAt.toISOString() },
      },
    }),
  ]);
  return { token, id, expiresAt };
}

export async function findRequestToken(db: Db, token: string) {
  return db.requestToken.findUnique({ where: { tokenHash: hashSecret(token) } });
}

/** Idempotent: revoking twice keeps the first time and actor. */
export async function revokeRequestToken(db: Db, token: string, revokedBy: string, remoteAddr: string | undefined): Promise<boolean> {
  const hash = hashSecret(token);
  const row = await db.requestToken.findUnique({ where: { tokenHash: hash } });
  if (!row || row.revokedAt) return false;
  await db.$transaction([
    db.requestToken.updateMany({ where: { tokenHash: hash, revokedAt: null }, data: { revokedAt: new Date(), revokedBy } }),
    db.auditEvent.create({
      data: {
        event: AUDIT_EVENTS.requestTokenRevoked,
        clientName: row.clientName,
        job: row.job,
        buildNumber: row.buildNumber,
        requestTokenId: row.id,
        remoteAddr,
        detail: { revoked_by: revokedBy },
      },
    }),
  ]);
  return true;
}
