// GET /agent/jenkins-oidc-agent.mjs and its .sha256: build agents fetch the
// build-side CLI from the service they already trust, and check it against
// the published digest (`sha256sum -c` reads the .sha256 body as it is).
// The bundle is read once at start (npm run build makes it) and served from
// memory; without it both paths answer 404 with the reason.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { sendError } from './errors.js';

export const AGENT_FILE_NAME = 'jenkins-oidc-agent.mjs';
export const AGENT_PATH = `/agent/${AGENT_FILE_NAME}`;

/** dist/agent/ from either src/http/routes (tests) or dist/http/routes. */
export const AGENT_BUNDLE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../dist/agent', AGENT_FILE_NAME);

export interface AgentBundle {
  body: Buffer;
  sha256: string;
}

export function loadAgentBundle(file = AGENT_BUNDLE): AgentBundle | undefined {
  try {
    const body = readFileSync(file);
    return { body, sha256: createHash('sha256').update(body).digest('hex') };
  } catch {
    return undefined;
  }
}

export function agentRoutes(router: Router, named: (route: string) => Middleware, bundle = loadAgentBundle()): void {
  const missing: Middleware = (ctx) =>
    sendError(ctx, 404, 'not_found', `the agent bundle is not built on this server (run npm run build; expected ${AGENT_FILE_NAME} in dist/agent)`);
  const cache = (ctx: Parameters<Middleware>[0]) => {
    ctx.status = 200;
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.set('ETag', `"${bundle!.sha256}"`);
  };
  router.get(AGENT_PATH, named('agent'), bundle
    ? function agentBundle(ctx) {
        cache(ctx);
        if (ctx.fresh) {
          ctx.status = 304;
          return;
        }
        ctx.type = 'text/javascript; charset=utf-8';
        ctx.set('X-Content-SHA256', bundle.sha256);
        ctx.body = bundle.body;
      }
    : missing);
  router.get(`${AGENT_PATH}.sha256`, named('agent-sha256'), bundle
    ? function agentDigest(ctx) {
        cache(ctx);
        ctx.type = 'text/plain; charset=utf-8';
        ctx.body = `${bundle.sha256}  ${AGENT_FILE_NAME}\n`;
      }
    : missing);
}
