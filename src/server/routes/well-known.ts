// Discovery and JWKS: what AWS STS fetches, often (reportedly on every
// AssumeRoleWithWebIdentity) and with a ~5 s budget. Both bodies are rendered
// once per key set (server/provider.ts) and sent from memory; the handlers do
// no I/O at all.
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import type { AppDeps } from '../app.js';
import { PATHS } from '../provider.js';

/** Short enough that a newly published key is seen well within a rotation's publish lead. */
export const WELL_KNOWN_CACHE_CONTROL = 'public, max-age=300';

export function wellKnownRoutes(router: Router, deps: AppDeps, named: (route: string) => Middleware): void {
  router.get(PATHS.discovery, named('discovery'), function discovery(ctx) {
    ctx.type = 'application/json';
    ctx.set('Cache-Control', WELL_KNOWN_CACHE_CONTROL);
    ctx.body = deps.runtime.current.discoveryJson;
  });
  router.get(PATHS.jwks, named('jwks'), function jwks(ctx) {
    ctx.type = 'application/json';
    ctx.set('Cache-Control', WELL_KNOWN_CACHE_CONTROL);
    ctx.body = deps.runtime.current.jwksJson;
  });
}
