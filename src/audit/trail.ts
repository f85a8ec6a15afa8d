// The audit trail's write side. Every row is one of the events below. The rows
// of tokens issued and revoked are written by the same statement or
// transaction as the token itself (request-tokens/store.ts; an ID token's by
// the redeem statement, request-tokens/redeem.ts), so a token never exists
// without its row; every refusal goes through AuditTrail.refuse().
//
// Every refusal is counted in memory per (client, request token, address,
// event, error, minute) and written as one row per window with its count and
// the window's bounds: a flood writes a bounded number of rows (at most
// maxWindows a minute) instead of one per request, whoever sends it, a build
// with a valid token asking for a thousand audiences included. A refusal of a
// caller who proved who it is (a controller's client secret, a request token
// this service knows) keeps who it was: client, job, build, request token, and
// the first refused audience and description of the window; one who proved
// nothing keeps only its address and the reason (none of what it sent). Caller
// text in a row is bounded: an audience at most 255 characters, a job 512, a
// description a few hundred (values in it are cut at 40).
import { poolOf, type Db } from '../store/prisma.js';

export const AUDIT_EVENTS = {
  requestTokenIssued: 'request_token.issued',
  requestTokenRevoked: 'request_token.revoked',
  idTokenIssued: 'id_token.issued',
  requestTokenRefused: 'request_token.refused',
  idTokenRefused: 'id_token.refused',
  tokenRefused: 'token.refused',
  revocationRefused: 'revocation.refused',
  clientSecretRotated: 'client.secret_rotated',
  /**
   * A token statement failed after it may have committed (a connection lost
   * mid-statement): its tokens' issued rows may exist, but no caller was
   * given those tokens (it was answered 503, and an ID token is signed only
   * after its statement answered). detail: { ids, cause, at }.
   */
  idTokenCommitUnknown: 'id_token.commit_unknown',
  requestTokenCommitUnknown: 'request_token.commit_unknown',
} as const;

/** Ids of tokens of statements whose commit is unknown, kept until written; past it they are only counted. */
const MAX_UNKNOWN_IDS = 10_000;

export type RefusalEvent =
  | typeof AUDIT_EVENTS.requestTokenRefused
  | typeof AUDIT_EVENTS.idTokenRefused
  | typeof AUDIT_EVENTS.tokenRefused
  | typeof AUDIT_EVENTS.revocationRefused;

export interface Refusal {
  event: RefusalEvent;
  /** The OAuth error code and the description the caller was given. */
  error: string;
  description: string;
  /** Whether the caller proved who it is; only then are its own values stored. */
  authenticated: boolean;
  clientName?: string;
  job?: string;
  buildNumber?: number;
  audience?: string;
  requestTokenId?: string;
  remoteAddr?: string;
}

interface Window {
  clientName: string | undefined;
  job: string | undefined;
  buildNumber: number | undefined;
  audience: string | undefined;
  requestTokenId: string | undefined;
  remoteAddr: string | undefined;
  event: RefusalEvent;
  error: string;
  description: string;
  start: number;
  count: number;
}

export interface AuditTrailOptions {
  /** Length of an aggregation window (default one minute). */
  windowMs?: number;
  /** Distinct (caller, reason) pairs kept per window; beyond it they share one row per reason. */
  maxWindows?: number;
  /** A failed background write (the caller's answer has long gone out). */
  onError?: (err: unknown) => void;
  /** Every refusal as it happens (metrics). */
  onRefusal?: (event: RefusalEvent, error: string) => void;
  now?: () => number;
}

/** One audit row as the trail writes it (the columns it may leave empty are optional). */
interface AuditRow {
  event: string;
  clientName?: string | null;
  job?: string | null;
  buildNumber?: number | null;
  audience?: string | null;
  requestTokenId?: string | null;
  remoteAddr?: string | null;
  detail: object;
}

/** Many rows in one statement (one parameter, however many rows), in SQL: `serve` sends no Prisma query (store/sql.ts). */
async function insertAuditRows(db: Db, rows: AuditRow[]): Promise<void> {
  const records = rows.map((r) => ({
    event: r.event,
    client_name: r.clientName ?? null,
    job: r.job ?? null,
    build_number: r.buildNumber ?? null,
    audience: r.audience ?? null,
    request_token_id: r.requestTokenId ?? null,
    remote_addr: r.remoteAddr ?? null,
    detail: r.detail,
  }));
  await poolOf(db).query(
    `INSERT INTO audit_events (event, client_name, job, build_number, audience, request_token_id, remote_addr, detail)
     SELECT event, client_name, job, build_number, audience, request_token_id, remote_addr, detail
     FROM jsonb_to_recordset($1::jsonb) AS r(event text, client_name text, job text, build_number int, audience text,
                                              request_token_id uuid, remote_addr text, detail jsonb)`,
    [JSON.stringify(records)],
  );
}

