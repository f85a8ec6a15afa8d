// The Koa application: our own routes (discovery, JWKS, /id-token, health)
// served from memory, and oidc-provider mounted for exactly two endpoints —
// the token endpoint and revocation. Everything else oidc-provider could
// expose (authorization, userinfo, sessions, registration, ...) is unreachable:
// unknown paths answer 404 before the provider ever sees them.
//
// Built by a factory so tests run it without listening, and so the same app
// serves any issuer path prefix (ISSUER=https://host/jenkins).
import Router from '@koa/router';
import Koa, { type Context, type Middleware } from 'koa';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { AppDeps } from './deps.js';
import { PATHS } from './provider.js';
import { agentRoutes } from './routes/agent.js';
import { idTokenRoute } from './routes/id-token.js';
import { healthRoutes } from './routes/health.js';
import { wellKnownRoutes } from './routes/well-known.js';
import { sendError } from './routes/errors.js';
import { EDGE_LIMITS, checkAtTheEdge, withReplayedBody } from './edge.js';
import { FailureBudget, countAttempts, refuseOverBudget } from './abuse-limits.js';
import { answerIfDatabaseUnavailable } from './unavailable.js';
import { resolveClientAddress, trustsProxies } from './client-address.js';

export type { AppDeps } from './deps.js';

/** Documented limit for any request body (forms on /token are a few hundred bytes). */
export const BODY_LIMIT_BYTES = EDGE_LIMITS.body;


function runMiddleware(middleware: Middleware[], ctx: Context): Promise<void> {
  const dispatch = (i: number): Promise<void> =>
    i < middleware.length ? Promise.resolve(middleware[i]!(ctx, () => dispatch(i + 1))) : Promise.resolve();
  return dispatch(0);
}

/**
 * The request's context as oidc-provider sees it: the same context, except
 * that the `oidc` accessor oidc-provider defines on it becomes a plain
 * property holding the same OIDCContext.
 *
 * Why: oidc-provider attaches its per-request state with
 * `Object.defineProperty(ctx, 'oidc', { get: () => ... })`
 * (lib/helpers/initialize_app.js, ensureOIDC), a new accessor per request.
 * V8 allocates the pair of accessors such a definition creates in the old
 * generation, and a minor collection takes every old object for alive: the
 * getter's closure, and through it the whole request (context, request,
 * response, form, rows, headers), survived every minor collection until the
 * next full one. The young generation promoted about 12 % of everything a
 * token request allocates, and full collections ran 8 times a second under
 * load (docs/performance.md, "Garbage collection"). The view takes that one
 * definition and holds the OIDCContext as a plain property instead: the
 * getter only builds it on first use and does nothing else, and by then the
 * router has set the route name its constructor reads. No accessor pair is
 * made, and the OIDCContext dies young with its request.
 *
 * The fix belongs in oidc-provider (`ctx.oidc = new this.OIDCContext(ctx)`
 * in ensureOIDC): until it lands there, this view keeps the library
 * unmodified. Everything else goes to the context itself, with the view as
 * the receiver, so Koa's accessors see what they always saw.
 */
function providerView(ctx: Context): Context {
  return new Proxy(ctx, {
    defineProperty(target, key, descriptor) {
      if (key === 'oidc' && typeof descriptor.get === 'function' && !Object.hasOwn(target, 'oidc')) {
        // The getter only builds the OIDCContext on first use (nothing else): built now, held as a plain property.
        return Reflect.defineProperty(target, key, { value: descriptor.get.call(target), writable: false, enumerable: false, configurable: true });
      }
      return Reflect.defineProperty(target, key, descriptor);
    },
  });
}

/** Hands the request to the current oidc-provider, with the issuer path stripped as koa-mount would. */
function delegateToProvider(deps: AppDeps): Middleware {
  const prefix = deps.config.basePath;
  return async function oidcProvider(ctx) {
    const { provider } = deps.runtime.current;
    const original = ctx.path;
    const req = ctx.req;
    ctx.path = original.slice(prefix.length) || '/';
    // The edge read and checked the form; oidc-provider reads it again from the stream.
    if (ctx.state.formBody) ctx.req = withReplayedBody(req, ctx.state.formBody as Buffer);
    // oidc-provider's events (provider.ts) get this view: the audit trail keys its writes by it.
    const view = providerView(ctx);
    try {
      await runMiddleware(provider.middleware as Middleware[], view);
    } finally {
      ctx.path = original;
      ctx.req = req;
      // A refusal oidc-provider answered itself is in the audit trail before the answer goes out.
      await deps.audit.settle(view);
    }
  };
}

