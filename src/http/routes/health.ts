// /healthz: the process answers. /readyz: the service should get traffic —
// not shutting down, the database answers as a writable primary, the token
// path's statements are not failing or stuck, a signing key is loaded. Each 503
// says why, so an operator looking at the load balancer knows where to look.
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { VERSION } from '../../version.js';
import type { AppDeps } from '../deps.js';

export function healthRoutes(router: Router, deps: AppDeps, named: (route: string) => Middleware): void {
  // Never the database: an orchestrator's liveness check must not fail (and restart the replica) for an outage.
  router.get('/healthz', named('healthz'), function healthz(ctx) {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok', version: VERSION };
  });
  router.get('/readyz', named('readyz'), async function readyz(ctx) {
    ctx.set('Cache-Control', 'no-store');
    const unavailable = (reason: string) => {
      ctx.status = 503;
      ctx.body = { status: 'unavailable', reason };
    };
    // First, and without touching the database: balancers must see this at once.
    if (deps.lifecycle?.stopping) return unavailable('shutting down');
    const kid = deps.runtime.current?.signer.kid;
    // From state the service keeps (http/readiness.ts): one shared probe a second at most.
    const answer = await deps.readiness.check();
    if (!answer.ready) return unavailable(answer.reason);
    if (!kid) return unavailable('no signing key loaded');
    ctx.body = { status: 'ready', signing_kid: kid };
  });
}
