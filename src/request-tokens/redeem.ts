// The token exchange's hot path in the database: redeem a build request token
// and write the audit row of the ID token about to be signed, in one
// statement. Redeems that arrive while a statement is running wait and go
// together in the next one, so under load one commit serves many ID tokens.
import type pg from 'pg';
import { AUDIT_EVENTS } from '../audit/trail.js';
import type { BuildClaims } from '../claims/build-claims.js';
import { hashSecret } from '../secrets/bearer-secrets.js';
import { poolOf, type Db } from '../store/prisma.js';
import { tokenPathHealthOf, type TokenPathHealth } from './path-health.js';

export interface RedeemInput {
  token: string;
  /** undefined: the token's first audience. */
  audience: string | undefined;
  /** Unique per call: it is also how a batch's answer is matched to its caller. */
  jti: string;
  kid: string;
  remoteAddr: string | undefined;
}

export type RedeemResult =
  | { ok: true; requestTokenId: string; claims: BuildClaims; audience: string; expiresAt: Date }
  | { ok: false; reason: 'unknown' | 'revoked' | 'expired' | 'client_disabled' | 'audience'; requestTokenId?: string; clientName?: string; claims?: BuildClaims; audience?: string; audiences?: string[] };

interface RedeemRow {
  jti: string;
  id: string;
  client_name: string;
  claims: BuildClaims;
  audiences: string[];
  audience: string | null;
  expires_at: Date;
  revoked: boolean;
  expired: boolean;
  enabled: boolean;
  issued: boolean;
}

/**
 * The one query of the service that bypasses Prisma, deliberately: it goes to
 * the same pg pool Prisma uses (store/prisma.ts), as a named prepared
 * statement, for a batch of redeems at once. For each one it finds the token
 * with its client and, only if the token is live, its client enabled and the
 * audience allowed, writes the audit row of the ID token about to be signed;
 * the reason for a refusal comes back in the same round trip.
 *
 * Why so (docs/performance.md, measured on 2 cores): through $queryRaw,
 * PostgreSQL planned the statement anew on every call and Prisma's client
 * added about 130 µs of JavaScript; prepared once per connection, it costs a
 * fraction of that. And most of a redeem's server CPU is the transaction
 * around it (its commit and WAL flush), not the row: a statement carrying 8
 * redeems costs about twice one carrying 1, so batching divides the
 * per-token cost under load. Durability is unchanged: no caller is answered
 * before the statement carrying its audit row has committed (synchronous
 * commit, store/prisma.ts).
 *
 * The name carries a version: change the SQL, change the name, or connections
 * that prepared the old text would keep it. Behind PgBouncer in transaction
 * mode, this needs PgBouncer 1.21+ with max_prepared_statements set (docs/operations.md,
 * "Sizing").
 */
const REDEEM_STATEMENT = {
  name: 'jenkins_oidc_redeem_v2',
  text: `
    WITH input AS (
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS i(audience, token_hash, jti, kid, remote_addr)
    ), t AS (
      SELECT i.jti, i.kid, i.remote_addr, rt.id, rt.client_name, rt.job, rt.build_number, rt.claims, rt.audiences,
             COALESCE(i.audience, rt.audiences[1]) AS audience,
             rt.expires_at, rt.revoked_at IS NOT NULL AS revoked, rt.expires_at <= now() AS expired, c.enabled
      FROM input i
      JOIN request_tokens rt ON rt.token_hash = i.token_hash
      JOIN clients c ON c.name = rt.client_name
    ), issued AS (
      INSERT INTO audit_events (event, client_name, job, build_number, audience, jti, kid, request_token_id, remote_addr, detail)
      SELECT $6, client_name, job, build_number, audience, jti, kid, id, remote_addr,
             jsonb_build_object('sub', claims->>'sub')
      FROM t WHERE NOT revoked AND NOT expired AND enabled AND audience = ANY(audiences)
      RETURNING jti
    )
    SELECT t.jti, t.id, t.client_name, t.claims, t.audiences, t.audience, t.expires_at, t.revoked, t.expired, t.enabled,
           t.jti IN (SELECT jti FROM issued) AS issued
    FROM t`,
} as const;

/** Redeems one statement carries at most: a large backlog goes in several. */
export const MAX_BATCH = 64;
/**
 * Statements of this process running at once. More would only split the
 * backlog into smaller batches (more commits for the same tokens); fewer than
 * two would leave every redeem waiting behind one slow commit.
 */
export const MAX_STATEMENTS = 2;

interface Pending {
  input: RedeemInput;
  resolve(result: RedeemResult): void;
  reject(err: unknown): void;
  /** performance.now() when it was queued. */
  queuedAt: number;
}

/**
 * A redeem waited for a statement as long as a query may wait for a pooled
 * connection: the database is out of reach or stalled (the statements ahead
 * of it have not come back). The message is how store/connectivity.ts knows
 * it, so the caller gets 503 temporarily_unavailable.
 */
export class RedeemWaitTimeout extends Error {
  constructor() {
    super('timeout exceeded when waiting for a database statement');
    this.name = 'RedeemWaitTimeout';
  }
}