function limitBody(): Middleware {
  return async function requireContentLength(ctx, next) {
    // A body without Content-Length (chunked) could not be checked up front (the edge checks sized ones).
    if (!ctx.get('content-length') && ctx.get('transfer-encoding')) {
      return sendError(ctx, 411, 'invalid_request', 'send the form with a Content-Length header (chunked bodies are not accepted)');
    }
    return next();
  };
}

/** One log line per request: route, client, outcome, latency. Never bodies, headers or query strings. */
function logRequests(logger: Logger, metrics: Metrics | undefined): Middleware {
  return async function logRequest(ctx, next) {
    const started = process.hrtime.bigint();
    try {
      await next();
    } catch (err) {
      const cause = answerIfDatabaseUnavailable(ctx, err);
      if (cause) {
        logger.warn({ route: ctx.state.route, cause }, 'database unavailable: answered 503');
      } else {
        logger.error({ err, route: ctx.state.route }, 'unexpected error');
        sendError(ctx, 500, 'server_error', 'an unexpected error occurred; the operator can find it in the service log');
      }
    } finally {
      const body = ctx.body as { error?: string } | undefined;
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (ctx.state.clientAborted) {
        // Not an outcome of ours: counted in jenkins_oidc_client_aborts_total, logged only at debug.
        logger.debug({ method: ctx.method, route: ctx.state.route ?? 'unknown', ms, ip: ctx.ip }, 'client went away before its request arrived');
        return;
      }
      metrics?.observeRequest(ctx.state.route, ctx.method, ctx.status, ms / 1000);
      logger.info({
        method: ctx.method,
        route: ctx.state.route ?? 'unknown',
        status: ctx.status,
        client: ctx.state.client,
        outcome: ctx.status < 400 ? 'ok' : (body && typeof body === 'object' && body.error) || 'error',
        ms,
        ip: ctx.ip,
      }, 'request');
    }
  };
}

export function createApp(deps: AppDeps): Koa {
  // `proxy` only for X-Forwarded-Proto/-Host; the client's address is resolveClientAddress's.
  const app = new Koa({ proxy: trustsProxies(deps.config.trustProxy) });
  // Exact, case-sensitive routes: /TOKEN or /token/ must not slip past a proxy rule written for /token.
  const router = new Router({ prefix: deps.config.basePath || undefined, sensitive: true, strict: true });
  const named = (route: string): Middleware => async (ctx, next) => {
    ctx.state.route = route;
    await next();
  };

  wellKnownRoutes(router, deps, named);
  router.get(PATHS.idToken, named('id-token'), idTokenRoute(deps));
  agentRoutes(router, named);
  router.post(PATHS.token, named('token'), limitBody(), delegateToProvider(deps));
  router.post(PATHS.revocation, named('revocation'), limitBody(), delegateToProvider(deps));

  const health = new Router({ sensitive: true, strict: true });
  healthRoutes(health, deps, named);
  if (deps.config.basePath) healthRoutes(router, deps, named);

  const budget = deps.budget ?? new FailureBudget({ perMinute: deps.config.failedAttemptsPerMinute });
  // A trusted credential's own failures: the same rate as an address's.
  const credentialBudget = new FailureBudget({ perMinute: deps.config.failedAttemptsPerMinute });
  const tokenPaths = new Set([PATHS.token, PATHS.revocation, PATHS.idToken].map((p) => `${deps.config.basePath}${p}`));
  const isTokenPath = (ctx: Context) => tokenPaths.has(ctx.path);

  app.use(resolveClientAddress(deps.config.trustProxy));
  app.use(logRequests(deps.logger, deps.metrics));
  app.use(countAttempts(budget, isTokenPath, credentialBudget));
  app.use(checkAtTheEdge({ bodyTimeoutSeconds: deps.config.requestBodyTimeout, onClientAbort: () => deps.metrics?.clientAborted() }));
  app.use(refuseOverBudget(budget, isTokenPath, deps.audit, credentialBudget));
  app.use(async function answerUnmatched(ctx, next) {
    await next();
    // Runs after the routers (and allowedMethods) have had their say.
    if (ctx.status === 405) {
      sendError(ctx, 405, 'invalid_request', `method ${ctx.method} is not allowed here (allowed: ${ctx.response.get('Allow')})`);
    } else if (ctx.status === 501) {
      // Methods no route knows (TRACE, PROPFIND...): the same JSON 405, not Koa's plain-text 501.
      ctx.remove('Allow');
      sendError(ctx, 405, 'invalid_request', `method ${ctx.method} is not allowed`);
    } else if (ctx.status === 404 && ctx.body === undefined) {
      sendError(ctx, 404, 'not_found', `no such endpoint; see the discovery document at ${deps.config.issuer}${PATHS.discovery}`);
    }
  });
  app.use(health.routes());
  app.use(router.routes());
  app.use(router.allowedMethods({ throw: false }));
  return app;
}
