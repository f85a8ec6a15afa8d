// Build request tokens in the database. The token itself is never stored:
// rows are keyed by its SHA-256. The claims snapshot is written once, at mint,
// and read back verbatim by the exchange (redeem.ts).
import { randomUUID } from 'node:crypto';
import { AUDIT_EVENTS } from '../audit/trail.js';
import type { BuildClaims } from '../claims/build-claims.js';
import { REQUEST_TOKEN_PREFIX, generateSecret, hashSecret } from '../secrets/bearer-secrets.js';
import { poolOf, type Db } from '../store/prisma.js';
import { tokenPathHealthOf } from './path-health.js';

export interface MintRecord {
  clientName: string;
  claims: BuildClaims;
  audiences: string[];
  ttl: number;
  remoteAddr: string | undefined;
  /** Which of the controller's secrets authenticated the mint (clients/authentication.ts). */
  secret?: 'current' | 'previous';
  /** Mint warnings the controller was told about (a session tag left out...), kept with the row. */
  warnings?: string[];
}

export interface Minted {
  token: string;
  id: string;
  expiresAt: Date;
  /** The controller had never minted from this address before. */
  newSource: boolean;
}

/** A request token's id (a v4 UUID, as randomUUID makes them): not a secret, it names a token in the audit trail. */
export function isRequestTokenId(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(value);
}

/**
 * One statement writes the token, its audit row and the address it came
 * from: a mint from an address the controller never used before is marked
 * `new_source` in the audit row (a stolen secret used elsewhere shows up
 * there), decided by the same statement that records the address, so two
 * mints racing from a new address mark exactly one. `last_seen_at` is
 * refreshed at most daily, so that steady minting does not rewrite the row.
 *
 * A named prepared statement, as the redeem's (redeem.ts): PostgreSQL plans
 * it once per connection instead of at every mint. Measured with the bench's
 * mint at 16 connections (RS256 runs, pairs alternated): PostgreSQL's CPU per
 * mint 494 and 610 µs against 825 and 967 planned anew, 1,087 to 1,414 mints
 * a second against 823 to 982. Change the SQL, change the name (connections
 * that prepared the old text keep it); behind PgBouncer in transaction mode
 * this needs max_prepared_statements (docs/operations.md, "Sizing").
 */
const MINT_STATEMENT = { name: 'jenkins_oidc_mint_v1', text: `
  WITH source AS (
    INSERT INTO client_sources (client_name, address)
    SELECT $2, $9::text WHERE $9::text IS NOT NULL
    ON CONFLICT (client_name, address) DO UPDATE SET last_seen_at = now()
      WHERE client_sources.last_seen_at < now() - interval '1 day'
    RETURNING (xmax = 0) AS inserted
  ), token AS (
    INSERT INTO request_tokens (id, token_hash, client_name, job, build_number, claims, audiences, created_at, expires_at)
    VALUES ($1::uuid, $3, $2, $4, $5, $6::jsonb, $7::text[], $13, $8)
  )
  INSERT INTO audit_events (event, client_name, job, build_number, audience, request_token_id, remote_addr, detail)
  SELECT $10, $2, $4, $5, $11, $1::uuid, $9, $12::jsonb
         || CASE WHEN EXISTS (SELECT 1 FROM source WHERE inserted) THEN '{"new_source": true}'::jsonb ELSE '{}'::jsonb END
  RETURNING detail ? 'new_source' AS new_source` } as const;

export async function createRequestToken(db: Db, record: MintRecord): Promise<Minted> {
  const token = generateSecret(REQUEST_TOKEN_PREFIX);
  const id = randomUUID();
  // Both times from one clock reading: the stored lifetime is exactly the one answered.
  const createdAt = new Date();
  const expiresAt = new Date(createdAt.getTime() + record.ttl * 1000);
  const { claims } = record;
  const detail = {
    claims,
    expires_at: expiresAt.toISOString(),
    ...(record.secret && { client_secret: record.secret }),
    ...(record.warnings?.length && { warnings: record.warnings }),
  };
  const pool = poolOf(db);
  const { rows } = await tokenPathHealthOf(pool).track(() => pool.query<{ new_source: boolean }>({ ...MINT_STATEMENT, values: [
    id,
    record.clientName,
    hashSecret(token),
    claims.job,
    Number(claims.build_number),
    JSON.stringify(claims),
    record.audiences,
    expiresAt,
    record.remoteAddr || null,
    AUDIT_EVENTS.requestTokenIssued,
    record.audiences.join(' '),
    JSON.stringify(detail),
    createdAt,
  ] }), { kind: 'request_token', ids: [id] });
  return { token, id, expiresAt, newSource: rows[0]?.new_source === true };
}

