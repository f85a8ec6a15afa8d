// signing_keys rows as `serve` and the key commands read them, in SQL
// (store/sql.ts says why not through Prisma), under the names Prisma's
// SigningKey model gives the columns, so that both kinds of rows look alike.
import type pg from 'pg';
import type { Sql } from '../store/sql.js';
import type { KeyStatus } from './keys.js';

/** The columns of signing_keys, named as the SigningKey model names them. */
export const SIGNING_KEY_COLUMNS = `kid, alg, status, public_jwk AS "publicJwk", private_key_encrypted AS "privateKeyEncrypted",
  created_at AS "createdAt", activate_after AS "activateAfter", activated_at AS "activatedAt", retired_at AS "retiredAt", removed_at AS "removedAt"`;

/** A signing_keys row as SIGNING_KEY_COLUMNS reads it. */
export interface SigningKeyRow {
  kid: string;
  alg: string;
  status: string;
  publicJwk: unknown;
  privateKeyEncrypted: string | null;
  createdAt: Date;
  activateAfter: Date | null;
  activatedAt: Date | null;
  retiredAt: Date | null;
  removedAt: Date | null;
}

/** Keys in the given states, oldest first. */
export async function keysIn(tx: Sql, statuses: KeyStatus[]): Promise<SigningKeyRow[]> {
  const { rows } = await tx.query<SigningKeyRow & pg.QueryResultRow>(
    `SELECT ${SIGNING_KEY_COLUMNS} FROM signing_keys WHERE status = ANY($1::text[]) ORDER BY created_at ASC, kid ASC`,
    [statuses],
  );
  return rows;
}

/** One key, whatever its state. */
export async function keyByKid(tx: Sql, kid: string): Promise<SigningKeyRow | undefined> {
  const { rows } = await tx.query<SigningKeyRow & pg.QueryResultRow>(`SELECT ${SIGNING_KEY_COLUMNS} FROM signing_keys WHERE kid = $1`, [kid]);
  return rows[0];
}

