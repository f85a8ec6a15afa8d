// The OAuth error shape ({error, error_description}) for our own routes, the
// same shape oidc-provider answers with on the token endpoint.
import type { Context } from 'koa';

export function sendError(ctx: Context, status: number, error: string, description: string): void {
  ctx.status = status;
  ctx.type = 'application/json';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { error, error_description: description };
}
