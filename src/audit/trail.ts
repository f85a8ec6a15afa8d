// The audit trail's write side. Every row is one of the events below. The rows
// of tokens issued and revoked are written by the same statement or
// transaction as the token itself (request-tokens/store.ts; an ID token's by
// the redeem statement, request-tokens/redeem.ts), so a token never exists
// without its row; every refusal goes through AuditTrail.refuse().
//
// A refusal of a caller who proved who it is (a controller's client secret, or
// a request token this service knows) is one row, written before the answer
// goes out. A refusal of a caller who proved nothing (a junk bearer token, a
// wrong client secret) is counted in memory per (address, event, reason,
// minute) and written as one row per window with its count: a flood of junk
// writes a bounded number of rows instead of one per request. A refusal a
// proven caller can repeat at will (`aggregate`: a right client secret used
// from an address outside the client's allowed sources) is counted the same
// way, per (client, address, event, reason, minute), its client kept.
import type { Db } from '../store/prisma.js';

export const AUDIT_EVENTS = {
  requestTokenIssued: 'request_token.issued',
  requestTokenRevoked: 'request_token.revoked',
  idTokenIssued: 'id_token.issued',
  requestTokenRefused: 'request_token.refused',
  idTokenRefused: 'id_token.refused',
  tokenRefused: 'token.refused',
  revocationRefused: 'revocation.refused',
  clientSecretRotated: 'client.secret_rotated',
} as const;

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
  /** Counted per minute like an unauthenticated refusal, keeping clientName: for refusals a proven caller can repeat at will. */
  aggregate?: boolean;
  clientName?: string;
  job?: string;
  buildNumber?: number;
  audience?: string;
  requestTokenId?: string;
  remoteAddr?: string;
}

interface Window {
  clientName: string | undefined;
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
  /** Distinct (address, reason) pairs kept per window; beyond it they share one row per reason. */
  maxWindows?: number;
  /** A failed background write (the caller's answer has long gone out). */
  onError?: (err: unknown) => void;
  /** Every refusal as it happens (metrics). */
  onRefusal?: (event: RefusalEvent, error: string) => void;
  now?: () => number;
}

export class AuditTrail {
  private readonly windows = new Map<string, Window>();
  private readonly windowMs: number;
  private readonly maxWindows: number;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();
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
    if (r.authenticated && !r.aggregate) {
      await this.db.auditEvent.create({
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
      return;
    }
    const start = Math.floor(this.now() / this.windowMs) * this.windowMs;
    // Only a proven caller's name is kept: an unauthenticated one may have named any client.
    const clientName = r.authenticated ? r.clientName : undefined;
    let key = `${start}|${clientName ?? ''}|${r.remoteAddr}|${r.event}|${r.error}|${r.description}`;
    let remoteAddr = r.remoteAddr;
    if (!this.windows.has(key) && this.windows.size >= this.maxWindows) {
      // Too many addresses at once: the rest of this window is counted without them.
      key = `${start}|${clientName ?? ''}|*|${r.event}|${r.error}|${r.description}`;
      remoteAddr = undefined;
    }
    const w = this.windows.get(key);
    if (w) w.count += 1;
    else this.windows.set(key, { clientName, remoteAddr, event: r.event, error: r.error, description: r.description, start, count: 1 });
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

  /** Writes the windows that have ended (all of them with `all`), one row each with its count. */
  flush(all = false): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      const cutoff = all ? Infinity : Math.floor(this.now() / this.windowMs) * this.windowMs;
      const due = [...this.windows.entries()].filter(([, w]) => w.start < cutoff);
      if (!due.length) return;
      for (const [key] of due) this.windows.delete(key);
      try {
        await this.db.auditEvent.createMany({
          data: due.map(([, w]) => ({
            event: w.event,
            clientName: w.clientName,
            remoteAddr: w.remoteAddr,
            detail: {
              error: w.error,
              error_description: w.description,
              count: w.count,
              window_start: new Date(w.start).toISOString(),
              window_end: new Date(w.start + this.windowMs).toISOString(),
            },
          })),
        });
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
