// Discovery and JWKS: what AWS STS fetches, often (reportedly on every
// AssumeRoleWithWebIdentity) and with a ~5 s budget. Both bodies are rendered
// once per key set (http/provider.ts) and sent from memory; the handlers do
// no I/O at all.
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import type { AppDeps } from '../deps.js';
import { PATHS } from '../provider.js';

/**
 * A relying party that cached JWKS just before a key was published must
 * refetch before that key signs: so caches last at most half the publish lead
 * (and never over 5 minutes, which also bounds how long a revoked key lingers
 * in well-behaved caches).
 */
export function wellKnownCacheControl(publishLeadSeconds: number): string {
  return `public, max-age=${Math.min(300, Math.floor(publishLeadSeconds / 2))}`;
}

export function wellKnownRoutes(router: Router, deps: AppDeps, named: (route: string) => Middleware): void {
  const cacheControl = wellKnownCacheControl(deps.config.keyPublishLead);
  router.get(PATHS.discovery, named('discovery'), function discovery(ctx) {
    ctx.type = 'application/json';
    ctx.set('Cache-Control', cacheControl);
    ctx.body = deps.runtime.current.discoveryJson;
  });
  router.get(PATHS.jwks, named('jwks'), function jwks(ctx) {
    ctx.type = 'application/json';
    ctx.set('Cache-Control', cacheControl);
    ctx.body = deps.runtime.current.jwksJson;
  });
}
