// Mint grant: a Jenkins controller (client-authenticated by oidc-provider)
// turns the facts of one build into an opaque build request token. The
// claims are fixed here, once; the build can later only exchange the token
// for ID tokens carrying exactly these claims.
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { AUDIT_EVENTS, markRecorded } from '../audit/trail.js';
import type { AwsClaimSettings } from '../claims/aws.js';
import { buildClaims, type BuildClaims, type MintInput } from '../claims/build-claims.js';
import type { BuildClaimName } from '../claims/names.js';
import { InputError, checkPositiveInt } from '../claims/text.js';
import { createRequestToken } from '../request-tokens/store.js';
import type { GrantDeps } from './deps.js';
import { MINT_GRANT_TYPE, REQUEST_TOKEN_TYPE } from './token-types.js';

export const grantType = MINT_GRANT_TYPE;
export const parameters = new Set(['job', 'build_number', 'build_url', 'ref', 'commit', 'repository', 'pull_request', 'triggered_by', 'replayed', 'ttl', 'audience']);
/** `audience` may be repeated to narrow the token to several audiences. */
export const allowDuplicates = new Set(['audience']);

/** The client record's fields, carried on oidc-provider's Client as extra metadata (kept snake_case by it). */
interface ControllerClient {
  clientId: string;
  jenkins_url: string;
  allowed_audiences: string[];
  sub_claims: BuildClaimName[];
  max_request_token_ttl: number;
  session_tag_claims?: BuildClaimName[];
  transitive_tag_keys?: BuildClaimName[];
  source_identity?: string;
}

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

export function handler(deps: GrantDeps) {
  return async function mintBuildRequestToken(ctx: KoaContextWithOIDC): Promise<void> {
    const client = ctx.oidc.client as unknown as ControllerClient;
    const params = ctx.oidc.params as Params;
    let claims: BuildClaims;
    let audiences: string[];
    let ttl: number;
    // Session tag and source identity settings are read from the client row
    // here (one indexed lookup per build) rather than carried as oidc-provider
    // client metadata, which keeps only the properties it was configured with.
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
      // oidc-provider turns an empty parameter into an absent one. For the
      // replayed flag "absent" means "a library that predates it", so an empty
      // value is refused as malformed instead of silently dropping the claim.
      const input = { ...params } as unknown as MintInput;
      if ((ctx.oidc.body as Params | undefined)?.replayed === '') input.replayed = '';
      claims = buildClaims(input, { name: client.clientId, jenkinsUrl: client.jenkins_url, subClaims: client.sub_claims, aws });
      audiences = narrowAudiences(params.audience, client.allowed_audiences);
      ttl = lifetime(params.ttl as string | undefined, client, deps);
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
    const { token } = await createRequestToken(deps.db, { clientName: client.clientId, claims, audiences, ttl, remoteAddr: ctx.ip });
    deps.metrics?.tokenIssued('request_token', client.clientId);
    ctx.state.client = client.clientId;
    ctx.body = { access_token: token, issued_token_type: REQUEST_TOKEN_TYPE, token_type: 'Bearer', expires_in: ttl };
  };
}
