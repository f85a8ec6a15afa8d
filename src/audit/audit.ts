// The audit trail: one row per token issued, per revocation and per refusal.
// Rows are never updated; `jenkins-oidc audit list` reads them, and
// src/retention/ deletes them once they are older than AUDIT_RETENTION.
import type { Db } from '../store/prisma.js';
import { InputError } from '../claims/text.js';

export interface RefusalInput {
  event: string;
  error: string;
  description: string;
  clientName?: string;
  job?: string;
  buildNumber?: number;
  audience?: string;
  requestTokenId?: string;
  remoteAddr?: string;
}

export async function recordRefusal(db: Db, r: RefusalInput): Promise<void> {
  await db.auditEvent.create({
    data: {
      event: r.event,
      clientName: r.clientName,
      job: r.job,
      buildNumber: r.buildNumber,
      audience: r.audience,
      requestTokenId: r.requestTokenId,
      remoteAddr: r.remoteAddr,
      detail: { error: r.error, error_description: r.description },
    },
  });
}

export interface AuditFilter {
  client?: string;
  job?: string;
  since?: string;
  limit?: number;
}

export interface AuditView {
  id: string;
  at: string;
  event: string;
  client: string | null;
  job: string | null;
  buildNumber: number | null;
  audience: string | null;
  jti: string | null;
  kid: string | null;
  requestTokenId: string | null;
  remoteAddr: string | null;
  detail: unknown;
}

/** `since` is an ISO time or a duration back from now: 30m, 12h, 7d. */
export function parseSince(value: string, now = Date.now()): Date {
  const rel = /^(\d+)([smhd])$/.exec(value);
  if (rel) {
    const unit = { s: 1, m: 60, h: 3600, d: 86400 }[rel[2] as 's' | 'm' | 'h' | 'd'];
    return new Date(now - Number(rel[1]) * unit * 1000);
  }
  const at = new Date(value);
  if (Number.isNaN(at.getTime())) throw new InputError('since', `must be an ISO time (2026-11-25T10:00:00Z) or a duration such as 30m, 12h, 7d; got "${value}"`);
  return at;
}

export async function listAudit(db: Db, filter: AuditFilter = {}): Promise<AuditView[]> {
  const rows = await db.auditEvent.findMany({
    where: {
      ...(filter.client && { clientName: filter.client }),
      ...(filter.job && { job: filter.job }),
      ...(filter.since && { at: { gte: parseSince(filter.since) } }),
    },
    orderBy: { id: 'desc' },
    take: filter.limit ?? 100,
  });
  return rows.map((r) => ({
    id: r.id.toString(),
    at: r.at.toISOString(),
    event: r.event,
    client: r.clientName,
    job: r.job,
    buildNumber: r.buildNumber,
    audience: r.audience,
    jti: r.jti,
    kid: r.kid,
    requestTokenId: r.requestTokenId,
    remoteAddr: r.remoteAddr,
    detail: r.detail,
  }));
}
