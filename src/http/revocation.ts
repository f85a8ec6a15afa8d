// Who may revoke a request token, and how (RFC 7009 at /token/revocation,
// served by oidc-provider, which authenticates the client and finds the token
// through our adapter before asking this policy):
// - the build holding it, as the public client `jenkins-build`: possession of
//   the token is the proof;
// - the controller that minted it, with its client credentials, by the token
//   itself or by the token's id (`token=<id>` with `job` and `build_number`
//   of its build). By id is how the pipeline library revokes at a block's
//   end: the controller needs nothing back from the agent, so a build that
//   overwrote or deleted its token file cannot keep its token alive.
// The revocation and its audit row are written here, where we know who asked
// and from where.
import { errors, type KoaContextWithOIDC } from 'oidc-provider';
import { checkJob } from '../claims/build-claims.js';
import { InputError, checkPositiveInt } from '../claims/text.js';
import { BUILD_CLIENT_ID } from '../clients/validation.js';
import { isRequestTokenId, revokeRequestToken, revokeRequestTokenById } from '../request-tokens/store.js';
import type { Db } from '../store/prisma.js';

/** ctx.state.clientSecret: which of the controller's secrets authenticated it (set by provider.ts). */
export type SecretUsed = 'current' | 'previous' | undefined;

function buildOf(ctx: KoaContextWithOIDC): { job: string; buildNumber: number } {
  const form = ctx.state.form as Map<string, string> | undefined;
  const job = form?.get('job');
  const number = form?.get('build_number');
  if (job === undefined || number === undefined) {
    throw new errors.InvalidRequest('revoking a request token by its id needs the job and build_number of the build it was minted for');
  }
  try {
    return { job: checkJob(job), buildNumber: checkPositiveInt('build_number', number) };
  } catch (err) {
    if (err instanceof InputError) throw new errors.InvalidRequest(err.message);
    throw err;
  }
}

export function revocationPolicy(db: Db) {
  return async function authorizeRevocation(ctx: KoaContextWithOIDC, client: { clientId: string }, token: { clientId?: string; jti: string }): Promise<boolean> {
    const byBuild = client.clientId === BUILD_CLIENT_ID;
    const who = { by: client.clientId, remoteAddr: ctx.ip, secret: ctx.state.clientSecret as SecretUsed };
    if (isRequestTokenId(token.jti)) {
      if (byBuild) {
        throw new errors.InvalidRequest('a build revokes its request token by presenting the token itself; revoking by id is for the controller that minted it');
      }
      if (client.clientId !== token.clientId) throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
      const build = buildOf(ctx);
      const outcome = await revokeRequestTokenById(db, token.jti, { clientName: client.clientId, ...build }, who);
      if (outcome === 'other_build') {
        throw new errors.InvalidRequest(`request token ${token.jti} was not minted for ${build.job} #${build.buildNumber}`);
      }
    } else {
      if (!byBuild && client.clientId !== token.clientId) throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
      await revokeRequestToken(db, token.jti, who);
    }
    ctx.state.client = token.clientId;
    // The token existed: the 200 proves possession (abuse-limits.ts trusts only such answers).
    ctx.state.revocationFound = true;
    return true;
  };
}
