// GET /id-token?audience=X with `Authorization: Bearer <request token>`:
// the GitHub Actions shape (ACTIONS_ID_TOKEN_REQUEST_URL), so a build needs
// only curl. Builds are given `<issuer>/id-token?api-version=1`, a URL that
// already has a query string, so clients that append `&audience=...` work.
import type { Middleware } from 'koa';
import { issueIdToken } from '../../grants/id-token.js';
import type { AppDeps } from '../deps.js';
import { sendError } from './errors.js';

export const ID_TOKEN_REQUEST_QUERY = '?api-version=1';

function unauthorized(ctx: Parameters<Middleware>[0], description: string): void {
  ctx.set('WWW-Authenticate', `Bearer error="invalid_token", error_description="${description.replaceAll('"', "'")}"`);
  sendError(ctx, 401, 'invalid_token', description);
}

export function idTokenRoute(deps: AppDeps): Middleware {
  const grantDeps = { config: deps.config, db: deps.db, audit: deps.audit, metrics: deps.metrics, signer: () => deps.runtime.current.signer };
  return async function getIdToken(ctx) {
    const header = ctx.get('authorization');
    const match = /^Bearer ([^\s]+)$/i.exec(header);
    if (!match) return unauthorized(ctx, 'send the build request token as Authorization: Bearer <token>');
    const audience = ctx.query.audience;
    if (Array.isArray(audience)) return sendError(ctx, 400, 'invalid_request', 'audience must be given at most once');
    if (audience !== undefined && (audience.length === 0 || audience.length > 255)) {
      return sendError(ctx, 400, 'invalid_target', 'audience must be 1-255 characters');
    }
    const outcome = await issueIdToken(grantDeps, { token: match[1]!, audience, remoteAddr: ctx.ip, bearer: true });
    ctx.state.client = outcome.client;
    if (!outcome.ok) {
      return outcome.error === 'invalid_target' ? sendError(ctx, 400, 'invalid_target', outcome.description) : unauthorized(ctx, outcome.description);
    }
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { value: outcome.idToken };
  };
}
