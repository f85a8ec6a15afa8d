// The audit trail: one row per token issued, per revocation and per refusal.
// Rows are never updated; query.ts reads them, and src/retention/ deletes
// them once they are older than AUDIT_RETENTION.
import type { Db } from '../store/prisma.js';

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
