// Microsoft Entra workload identity federation: the Azure SDKs
// (DefaultAzureCredential's WorkloadIdentityCredential) and
// `az login --federated-token` read the app, the tenant and a token file from
// AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_FEDERATED_TOKEN_FILE, and send
// the file's ID token to Entra as a client assertion
// (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow#third-case-access-token-request-with-a-federated-credential).
// The SDKs re-read the file whenever they need a new access token, so the
// agent keeps it fresh in the background (the refresher AWS web identity
// uses). Before that, one real token request (by default) turns a refusal
// into an explanation now rather than inside whichever tool asks first.
import { AgentError, usage } from './errors.js';
import type { TokenClaims } from './id-token.js';
import { withRetries, type RetryOptions } from './retry.js';

/** The audience Entra requires of the assertion (the federated credential's one audience). */
export const AZURE_AUDIENCE = 'api://AzureADTokenExchange';
export const AZURE_AUTHORITY_HOST = 'https://login.microsoftonline.com';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** What `az login` asks for first; any resource the app can reach would do to verify the trust. */
const VERIFY_SCOPE = 'https://management.core.windows.net//.default';
const REQUEST_TIMEOUT_MS = 10_000;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function checkClientId(value: string): string {
  if (!GUID.test(value)) throw usage(`--client-id must be the app registration's application (client) ID, a GUID, got "${value}"`);
  return value.toLowerCase();
}

export function checkTenantId(value: string): string {
  // A tenant is its GUID or one of its verified domains (contoso.onmicrosoft.com).
  if (!GUID.test(value) && !/^[a-z0-9-]+(\.[a-z0-9-]+)+$/i.test(value)) throw usage(`--tenant-id must be the directory (tenant) ID or a domain of it, got "${value}"`);
  return value;
}

export function checkAuthorityHost(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw usage(`--authority-host must be a URL such as ${AZURE_AUTHORITY_HOST}, got "${value}"`);
  }
  // The assertion is a bearer credential for the app.
  if (url.protocol !== 'https:') throw usage(`--authority-host must be https, got ${url.origin}`);
  if (url.search || url.hash || url.username) throw usage('--authority-host must be a base URL, without query, fragment or credentials');
  return url.href.replace(/\/+$/, '');
}

class TransientError extends Error {}

interface EntraError {
  error?: string;
  error_description?: string;
  error_codes?: number[];
}

/** Entra's description up to its trace lines (the rest are IDs and a timestamp), printable. */
function entraSaid(body: EntraError, status: number): string {
  const text = body.error_description ? body.error_description.split(/\r?\n/)[0]! : body.error ?? `HTTP ${status}`;
  return text.replace(/[\u0000-\u001f\u007f]/g, '?').slice(0, 500);
}

/** What a refusal means, beside the token's iss, aud and sub (what a federated credential matches). */
function explain(said: string, claims: TokenClaims, clientId: string): string[] {
  const lines = [
    'The ID token carried:',
    `  iss  ${claims.iss ?? '(none)'}`,
    `  aud  ${Array.isArray(claims.aud) ? claims.aud.join(', ') : claims.aud ?? '(none)'}`,
    `  sub  ${claims.sub ?? '(none)'}`,
  ];
  // Error codes: https://learn.microsoft.com/entra/identity-platform/reference-error-codes
  if (/AADSTS70021\b/.test(said)) {
    lines.push(
      `What it means: no federated credential of app ${clientId} has exactly this issuer, subject and audience (Entra compares them exactly and case-sensitively, without wildcards).`,
      '  Create one for this job: jenkins-oidc azure setup --client CLIENT --app APP --job JOB; a new credential can take a few minutes to propagate.',
    );
  } else if (/AADSTS700024\b/.test(said)) lines.push("What it means: the token is outside its lifetime by Entra's clock; check the clocks of the agent's host and the token service.");
  else if (/AADSTS700016\b/.test(said)) lines.push(`What it means: tenant has no app with client ID ${clientId}; check --client-id and --tenant-id.`);
  else if (/AADSTS90002\b/.test(said)) lines.push('What it means: the tenant does not exist; check --tenant-id.');
  else if (/AADSTS50027\b/.test(said)) lines.push('What it means: Entra could not verify the token: it accepts RS256-signed tokens only (SIGNING_ALG=RS256 on the token service), and must reach the issuer\'s discovery and JWKS.');
  return lines;
}

/**
 * One client-credentials request with the ID token as the assertion. Only no
 * answer, 5xx and 429 are retried; Entra's 400/401 answers are refusals.
 */
export async function verifyFederatedLogin(input: { authorityHost: string; tenantId: string; clientId: string; jwt: string; claims: TokenClaims; retry: RetryOptions }): Promise<void> {
  const url = `${input.authorityHost}/${encodeURIComponent(input.tenantId)}/oauth2/v2.0/token`;
  const attempt = async () => {
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: input.clientId, scope: VERIFY_SCOPE, client_assertion_type: JWT_BEARER, client_assertion: input.jwt }).toString(),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
        redirect: 'error',
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new TransientError(cause?.code ?? cause?.message ?? (err as Error).name);
    }
    const text = await res.text().catch(() => '');
    if (res.status >= 500 || res.status === 429) throw new TransientError(`HTTP ${res.status}`);
    let body: EntraError & { access_token?: unknown } = {};
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      // not JSON: the status says enough
    }
    return { status: res.status, body };
  };
  let answer: Awaited<ReturnType<typeof attempt>>;
  try {
    answer = await withRetries(attempt, (err) => (err instanceof TransientError ? { retry: true, reason: err.message } : { retry: false, reason: '' }), input.retry);
  } catch (err) {
    if (err instanceof TransientError) throw new AgentError('unavailable', `Microsoft Entra at ${input.authorityHost} did not answer after ${input.retry.maxAttempts} attempt(s): ${err.message}`);
    throw err;
  }
  // The access token itself is dropped: the tools ask for their own.
  if (answer.status === 200 && typeof answer.body.access_token === 'string') return;
  const said = entraSaid(answer.body, answer.status);
  throw new AgentError('refused', `Microsoft Entra refused the sign-in as app ${input.clientId} in tenant ${input.tenantId}: ${said}`, explain(said, input.claims, input.clientId));
}
