// Reading the audit trail: `audit list` shows one page, newest first;
// `audit export` walks every matching row, oldest first, a page at a time.
// Both take the same filter, so a list that shows the right rows is the
// export's dry run. (Rows are written by audit.ts and the token stores, and
// deleted after AUDIT_RETENTION by src/retention/.)
import { AUDIT_EVENTS } from './trail.js';
import type { Prisma } from '../generated/prisma/client.js';
import { InputError } from '../claims/text.js';
import { parseDuration } from '../config.js';
import type { Db } from '../store/prisma.js';

/**
 * Every refusal event is named `<what>.refused` (request_token.refused,
 * id_token.refused, token.refused, revocation.refused); every other event
 * records something that happened (request_token.issued, id_token.issued,
 * request_token.revoked). `--outcome` is defined by that suffix alone, so an
 * event added later with the same naming lands on the right side.
 */
export const OUTCOMES = ['ok', 'refused'] as const;
/** The events written today (audit/trail.ts), for help texts (filters accept any name). */
export const AUDIT_EVENT_NAMES = Object.values(AUDIT_EVENTS);
export type Outcome = (typeof OUTCOMES)[number];
const REFUSED_SUFFIX = '.refused';

export function outcomeOf(event: string): Outcome {
  return event.endsWith(REFUSED_SUFFIX) ? 'refused' : 'ok';
}

export interface AuditFilter {
  client?: string;
  job?: string;
  kid?: string;
  /** Any of these event names. */
  events?: string[];
  outcome?: Outcome;
  /** Rows at or after this time. */
  since?: Date;
  /** Rows before this time (the window is half-open, so consecutive exports never share a row). */
  until?: Date;
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

/** The fields of a row, in the order `audit export` writes them (and the CSV header). */
export const AUDIT_FIELDS = ['id', 'at', 'event', 'client', 'job', 'buildNumber', 'audience', 'jti', 'kid', 'requestTokenId', 'remoteAddr', 'detail'] as const satisfies readonly (keyof AuditView)[];

const WHEN_HELP = 'must be an ISO time (2026-11-25T10:00:00Z) or a duration such as 30m, 12h, 7d';

/**
 * `--since`/`--until`: an ISO time, or a duration back from now in the
 * configuration's grammar (30m, 12h, 7d). A bare number is refused rather
 * than read as seconds or, by Date, as a year.
 */
export function parseWhen(field: string, value: string, now = Date.now()): Date {
  const v = value.trim();
  if (/^\d+\s*[smhd]$/.test(v)) return new Date(now - parseDuration(v)! * 1000);
  const at = /^\d{4}-\d{2}-\d{2}/.test(v) ? new Date(v) : new Date(NaN);
  if (Number.isNaN(at.getTime())) throw new InputError(field, `${WHEN_HELP}; got "${value}"`);
  return at;
}

function whereOf(filter: AuditFilter): Prisma.AuditEventWhereInput[] {
  const and: Prisma.AuditEventWhereInput[] = [];
  if (filter.client) and.push({ clientName: filter.client });
  if (filter.job) and.push({ job: filter.job });
  if (filter.kid) and.push({ kid: filter.kid });
  if (filter.events?.length) and.push({ event: { in: filter.events } });
  if (filter.outcome === 'refused') and.push({ event: { endsWith: REFUSED_SUFFIX } });
  if (filter.outcome === 'ok') and.push({ NOT: { event: { endsWith: REFUSED_SUFFIX } } });
  if (filter.since) and.push({ at: { gte: filter.since } });
  if (filter.until) and.push({ at: { lt: filter.until } });
  return and;
}

type Row = Awaited<ReturnType<Db['auditEvent']['findMany']>>[number];

function viewOf(r: Row): AuditView {
  return {
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
  };
}

/** `audit list --limit`: 1 to 10000 rows. */
export function checkLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > 10000) throw new InputError('--limit', 'must be between 1 and 10000');
  return limit;
}

/** A refusal's reason (its OAuth error) and, for a window of unauthenticated refusals, how many; null for other rows. */
export function refusalReason(detail: unknown): string | null {
  const d = (detail ?? {}) as { error?: unknown; count?: unknown };
  return typeof d.error === 'string' ? `${d.error}${typeof d.count === 'number' ? ` x${d.count}` : ''}` : null;
}

/** One page of the trail, newest first. */
export async function listAudit(db: Db, filter: AuditFilter & { limit?: number } = {}): Promise<AuditView[]> {
  const rows = await db.auditEvent.findMany({
    where: { AND: whereOf(filter) },
    orderBy: { id: 'desc' },
    take: filter.limit ?? 100,
  });
  return rows.map(viewOf);
}

export const EXPORT_PAGE_SIZE = 1000;

/**
 * Every matching row, oldest first, fetched a page at a time with a keyset
 * cursor on (at, id): memory stays flat however many rows match, and each page
 * starts where the last one ended instead of counting past it (OFFSET).
 * The cursor is (at, id) rather than id alone so that PostgreSQL walks the `at`
 * index from the cursor on: ordering by id under a time window leaves it the
 * choice between reading the primary key from the table's first row and
 * sorting the whole window again for every page.
 *
 * Without `until` the window ends when the export starts, so an export
 * finishes even while tokens keep being issued.
 */
export async function* auditRows(db: Db, filter: AuditFilter = {}, pageSize = EXPORT_PAGE_SIZE): AsyncGenerator<AuditView> {
  const where = whereOf({ ...filter, until: filter.until ?? new Date() });
  let after: { at: Date; id: bigint } | undefined;
  for (;;) {
    const page = await db.auditEvent.findMany({
      where: {
        AND: [
          ...where,
          // `at >= cursor` on its own lets the index scan start at the cursor;
          // the OR then skips the rows of the cursor's own millisecond already sent.
          ...(after ? [{ at: { gte: after.at } }, { OR: [{ at: { gt: after.at } }, { id: { gt: after.id } }] }] : []),
        ],
      },
      orderBy: [{ at: 'asc' }, { id: 'asc' }],
      take: pageSize,
    });
    for (const r of page) yield viewOf(r);
    const last = page.at(-1);
    if (!last || page.length < pageSize) return;
    after = { at: last.at, id: last.id };
  }
}
