// Reading the audit trail: `audit list` shows one page, newest first;
// `audit export` walks every matching row, oldest first, a page at a time.
// Both take the same filter, so a list that shows the right rows is the
// export's dry run. (Rows are written by audit.ts and the token stores, and
// deleted after AUDIT_RETENTION by src/retention/.)
import { AUDIT_EVENTS } from './trail.js';
import { InputError } from '../claims/text.js';
import { parseDuration } from '../config.js';
import { poolOf, type Db } from '../store/prisma.js';

/**
 * Every refusal event is named `<what>.refused` (request_token.refused,
 * id_token.refused, token.refused, revocation.refused); every other event
 * records something that happened (request_token.issued, id_token.issued,
 * request_token.revoked), or may have (id_token.commit_unknown,
 * request_token.commit_unknown: not a refusal). `--outcome` is defined by that suffix alone, so an
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
  /** Only mints from an address their controller had never minted from before. */
  newSources?: boolean;
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

/**
 * The filter as SQL conditions, their values appended to `values` ($1, $2...
 * in order). The columns compared are the indexed ones where an index exists:
 * `at` (audit_events_at_idx) and `client_name` with `at`
 * (audit_events_client_name_at_idx); the others filter the rows those walk.
 */
function whereOf(filter: AuditFilter, values: unknown[]): string[] {
  const and: string[] = [];
  const param = (value: unknown, cast = '') => `$${values.push(value)}${cast}`;
  if (filter.client) and.push(`client_name = ${param(filter.client)}`);
  if (filter.job) and.push(`job = ${param(filter.job)}`);
  if (filter.kid) and.push(`kid = ${param(filter.kid)}`);
  if (filter.events?.length) and.push(`event = ANY(${param(filter.events, '::text[]')})`);
  if (filter.outcome === 'refused') and.push(`event LIKE ${param(`%${REFUSED_SUFFIX}`)}`);
  if (filter.outcome === 'ok') and.push(`event NOT LIKE ${param(`%${REFUSED_SUFFIX}`)}`);
  if (filter.since) and.push(`at >= ${param(filter.since)}`);
  if (filter.until) and.push(`at < ${param(filter.until)}`);
  if (filter.newSources) and.push(`event = ${param(AUDIT_EVENTS.requestTokenIssued)}`, `detail ? 'new_source'`);
  return and;
}

const COLUMNS = 'id, at, event, client_name, job, build_number, audience, jti, kid, request_token_id, remote_addr, detail';

/** A row as pg returns it: bigint as text, timestamptz as Date, uuid as text, jsonb parsed. */
interface Row {
  id: string;
  at: Date;
  event: string;
  client_name: string | null;
  job: string | null;
  build_number: number | null;
  audience: string | null;
  jti: string | null;
  kid: string | null;
  request_token_id: string | null;
  remote_addr: string | null;
  detail: unknown;
}

function viewOf(r: Row): AuditView {
  return {
    id: r.id,
    at: r.at.toISOString(),
    event: r.event,
    client: r.client_name,
    job: r.job,
    buildNumber: r.build_number,
    audience: r.audience,
    jti: r.jti,
    kid: r.kid,
    requestTokenId: r.request_token_id,
    remoteAddr: r.remote_addr,
    detail: r.detail,
  };
}

/**
 * Reading goes through pg itself, beside Prisma: a day's export is tens of
 * thousands of rows, and Prisma's per-row work (and its query engine's start
 * in a CLI process) cost more than PostgreSQL's (measured on 37,505 rows: 700
 * to 1,250 ms through Prisma, 310 to 410 ms through pg). A process that only
 * reads the trail never starts Prisma's engine: close it with closePrisma.
 */
async function select(db: Db, text: string, values: unknown[]): Promise<Row[]> {
  return (await poolOf(db).query<Row>(text, values)).rows;
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

/**
 * What `audit list` shows beside a row: a refusal's reason, or what an
 * auditor should look at twice: a mint from an address its controller never
 * used before, a controller still using its previous secret.
 */
export function rowNote(detail: unknown): string | null {
  const reason = refusalReason(detail);
  if (reason) return reason;
  const d = (detail ?? {}) as { new_source?: unknown; client_secret?: unknown };
  const notes = [d.new_source === true ? 'new source' : null, d.client_secret === 'previous' ? 'previous secret' : null].filter(Boolean);
  return notes.length ? notes.join(', ') : null;
}

/**
 * One page of the trail, newest first: by time, as `audit export` orders it
 * oldest first, so the list is the export's last rows in reverse. Ordering by
 * time rather than by id lets PostgreSQL walk the `at` index back from
 * `--until` (or the client's part of the client index). Ordered by id, a
 * window in the past made it walk the primary key back from the newest row
 * through every row after the window: measured on 10 million rows over 400
 * days, `--until 30d` took 1.2 s and `--until 200d` 3.2 s, against under 1 ms
 * by time.
 */
export async function listAudit(db: Db, filter: AuditFilter & { limit?: number } = {}): Promise<AuditView[]> {
  const values: unknown[] = [];
  const where = whereOf(filter, values);
  const rows = await select(
    db,
    `SELECT ${COLUMNS} FROM audit_events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY at DESC, id DESC LIMIT $${values.push(filter.limit ?? 100)}`,
    values,
  );
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
  const window = { ...filter, until: filter.until ?? new Date() };
  const fetchPage = (after?: { at: Date; id: string }) => {
    const values: unknown[] = [];
    const where = whereOf(window, values);
    if (after) {
      // `at >= cursor` on its own lets the index scan start at the cursor;
      // the OR then skips the rows of the cursor's own millisecond already sent.
      const at = `$${values.push(after.at)}`;
      where.push(`at >= ${at}`, `(at > ${at} OR id > $${values.push(after.id)}::bigint)`);
    }
    return select(db, `SELECT ${COLUMNS} FROM audit_events WHERE ${where.join(' AND ')} ORDER BY at, id LIMIT $${values.push(pageSize)}`, values);
  };
  let page = await fetchPage();
  for (;;) {
    const last = page.at(-1);
    // The next page is asked for before this one is handed out: PostgreSQL
    // reads it while the caller formats and writes this one. Two pages at most
    // are in memory.
    const next = last && page.length === pageSize ? fetchPage({ at: last.at, id: last.id }) : undefined;
    // A caller that stops early (a reader gone) leaves `next` to settle unheard.
    next?.catch(() => undefined);
    for (const r of page) yield viewOf(r);
    if (!next) return;
    page = await next;
  }
}