function resultOf(row: RedeemRow | undefined): RedeemResult {
  if (!row) return { ok: false, reason: 'unknown' };
  if (row.issued) {
    return { ok: true, requestTokenId: row.id, claims: row.claims, audience: row.audience!, expiresAt: row.expires_at };
  }
  const reason = row.revoked ? 'revoked' : row.expired ? 'expired' : !row.enabled ? 'client_disabled' : 'audience';
  return { ok: false, reason, requestTokenId: row.id, clientName: row.client_name, claims: row.claims, audience: row.audience ?? undefined, audiences: row.audiences };
}

/**
 * The server refused the statement for what it carried (SQLSTATE class 22
 * data exception, 23 integrity violation, 54 program limit exceeded): nothing
 * of it was committed, and one of its inputs may be the cause. Anything else
 * (a lost connection, a server shutting down or out of connections) would
 * fail each redeem alone just the same.
 */
function refusedForItsInput(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^(22|23|54)[0-9A-Z]{3}$/.test(code);
}

/** The redeems of one process waiting for, or carried by, a statement. */
export class RedeemQueue {
  private waiting: Pending[] = [];
  private running = 0;
  private watch: NodeJS.Timeout | undefined;
  /**
   * How long a redeem may wait for a statement: the pool's own bound on
   * waiting for a connection (DATABASE_ACQUIRE_TIMEOUT). Without it, two
   * statements stuck on a silently dropped connection would hold every
   * exchange behind them until TCP gave up, many minutes later.
   */
  private readonly waitLimitMs: number;
  /** Statements run and redeems they carried, since start (read by tests). */
  readonly counts = { statements: 0, redeems: 0 };
  /** Told the number of redeems of each statement sent (metrics: batch sizes). */
  onStatement: ((redeems: number) => void) | undefined;

  private readonly health: TokenPathHealth;

  constructor(private readonly pool: pg.Pool) {
    this.waitLimitMs = pool.options.connectionTimeoutMillis || 3000;
    this.health = tokenPathHealthOf(pool);
  }

  redeem(input: RedeemInput): Promise<RedeemResult> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ input, resolve, reject, queuedAt: performance.now() });
      this.next();
      if (this.waiting.length > 0) this.watchBacklog();
    });
  }

  /** Redeems waiting for a statement (not yet sent). */
  get backlog(): number {
    return this.waiting.length;
  }

  private next(): void {
    while (this.running < MAX_STATEMENTS && this.waiting.length > 0) {
      const batch = this.waiting.splice(0, MAX_BATCH);
      this.running += 1;
      void this.run(batch).finally(() => {
        this.running -= 1;
        this.next();
      });
    }
  }

  /** One timer for the whole backlog, due when its oldest redeem has waited too long. */
  private watchBacklog(): void {
    const oldest = this.waiting[0];
    if (this.watch || !oldest) return;
    const due = oldest.queuedAt + this.waitLimitMs - performance.now();
    this.watch = setTimeout(() => {
      this.watch = undefined;
      const cutoff = performance.now() - this.waitLimitMs;
      let overdue = 0;
      while (overdue < this.waiting.length && this.waiting[overdue]!.queuedAt <= cutoff) overdue += 1;
      for (const p of this.waiting.splice(0, overdue)) p.reject(new RedeemWaitTimeout());
      this.watchBacklog();
    }, Math.max(0, due));
    // A backlog's timer must not keep a stopping process alive.
    this.watch.unref();
  }

  private async run(batch: Pending[]): Promise<void> {
    try {
      const rows = await this.execute(batch.map((p) => p.input));
      for (const p of batch) p.resolve(resultOf(rows.get(p.input.jti)));
    } catch (err) {
      // One caller's input must not fail the others: when the server refused
      // the statement for its inputs (so nothing of it was committed), each
      // redeem is tried alone. Any other failure fails them all; after a lost
      // connection their rows may or may not be on disk, and trying again
      // could write an ID token's row twice.
      if (batch.length === 1 || !refusedForItsInput(err)) {
        for (const p of batch) p.reject(err);
        return;
      }
      await Promise.all(batch.map(async (p) => {
        try {
          p.resolve(resultOf((await this.execute([p.input])).get(p.input.jti)));
        } catch (alone) {
          p.reject(alone);
        }
      }));
    }
  }

  private async execute(inputs: RedeemInput[]): Promise<Map<string, RedeemRow>> {
    this.counts.statements += 1;
    this.counts.redeems += inputs.length;
    this.onStatement?.(inputs.length);
    const { rows } = await this.health.track(() => this.pool.query<RedeemRow>({
      ...REDEEM_STATEMENT,
      values: [
        inputs.map((i) => i.audience ?? null),
        inputs.map((i) => hashSecret(i.token)),
        inputs.map((i) => i.jti),
        inputs.map((i) => i.kid),
        inputs.map((i) => i.remoteAddr ?? null),
        AUDIT_EVENTS.idTokenIssued,
      ],
    }), { kind: 'id_token', ids: inputs.map((i) => i.jti) });
    return new Map(rows.map((r) => [r.jti, r]));
  }
}

const queues = new WeakMap<pg.Pool, RedeemQueue>();

/** The process's queue for this database (one per pool). */
export function redeemQueueOf(db: Db): RedeemQueue {
  const pool = poolOf(db);
  let queue = queues.get(pool);
  if (!queue) {
    queue = new RedeemQueue(pool);
    queues.set(pool, queue);
  }
  return queue;
}

export function redeemRequestToken(db: Db, input: RedeemInput): Promise<RedeemResult> {
  return redeemQueueOf(db).redeem(input);
}
