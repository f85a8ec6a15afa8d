// Mint grant: a Jenkins controller (client-authenticated by oidc-provider)
// turns the facts of one build into an opaque build request token. The
// claims are fixed here, once; the build can later only exchange the token
// for ID tokens carrying exactly these claims.
//
// With requested_token_type=urn:ietf:params:oauth:token-type:id_token the
// controller gets one ID token for one audience instead (the library's
// jenkinsOidcToken): a request token is minted, exchanged and revoked within
// this request, so nothing is left to revoke and no token leaves the service
// but the ID token. Every step has its audit row.
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { AUDIT_EVENTS, markRecorded } from '../audit/trail.js';
import type { AwsClaimSettings } from '../claims/aws.js';
import { buildClaims, type BuildClaims, type MintInput } from '../claims/build-claims.js';
import { InputError, checkPositiveInt } from '../claims/text.js';
import type { ControllerClient } from '../clients/authentication.js';
import { createRequestToken, revokeRequestToken } from '../request-tokens/store.js';
import type { SecretUsed } from '../http/revocation.js';
import type { GrantDeps } from './deps.js';
import { issueIdToken } from './id-token.js';
import { ID_TOKEN_TYPE, MINT_GRANT_TYPE, REQUEST_TOKEN_TYPE } from './token-types.js';

export const grantType = MINT_GRANT_TYPE;
export const parameters = new Set([
  'job', 'build_number', 'build_url', 'ref', 'commit', 'repository', 'pull_request', 'triggered_by', 'replayed', 'restarted_from',
  'ttl', 'audience', 'requested_token_type',
]);
/** `audience` may be repeated to narrow the token to several audiences. */
export const allowDuplicates = new Set(['audience']);

type Params = Record<string, string | string[] | undefined>;

function narrowAudiences(requested: string | string[] | undefined, allowed: string[]): string[] {
  if (requested === undefined) return allowed;
  const list = Array.isArray(requested) ? requested : [requested];
  const unknown = list.filter((a) => !allowed.includes(a));
  if (unknown.length) {
    throw new errors.InvalidTarget(`audience "${unknown[0]}" is not allowed for this client (allowed: ${allowed.join(', ')})`);
  }
  return [...new Set(list)];
}

function lifetime(requested: string | undefined, client: ControllerClient, deps: GrantDeps): number {
  const cap = Math.min(client.max_request_token_ttl, deps.config.requestTokenMaxTtl);
  const ttl = requested === undefined ? deps.config.requestTokenTtl : checkPositiveInt('ttl', requested);
  return Math.min(ttl, cap);
}

/** undefined: a request token; ID_TOKEN_TYPE: one ID token for one audience. */
function requestedType(params: Params): typeof ID_TOKEN_TYPE | undefined {
  const requested = params.requested_token_type;
  if (requested === undefined || requested === REQUEST_TOKEN_TYPE) return undefined;
  if (requested === ID_TOKEN_TYPE) return ID_TOKEN_TYPE;
  throw new errors.InvalidRequest(`requested_token_type must be ${REQUEST_TOKEN_TYPE} (the default) or ${ID_TOKEN_TYPE}`);
}

export function handler(deps: GrantDeps) {
  return async function mintBuildRequestToken(ctx: KoaContextWithOIDC): Promise<void> {
    const client = ctx.oidc.client as unknown as ControllerClient;
    const params = ctx.oidc.params as Params;
    const secret = ctx.state.clientSecret as SecretUsed;
    let claims: BuildClaims;
    let audiences: string[];
    let ttl: number;
    let wanted: typeof ID_TOKEN_TYPE | undefined;
    const warnings: string[] = [];
    // The client record's AWS claim settings came with the client (no extra query).
    const aws: AwsClaimSettings = {
      sessionTagClaims: client.session_tag_claims ?? [],
      transitiveTagKeys: client.transitive_tag_keys ?? [],
      sourceIdentity: client.source_identity ?? null,
    };
    try {
      for (const required of ['job', 'build_number', 'build_url'] as const) {
        if (params[required] === undefined) throw new InputError(required, 'is required');
      }
      wanted = requestedType(params);
      // oidc-provider turns an empty parameter into an absent one. For the
      // replayed flag "absent" means "a library that predates it", so an empty
      // value is refused as malformed instead of silently dropping the claim.
      const input = { ...params } as unknown as MintInput;
      if ((ctx.oidc.body as Params | undefined)?.replayed === '') input.replayed = '';
      claims = buildClaims(input, { name: client.clientId, jenkinsUrl: client.jenkins_url, subClaims: client.sub_claims, subTemplate: client.sub_template ?? null, claimTypes: client.claim_types, aws }, warnings);
      audiences = narrowAudiences(params.audience, client.allowed_audiences);
      if (wanted && audiences.length !== 1) {
        throw new errors.InvalidTarget(`an ID token is for exactly one audience; name it with audience (allowed: ${client.allowed_audiences.join(', ')})`);
      }
      // An ID token's request token lives no longer than the ID token would.
      ttl = wanted ? Math.min(deps.config.idTokenTtl, lifetime(undefined, client, deps)) : lifetime(params.ttl as string | undefined, client, deps);
    } catch (err) {
      const oauth = err instanceof InputError ? new errors.InvalidRequest(err.message) : err;
      if (oauth instanceof errors.OIDCProviderError) {
        // The controller authenticated (oidc-provider checked its secret before this grant runs).
        await deps.audit.refuse({
          event: AUDIT_EVENTS.requestTokenRefused,
          authenticated: true,
          error: oauth.error,
          description: oauth.error_description ?? oauth.message,
          clientName: client.clientId,
          job: typeof params.job === 'string' ? params.job.slice(0, 512) : undefined,
          remoteAddr: ctx.ip,
        });
        markRecorded(oauth);
      }
      throw oauth;
    }
    const minted = await createRequestToken(deps.db, { clientName: client.clientId, claims, audiences, ttl, remoteAddr: ctx.ip, secret, warnings });
    deps.metrics?.tokenIssued('request_token', client.clientId);
    if (minted.newSource) deps.metrics?.newClientSource(client.clientId);
    ctx.state.client = client.clientId;
    const extra = warnings.length ? { warnings } : {};
    if (!wanted) {
      ctx.body = { access_token: minted.token, issued_token_type: REQUEST_TOKEN_TYPE, token_type: 'Bearer', expires_in: ttl, request_token_id: minted.id, ...extra };
      return;
    }
    const outcome = await issueIdToken(deps, { token: minted.token, audience: audiences[0], remoteAddr: ctx.ip });
    await revokeRequestToken(deps.db, minted.token, { by: client.clientId, remoteAddr: ctx.ip, secret });
    // The token was minted for this audience a moment ago: only a race with `clients disable` can refuse it.
    if (!outcome.ok) throw markRecorded(new errors.CustomOIDCProviderError(outcome.error, outcome.description));
    ctx.body = { access_token: outcome.idToken, issued_token_type: ID_TOKEN_TYPE, token_type: 'N_A', expires_in: outcome.expiresIn, ...extra };
  };
}
