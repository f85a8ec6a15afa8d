// /healthz: the process answers. /readyz: the database answers and a signing
// key is loaded — what a load balancer should route on.
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { VERSION } from '../../version.js';
import type { AppDeps } from '../app.js';

const READY_TIMEOUT_MS = 2000;

export function healthRoutes(router: Router, deps: AppDeps, named: (route: string) => Middleware): void {
  router.get('/healthz', named('healthz'), function healthz(ctx) {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = { status: 'ok', version: VERSION };
  });
  router.get('/readyz', named('readyz'), async function readyz(ctx) {
    ctx.set('Cache-Control', 'no-store');
    const kid = deps.runtime.current?.signer.kid;
    try {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), READY_TIMEOUT_MS);
      });
      await Promise.race([deps.db.$queryRaw`SELECT 1`, timeout]).finally(() => clearTimeout(timer));
    } catch {
      ctx.status = 503;
      ctx.body = { status: 'unavailable', reason: 'database unreachable' };
      return;
    }
    if (!kid) {
      ctx.status = 503;
      ctx.body = { status: 'unavailable', reason: 'no signing key loaded' };
      return;
    }
    ctx.body = { status: 'ready', signing_kid: kid };
  });
}
