// Token exchange (RFC 8693): a build presents its request token as the
// subject_token, as the public client `jenkins-build` (no secret on agents),
// and receives a signed ID token for one audience.
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { markRecorded } from '../audit/trail.js';
import type { GrantDeps } from './deps.js';
import { issueIdToken } from './id-token.js';
import { EXCHANGE_GRANT_TYPE, ID_TOKEN_TYPE, JWT_TOKEN_TYPE, REQUEST_TOKEN_TYPE } from './token-types.js';

export const grantType = EXCHANGE_GRANT_TYPE;
export const parameters = new Set(['subject_token', 'subject_token_type', 'audience', 'requested_token_type']);

type Params = Record<string, string | undefined>;

function checkExchangeParams(params: Params): void {
  if (!params.subject_token) throw new errors.InvalidRequest("missing required parameter 'subject_token'");
  if (!params.subject_token_type) throw new errors.InvalidRequest("missing required parameter 'subject_token_type'");
  if (params.subject_token_type !== REQUEST_TOKEN_TYPE) {
    throw new errors.InvalidRequest(`subject_token_type must be ${REQUEST_TOKEN_TYPE}`);
  }
  const requested = params.requested_token_type;
  if (requested !== undefined && requested !== ID_TOKEN_TYPE && requested !== JWT_TOKEN_TYPE) {
    throw new errors.InvalidRequest(`requested_token_type must be ${ID_TOKEN_TYPE} or ${JWT_TOKEN_TYPE}`);
  }
  if (params.audience !== undefined && (params.audience.length === 0 || params.audience.length > 255)) {
    throw new errors.InvalidTarget('audience must be 1-255 characters');
  }
}

export function handler(deps: GrantDeps) {
  return async function exchangeRequestToken(ctx: KoaContextWithOIDC): Promise<void> {
    const params = ctx.oidc.params as Params;
    checkExchangeParams(params);
    const outcome = await issueIdToken(deps, { token: params.subject_token!, audience: params.audience, remoteAddr: ctx.ip });
    ctx.state.client = outcome.client;
    if (!outcome.ok) {
      // CustomOIDCProviderError: oidc-provider's InvalidGrant hides its description.
      // issueIdToken recorded the refusal.
      throw markRecorded(new errors.CustomOIDCProviderError(outcome.error, outcome.description));
    }
    ctx.body = { access_token: outcome.idToken, issued_token_type: ID_TOKEN_TYPE, token_type: 'N_A', expires_in: outcome.expiresIn };
  };
}
