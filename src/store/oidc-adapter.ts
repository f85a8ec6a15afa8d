// oidc-provider's storage adapter, mapped onto our own tables:
// - Client:      registered Jenkins controllers (clients table). The secret
//                field carries the stored SHA-256; see http/provider.ts for
//                how oidc-provider compares against it.
// - AccessToken: build request tokens (request_tokens table), read-only, so
//                that oidc-provider's RFC 7009 revocation endpoint finds and
//                revokes them with its own client authentication.
// - anything else oidc-provider might persist: the generic oidc_models table
//   (with every interactive feature disabled, nothing is expected there).
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { REQUEST_TOKEN_PREFIX, hasShape } from '../secrets/bearer-secrets.js';
import { findRequestToken, findRequestTokenById, isRequestTokenId } from '../request-tokens/store.js';
import { MINT_GRANT_TYPE } from '../grants/token-types.js';
import { BUILD_CLIENT_ID, isClientName } from '../clients/validation.js';
import { poolOf, type Db } from './prisma.js';

/**
 * The columns of clients that a token request needs, named as the Client
 * model names them; read in SQL, as everything `serve` reads (store/sql.ts).
 */
export const CLIENT_COLUMNS = `name, jenkins_url AS "jenkinsUrl", audiences, sub_claims AS "subClaims", sub_template AS "subTemplate",
  claim_types AS "claimTypes", max_request_token_ttl AS "maxRequestTokenTtl", session_tag_claims AS "sessionTagClaims",
  transitive_tag_keys AS "transitiveTagKeys", source_identity AS "sourceIdentity", allowed_sources AS "allowedSources", enabled,
  secret_hash AS "secretHash", previous_secret_hash AS "previousSecretHash", previous_secret_expires_at AS "previousSecretExpiresAt"`;

export interface ClientRow {
  name: string;
  jenkinsUrl: string;
  audiences: string[];
  subClaims: string[];
  subTemplate: string | null;
  claimTypes: string;
  maxRequestTokenTtl: number;
  sessionTagClaims: string[];
  transitiveTagKeys: string[];
  sourceIdentity: string | null;
  allowedSources: string[];
  enabled: boolean;
  secretHash: string;
  previousSecretHash: string | null;
  previousSecretExpiresAt: Date | null;
}

/** Client metadata oidc-provider builds a Client from; the extra properties ride along for the mint grant. */
export function clientMetadata(row: Omit<ClientRow, 'enabled'>): AdapterPayload {
  return {
    client_id: row.name,
    client_secret: row.secretHash,
    grant_types: [MINT_GRANT_TYPE],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    jenkins_url: row.jenkinsUrl,
    allowed_audiences: row.audiences,
    sub_claims: row.subClaims,
    ...(row.subTemplate !== null && { sub_template: row.subTemplate }),
    claim_types: row.claimTypes,
    max_request_token_ttl: row.maxRequestTokenTtl,
    session_tag_claims: row.sessionTagClaims,
    transitive_tag_keys: row.transitiveTagKeys,
    ...(row.sourceIdentity !== null && { source_identity: row.sourceIdentity }),
    allowed_sources: row.allowedSources,
    // Only while the overlap lasts: an expired previous secret is not even handed to oidc-provider.
    ...(row.previousSecretHash !== null && row.previousSecretExpiresAt !== null && row.previousSecretExpiresAt.getTime() > Date.now() && {
      previous_secret_hash: row.previousSecretHash,
      previous_secret_expires_at: Math.floor(row.previousSecretExpiresAt.getTime() / 1000),
    }),
  } as AdapterPayload;
}

export function createAdapterFactory(db: Db) {
  return class PrismaOidcAdapter implements Adapter {
    constructor(private readonly name: string) {}

    async find(id: string): Promise<AdapterPayload | undefined> {
      if (this.name === 'Client') {
        // Not a possible client name: no lookup (a NUL or junk must never reach PostgreSQL).
        if (id === BUILD_CLIENT_ID || !isClientName(id)) return undefined;
        // Prepared once per connection, as the mint's own statement (request-tokens/store.ts): every mint looks its controller up.
        const { rows: [row] } = await poolOf(db).query<ClientRow>({ name: 'jenkins_oidc_client_v1', text: `SELECT ${CLIENT_COLUMNS} FROM clients WHERE name = $1`, values: [id] });
        // A disabled controller cannot authenticate at all.
        return row && row.enabled ? clientMetadata(row) : undefined;
      }
      if (this.name === 'AccessToken') {
        // A request token, or (for its controller's revocation, see
        // http/revocation.ts) a request token's id: the controller revokes
        // by id at a block's end, so nothing needs to be read back from the agent.
        const byId = isRequestTokenId(id);
        if (!byId && !hasShape(id, REQUEST_TOKEN_PREFIX)) return undefined;
        const row = byId ? await findRequestTokenById(db, id) : await findRequestToken(db, id);
        if (!row || row.revokedAt) return undefined;
        return {
          jti: id,
          kind: 'AccessToken',
          clientId: row.clientName,
          iat: Math.floor(row.createdAt.getTime() / 1000),
          exp: Math.floor(row.expiresAt.getTime() / 1000),
        };
      }
      const row = await this.model(id);
      if (!row || (row.expiresAt && row.expiresAt.getTime() <= Date.now())) return undefined;
      return row.payload as AdapterPayload;
    }

    /** Everything else oidc-provider might keep (nothing, with every interactive feature disabled). */
    private async model(id: string): Promise<{ payload: unknown; expiresAt: Date | null } | undefined> {
      const { rows } = await poolOf(db).query<{ payload: unknown; expiresAt: Date | null }>(
        'SELECT payload, expires_at AS "expiresAt" FROM oidc_models WHERE kind = $1 AND id = $2',
        [this.name, id],
      );
      return rows[0];
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
      if (this.name === 'Client' || this.name === 'AccessToken') {
        throw new Error(`${this.name} records are written by jenkins-oidc itself, not by oidc-provider`);
      }
      const expiresAt = expiresIn ? new Date(Date.now() + expiresIn * 1000) : null;
      await poolOf(db).query(
        `INSERT INTO oidc_models (kind, id, payload, expires_at) VALUES ($1, $2, $3::jsonb, $4)
         ON CONFLICT (kind, id) DO UPDATE SET payload = EXCLUDED.payload, expires_at = EXCLUDED.expires_at`,
        [this.name, id, JSON.stringify(payload), expiresAt],
      );
    }

    // Revocation of request tokens is done by the revocation policy (it knows
    // who revokes and from where); by the time oidc-provider calls destroy the
    // row is already revoked.
    async destroy(id: string): Promise<void> {
      if (this.name === 'Client' || this.name === 'AccessToken') return;
      await poolOf(db).query('DELETE FROM oidc_models WHERE kind = $1 AND id = $2', [this.name, id]);
    }

    async consume(id: string): Promise<void> {
      await poolOf(db).query(
        `UPDATE oidc_models SET payload = payload || jsonb_build_object('consumed', $3::bigint) WHERE kind = $1 AND id = $2`,
        [this.name, id, Math.floor(Date.now() / 1000)],
      );
    }

    async findByUid(): Promise<undefined> {
      return undefined;
    }

    async findByUserCode(): Promise<undefined> {
      return undefined;
    }

    async revokeByGrantId(): Promise<void> {
      // No grants exist: every interactive flow is disabled.
    }
  };
}
