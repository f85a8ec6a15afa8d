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
import { findRequestToken, isRequestTokenId } from '../request-tokens/store.js';
import { MINT_GRANT_TYPE } from '../grants/token-types.js';
import { BUILD_CLIENT_ID, isClientName } from '../clients/validation.js';
import type { Db } from './prisma.js';

/** Client metadata oidc-provider builds a Client from; the extra properties ride along for the mint grant. */
export function clientMetadata(row: {
  name: string;
  secretHash: string;
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
  previousSecretHash: string | null;
  previousSecretExpiresAt: Date | null;
}): AdapterPayload {
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
        const row = await db.client.findUnique({ where: { name: id } });
        // A disabled controller cannot authenticate at all.
        return row && row.enabled ? clientMetadata(row) : undefined;
      }
      if (this.name === 'AccessToken') {
        // A request token, or (for its controller's revocation, see
        // http/revocation.ts) a request token's id: the controller revokes
        // by id at a block's end, so nothing needs to be read back from the agent.
        const byId = isRequestTokenId(id);
        if (!byId && !hasShape(id, REQUEST_TOKEN_PREFIX)) return undefined;
        const row = byId ? await db.requestToken.findUnique({ where: { id } }) : await findRequestToken(db, id);
        if (!row || row.revokedAt) return undefined;
        return {
          jti: id,
          kind: 'AccessToken',
          clientId: row.clientName,
          iat: Math.floor(row.createdAt.getTime() / 1000),
          exp: Math.floor(row.expiresAt.getTime() / 1000),
        };
      }
      const row = await db.oidcModel.findUnique({ where: { kind_id: { kind: this.name, id } } });
      if (!row || (row.expiresAt && row.expiresAt.getTime() <= Date.now())) return undefined;
      return row.payload as AdapterPayload;
    }

    async upsert(id: string, payload: AdapterPayload, expiresIn?: number): Promise<void> {
      if (this.name === 'Client' || this.name === 'AccessToken') {
        throw new Error(`${this.name} records are written by jenkins-oidc itself, not by oidc-provider`);
      }
      const expiresAt = expiresIn ? new Date(Date.now() + expiresIn * 1000) : null;
      await db.oidcModel.upsert({
        where: { kind_id: { kind: this.name, id } },
        create: { kind: this.name, id, payload: payload as object, expiresAt },
        update: { payload: payload as object, expiresAt },
      });
    }

    // Revocation of request tokens is done by the revocation policy (it knows
    // who revokes and from where); by the time oidc-provider calls destroy the
    // row is already revoked.
    async destroy(id: string): Promise<void> {
      if (this.name === 'Client' || this.name === 'AccessToken') return;
      await db.oidcModel.deleteMany({ where: { kind: this.name, id } });
    }

    async consume(id: string): Promise<void> {
      const row = await db.oidcModel.findUnique({ where: { kind_id: { kind: this.name, id } } });
      if (!row) return;
      await db.oidcModel.update({
        where: { kind_id: { kind: this.name, id } },
        data: { payload: { ...(row.payload as object), consumed: Math.floor(Date.now() / 1000) } },
      });
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
