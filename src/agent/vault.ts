// Vault login with the build's ID token: POST <addr>/v1/auth/<path>/login
// {role, jwt} (Vault's JWT auth method), and revoke-self at the end. Like the
// STS calls, only failures that asking again can fix are retried: no answer,
// 5xx (Vault sealed or a standby without a leader: 503) and 429; a 4xx is a
// refusal and is explained beside what the token carried. The Vault token is
// a bearer secret: it goes to stdout for eval or to a 0600 file, never into a
// message.
import { AgentError, usage } from './errors.js';
import type { TokenClaims } from './id-token.js';
import { withRetries, type RetryOptions } from './retry.js';

const REQUEST_TIMEOUT_MS = 10_000;

export interface VaultTarget {
  addr: string;
  namespace?: string;
}

export function checkVaultAddr(addr: string | undefined): string {
  if (!addr) throw usage('no Vault address: give --vault-addr or set VAULT_ADDR');
  let url: URL;
  try {
    url = new URL(addr);
  } catch {
    throw usage(`--vault-addr must be a URL such as https://vault.example.com:8200, got "${addr}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw usage(`--vault-addr must be an http(s) URL, got "${addr}"`);
  // The ID token, and the Vault token that comes back, are bearer secrets.
  if (url.protocol === 'http:' && !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) {
    throw usage(`--vault-addr must be https (the tokens would cross the network in clear), got ${url.origin}`);
  }
  if (url.search || url.hash || url.username) throw usage(`--vault-addr must be the server's base URL, without query, fragment or credentials`);
  return url.href.replace(/\/+$/, '');
}

export function checkMountPath(path: string): string {
  if (!/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/.test(path)) throw usage(`--path must be a Vault mount path such as jwt or ci/jenkins, got "${path}"`);
  return path;
}

export function checkRoleName(role: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(role)) throw usage(`--role must be a Vault role name (letters, digits, _ . -), got "${role}"`);
  return role;
}

class TransientError extends Error {}

export interface VaultLogin {
  token: string;
  leaseDuration: number;
  policies: string[];
  metadata: Record<string, string>;
}

async function call(target: VaultTarget, method: string, path: string, init: { token?: string; body?: unknown }): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (init.body !== undefined) headers['content-type'] = 'application/json';
  if (init.token) headers['x-vault-token'] = init.token;
  if (target.namespace) headers['x-vault-namespace'] = target.namespace;
  let res: Response;
  try {
    res = await fetch(`${target.addr}/v1/${path}`, {
      method,
      headers,
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      // A token must not follow a redirect to wherever it points.
      redirect: 'error',
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new TransientError(cause?.code ?? cause?.message ?? (err as Error).name);
  }
  const text = await res.text().catch(() => '');
  if (res.status >= 500 || res.status === 429) throw new TransientError(`HTTP ${res.status}`);
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    // not JSON: the status says enough
  }
  return { status: res.status, body };
}

async function withVaultRetries<T>(target: VaultTarget, fn: () => Promise<T>, retry: RetryOptions): Promise<T> {
  try {
    return await withRetries(fn, (err) => (err instanceof TransientError ? { retry: true, reason: err.message } : { retry: false, reason: '' }), retry);
  } catch (err) {
    if (err instanceof TransientError) throw new AgentError('unavailable', `Vault at ${target.addr} did not answer after ${retry.maxAttempts} attempt(s): ${err.message}`);
    throw err;
  }
}

/** Vault's own words (its "errors" list), cut to a printable length. */
function vaultSaid(body: Record<string, unknown>, status: number): string {
  const errors = Array.isArray(body.errors) ? body.errors.map(String) : [];
  const text = errors.length ? errors.join('; ') : `HTTP ${status}`;
  return text.replace(/[\u0000-\u001f\u007f]/g, '?').slice(0, 500);
}

/** What a refused login means, next to the token's iss, aud and sub and the claims a role binds. */
function explainLogin(said: string, claims: TokenClaims, role: string, path: string): string[] {
  const lines = [
    'The ID token carried:',
    `  iss  ${claims.iss ?? '(none)'}`,
    `  aud  ${Array.isArray(claims.aud) ? claims.aud.join(', ') : claims.aud ?? '(none)'}`,
    `  sub  ${claims.sub ?? '(none)'}`,
    `  job  ${claims.job ?? '(none)'}   jenkins_instance ${claims.jenkins_instance ?? '(none)'}   build_number ${JSON.stringify(claims.build_number ?? null)}`,
  ];
  if (/audience/.test(said)) lines.push(`What it means: role ${role}'s bound_audiences does not include this aud; ask for the audience it binds with --audience.`);
  else if (/issuer/.test(said)) lines.push(`What it means: auth/${path}/config's bound_issuer is not this iss; regenerate it with: jenkins-oidc vault setup`);
  else if (/expired|not valid yet/.test(said)) lines.push('What it means: the token is outside its lifetime by Vault\'s clock (60 s skew allowed); check the clocks of Vault and the token service.');
  else if (/does not match any associated bound claim/.test(said)) lines.push(`What it means: role ${role}'s bound_claims do not admit this build (another job, branch or controller); see: vault read auth/${path}/role/${role}`);
  else if (/converting claim|could not be converted to string|not a string/.test(said)) {
    lines.push('What it means: the role binds or maps a claim that is not a string in this token (build_number is a number for clients with claim_types json);', '  jenkins-oidc clients update NAME --claim-types string');
  } else if (/could not be found/.test(said)) lines.push(`What it means: there is no role ${role} at auth/${path}; create it with: jenkins-oidc vault setup --role ${role} ...`);
  return lines;
}

export async function vaultLogin(target: VaultTarget, input: { path: string; role: string; jwt: string; claims: TokenClaims; retry: RetryOptions }): Promise<VaultLogin> {
  const { status, body } = await withVaultRetries(target, () => call(target, 'POST', `auth/${input.path}/login`, { body: { role: input.role, jwt: input.jwt } }), input.retry);
  const auth = body.auth as { client_token?: unknown; lease_duration?: unknown; policies?: unknown; metadata?: unknown } | undefined;
  if (status === 200 && auth && typeof auth.client_token === 'string') {
    return {
      token: auth.client_token,
      leaseDuration: typeof auth.lease_duration === 'number' ? auth.lease_duration : 0,
      policies: Array.isArray(auth.policies) ? auth.policies.map(String) : [],
      metadata: (auth.metadata ?? {}) as Record<string, string>,
    };
  }
  const said = vaultSaid(body, status);
  throw new AgentError('refused', `Vault refused the login to role ${input.role} at auth/${input.path}: ${said}`, explainLogin(said, input.claims, input.role, input.path));
}

/** revoke-self: true when Vault revoked it, false when it was already unknown (expired or revoked). */
export async function vaultRevokeSelf(target: VaultTarget, token: string, retry: RetryOptions): Promise<boolean> {
  const { status, body } = await withVaultRetries(target, () => call(target, 'POST', 'auth/token/revoke-self', { token }), retry);
  if (status === 204 || status === 200) return true;
  if (status === 403) return false;
  throw new AgentError('refused', `Vault refused revoke-self: ${vaultSaid(body, status)}`);
}
