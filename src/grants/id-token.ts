// Issue one ID token for a build request token: shared by the token-exchange
// grant and the GitHub-style GET /id-token endpoint. Every claim comes from the
// snapshot stored at mint; the caller chooses only the audience, and only
// among those the token allows.
import { randomUUID } from 'node:crypto';
import { AUDIT_EVENTS } from '../audit/trail.js';
import { SNAPSHOT_CLAIMS } from '../claims/names.js';
import { redeemRequestToken, type RedeemResult } from '../request-tokens/redeem.js';
import { REQUEST_TOKEN_PREFIX, hasShape } from '../secrets/bearer-secrets.js';
import type { GrantDeps } from './deps.js';

export type IdTokenOutcome =
  | { ok: true; idToken: string; expiresIn: number; client: string }
  | { ok: false; error: 'invalid_grant' | 'invalid_token' | 'invalid_target'; description: string; client?: string };

type Refusal = Extract<RedeemResult, { ok: false }>;

function describe(r: Refusal): { error: 'invalid_grant' | 'invalid_target'; description: string } {
  switch (r.reason) {
    case 'unknown':
      return { error: 'invalid_grant', description: 'the build request token is not known to this service' };
    case 'revoked':
      return { error: 'invalid_grant', description: 'the build request token has been revoked' };
    case 'expired':
      return { error: 'invalid_grant', description: 'the build request token has expired' };
    case 'client_disabled':
      return { error: 'invalid_grant', description: `the Jenkins client "${r.clientName}" that minted this token is disabled` };
    case 'audience':
      return { error: 'invalid_target', description: `audience "${r.audience}" is not allowed for this build request token (allowed: ${r.audiences?.join(', ')})` };
  }
}

export async function issueIdToken(
  deps: GrantDeps,
  input: {
    token: string;
    audience: string | undefined;
    remoteAddr: string | undefined;
    /**
     * The token came as `Authorization: Bearer` (GET /id-token): a dead or unknown
     * token is RFC 6750's invalid_token there, not the grant's invalid_grant; the
     * audit row records the error the caller was given.
     */
    bearer?: boolean;
  },
): Promise<IdTokenOutcome> {
  const signer = deps.signer();
  const jti = randomUUID();
  // A string that cannot be a request token is refused without a database lookup.
  const result: RedeemResult = hasShape(input.token, REQUEST_TOKEN_PREFIX)
    ? await redeemRequestToken(deps.db, { token: input.token, audience: input.audience, jti, kid: signer.kid, remoteAddr: input.remoteAddr })
    : { ok: false, reason: 'unknown' };
  if (!result.ok) {
    const described = describe(result);
    const { description } = described;
    const error = input.bearer && described.error === 'invalid_grant' ? 'invalid_token' : described.error;
    await deps.audit.refuse({
      event: AUDIT_EVENTS.idTokenRefused,
      // Holding a token this service knows (even a dead one) is who the caller is; an unknown one proves nothing.
      authenticated: result.requestTokenId !== undefined,
      error,
      description,
      clientName: result.clientName,
      job: result.claims?.job,
      // A string under claim_types string; the audit column is a number.
      buildNumber: result.claims?.build_number === undefined ? undefined : Number(result.claims.build_number),
      audience: input.audience ?? result.audience,
      requestTokenId: result.requestTokenId,
      remoteAddr: input.remoteAddr,
    });
    return { ok: false, error, description, client: result.clientName };
  }
  const now = Math.floor(Date.now() / 1000);
  // An ID token never outlives the request token it came from.
  const exp = Math.min(now + deps.config.idTokenTtl, Math.floor(result.expiresAt.getTime() / 1000));
  const { claims } = result;
  // The snapshot comes back from jsonb in storage order; write claims in their documented order.
  const buildClaims = Object.fromEntries(SNAPSHOT_CLAIMS.filter((k) => claims[k] !== undefined).map((k) => [k, claims[k]]));
  const idToken = await signer.sign({
    iss: deps.config.issuer,
    sub: claims.sub,
    aud: result.audience,
    exp,
    iat: now,
    nbf: now,
    jti,
    ...buildClaims,
  });
  deps.metrics?.tokenIssued('id_token', result.claims.jenkins_instance);
  return { ok: true, idToken, expiresIn: exp - now, client: result.claims.jenkins_instance };
}
