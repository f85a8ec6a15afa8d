// /healthz: the process answers. /readyz: the service should get traffic —
// not shutting down, the database answers, a signing key is loaded. Each 503
// says why, so an operator looking at the load balancer knows where to look.
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { VERSION } from '../../version.js';
import { databaseUnavailable } from '../../store/connectivity.js';
import type { AppDeps } from '../app.js';

class NoAnswer extends Error {}

export function healthRoutes(router: Router, deps: AppDeps, named: (route: string) => Middleware): void {
  // A refused or failed connection answers at once; the race only bounds a
  // query on an established connection to a server that went silent.
  const readyTimeoutMs = (deps.config.databaseAcquireTimeout + 1) * 1000;

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
    try {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new NoAnswer()), readyTimeoutMs);
      });
      await Promise.race([deps.db.$queryRaw`SELECT 1`, timeout]).finally(() => clearTimeout(timer));
    } catch (err) {
      if (err instanceof NoAnswer) return unavailable(`database unreachable: no answer within ${readyTimeoutMs / 1000} s`);
      const cause = databaseUnavailable(err);
      if (!cause) deps.logger.error({ err }, 'readiness check failed');
      return unavailable(`database unreachable: ${cause ?? 'unexpected error (see the service log)'}`);
    }
    if (!kid) return unavailable('no signing key loaded');
    ctx.body = { status: 'ready', signing_kid: kid };
  });
}