/** The columns of request_tokens, named as the RequestToken model names them. */
const REQUEST_TOKEN_COLUMNS = `id, token_hash AS "tokenHash", client_name AS "clientName", job, build_number AS "buildNumber", claims, audiences,
  created_at AS "createdAt", expires_at AS "expiresAt", revoked_at AS "revokedAt", revoked_by AS "revokedBy"`;

/** A request_tokens row, read in SQL: `serve` sends no Prisma query (store/sql.ts). */
export interface RequestTokenRow {
  id: string;
  tokenHash: string;
  clientName: string;
  job: string;
  buildNumber: number;
  claims: unknown;
  audiences: string[];
  createdAt: Date;
  expiresAt: Date;
  revokedAt: Date | null;
  revokedBy: string | null;
}

async function requestTokenWhere(db: Db, column: 'token_hash' | 'id', value: string): Promise<RequestTokenRow | undefined> {
  const { rows } = await poolOf(db).query<RequestTokenRow>(
    `SELECT ${REQUEST_TOKEN_COLUMNS} FROM request_tokens WHERE ${column} = $1${column === 'id' ? '::uuid' : ''}`,
    [value],
  );
  return rows[0];
}

export async function findRequestToken(db: Db, token: string): Promise<RequestTokenRow | undefined> {
  return requestTokenWhere(db, 'token_hash', hashSecret(token));
}

/** By id (a UUID: callers check isRequestTokenId first, so nothing else reaches PostgreSQL's uuid cast). */
export async function findRequestTokenById(db: Db, id: string): Promise<RequestTokenRow | undefined> {
  return requestTokenWhere(db, 'id', id);
}

export interface Revoker {
  /** The client that asked: the controller's name, or jenkins-build for the build itself. */
  by: string;
  remoteAddr: string | undefined;
  /** For a controller: which of its secrets it used. */
  secret?: 'current' | 'previous';
}

/**
 * The revocation and its audit row in one statement: the row is written only
 * when this call is the one that revoked (a second revocation, or one racing
 * it, changes nothing and records nothing).
 */
const REVOKE_STATEMENT = `
  WITH revoked AS (
    UPDATE request_tokens SET revoked_at = $2, revoked_by = $3
    WHERE id = $1::uuid AND revoked_at IS NULL
    RETURNING id, client_name, job, build_number
  )
  INSERT INTO audit_events (event, client_name, job, build_number, request_token_id, remote_addr, detail)
  SELECT $4, client_name, job, build_number, id, $5, $6::jsonb FROM revoked`;

async function revokeRow(db: Db, row: RequestTokenRow, who: Revoker): Promise<boolean> {
  if (row.revokedAt) return false;
  const { rowCount } = await poolOf(db).query(REVOKE_STATEMENT, [
    row.id,
    new Date(),
    who.by,
    AUDIT_EVENTS.requestTokenRevoked,
    who.remoteAddr ?? null,
    JSON.stringify({ revoked_by: who.by, ...(who.secret && { client_secret: who.secret }) }),
  ]);
  return rowCount === 1;
}

/** Idempotent: revoking twice keeps the first time and actor. */
export async function revokeRequestToken(db: Db, token: string, who: Revoker): Promise<boolean> {
  const row = await findRequestToken(db, token);
  return row ? revokeRow(db, row, who) : false;
}

/**
 * Revokes by id, for the controller that minted the token, and only for the
 * build it names: an id is not a secret (the audit trail shows it), so
 * knowing one must not let pipeline code of one build end another build's
 * token. Returns 'revoked', 'already' (revoked before, or unknown), or
 * 'other_build'.
 */
export async function revokeRequestTokenById(
  db: Db,
  id: string,
  build: { clientName: string; job: string; buildNumber: number },
  who: Revoker,
): Promise<'revoked' | 'already' | 'other_build'> {
  if (!isRequestTokenId(id)) return 'already';
  const row = await findRequestTokenById(db, id);
  if (!row || row.clientName !== build.clientName) return 'already';
  if (row.job !== build.job || row.buildNumber !== build.buildNumber) return 'other_build';
  return (await revokeRow(db, row, who)) ? 'revoked' : 'already';
}