export class AuditTrail {
  private readonly windows = new Map<string, Window>();
  private readonly windowMs: number;
  private readonly maxWindows: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
  /** commit_unknown rows not written yet: retried at every flush until the database takes them. */
  private unknown: { event: string; ids: string[]; cause: string; at: string }[] = [];
  private unknownIds = 0;
  /** ids left out of commit_unknown rows because too many were waiting (a long outage). */
  unknownDropped = 0;
  /** Writes started from synchronous hooks, awaited before the request's answer goes out. */
  private readonly pending = new WeakMap<object, Promise<void>[]>();

  constructor(private readonly db: Db, private readonly options: AuditTrailOptions = {}) {
    this.windowMs = options.windowMs ?? 60_000;
    this.maxWindows = options.maxWindows ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  /** Starts writing closed windows in the background (serve does; tests may flush by hand). */
  start(): void {
    this.timer ??= setInterval(() => void this.flush(false), Math.min(this.windowMs, 5_000));
    this.timer.unref();
  }

  async refuse(r: Refusal): Promise<void> {
    this.options.onRefusal?.(r.event, r.error);
    const start = Math.floor(this.now() / this.windowMs) * this.windowMs;
    // Only a proven caller's values are kept: an unauthenticated one may have named any client or token.
    const who = r.authenticated
      ? { clientName: r.clientName, job: r.job, buildNumber: r.buildNumber, audience: r.audience, requestTokenId: r.requestTokenId }
      : { clientName: undefined, job: undefined, buildNumber: undefined, audience: undefined, requestTokenId: undefined };
    let key = `${start}|${who.clientName ?? ''}|${who.requestTokenId ?? ''}|${r.remoteAddr}|${r.event}|${r.error}`;
    let remoteAddr = r.remoteAddr;
    if (!this.windows.has(key) && this.windows.size >= this.maxWindows) {
      // Too many callers at once: the rest of this window is counted without them.
      key = `${start}|*|${r.event}|${r.error}`;
      remoteAddr = undefined;
      Object.assign(who, { clientName: undefined, job: undefined, buildNumber: undefined, audience: undefined, requestTokenId: undefined });
    }
    const w = this.windows.get(key);
    if (w) w.count += 1;
    else this.windows.set(key, { ...who, remoteAddr, event: r.event, error: r.error, description: r.description, start, count: 1 });
  }

  /** Hands over a write started where it could not be awaited (an event hook), for settle() to await. */
  track(request: object, write: Promise<void>): void {
    const list = this.pending.get(request) ?? [];
    list.push(write);
    this.pending.set(request, list);
  }

  async settle(request: object): Promise<void> {
    const list = this.pending.get(request);
    this.pending.delete(request);
    if (list) await Promise.all(list);
  }

  /** Records, at the next flush, that these tokens' statement may have committed unseen. */
  commitUnknown(kind: 'id_token' | 'request_token', ids: string[], cause: string): void {
    if (this.unknownIds + ids.length > MAX_UNKNOWN_IDS) {
      this.unknownDropped += ids.length;
      return;
    }
    this.unknownIds += ids.length;
    const event = kind === 'id_token' ? AUDIT_EVENTS.idTokenCommitUnknown : AUDIT_EVENTS.requestTokenCommitUnknown;
    this.unknown.push({ event, ids, cause, at: new Date(this.now()).toISOString() });
  }

  /** Writes the windows that have ended (all of them with `all`), one row each with its count. */
  flush(all = false): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.unknown.length) {
        const rows = this.unknown.slice();
        try {
          await insertAuditRows(this.db, rows.map((u) => ({ event: u.event, detail: { ids: u.ids, cause: u.cause, at: u.at } })));
          this.unknown = this.unknown.slice(rows.length);
          this.unknownIds -= rows.reduce((n, u) => n + u.ids.length, 0);
        } catch (err) {
          // Still unavailable: kept for the next flush.
          this.options.onError?.(err);
        }
      }
      const cutoff = all ? Infinity : Math.floor(this.now() / this.windowMs) * this.windowMs;
      const due = [...this.windows.entries()].filter(([, w]) => w.start < cutoff);
      if (!due.length) return;
      for (const [key] of due) this.windows.delete(key);
      try {
        await insertAuditRows(
          this.db,
          due.map(([, w]) => ({
            event: w.event,
            clientName: w.clientName,
            job: w.job,
            buildNumber: w.buildNumber,
            audience: w.audience,
            requestTokenId: w.requestTokenId,
            remoteAddr: w.remoteAddr,
            detail: {
              error: w.error,
              error_description: w.description,
              count: w.count,
              window_start: new Date(w.start).toISOString(),
              window_end: new Date(w.start + this.windowMs).toISOString(),
            },
          })),
        );
      } catch (err) {
        this.options.onError?.(err);
      }
    });
    return this.flushing;
  }

  /** Stops the timer and writes every open window (on shutdown). */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush(true);
  }
}

// Refusals our grants record themselves are marked, so that oidc-provider's
// error events (which see every refusal) do not record them a second time.
const recorded = new WeakSet<object>();

export function markRecorded<E extends object>(err: E): E {
  recorded.add(err);
  return err;
}

export function wasRecorded(err: unknown): boolean {
  return typeof err === 'object' && err !== null && recorded.has(err);
}
