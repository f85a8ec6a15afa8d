// Getting an ID token from the token service, the GitHub Actions way: the
// build's environment carries a request URL (`<issuer>/id-token?api-version=1`)
// and a bearer request token; `GET <url>&audience=A` answers {"value": jwt}.
// The request token may also come from a file, so it need not sit in the
// environment of every process of the build.
import { readFileSync } from 'node:fs';
import { AgentError, usage } from './errors.js';
import { withRetries, type RetryOptions } from './retry.js';

export const ENV = {
  url: 'JENKINS_ID_TOKEN_REQUEST_URL',
  token: 'JENKINS_ID_TOKEN_REQUEST_TOKEN',
  tokenFile: 'JENKINS_ID_TOKEN_REQUEST_TOKEN_FILE',
} as const;

export interface RequestCredentials {
  url: string;
  token: string;
}

const REQUEST_TIMEOUT_MS = 10_000;

export function readRequestCredentials(env: NodeJS.ProcessEnv): RequestCredentials {
  const url = env[ENV.url]?.trim();
  if (!url) {
    throw usage(`${ENV.url} is not set`, [
      'This agent runs inside a Jenkins build that was given a build request token by the jenkins-oidc',
      `pipeline library. Outside such a build, set ${ENV.url} and ${ENV.token} (or ${ENV.tokenFile}) yourself.`,
    ]);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new Error('scheme');
  } catch {
    throw usage(`${ENV.url} must be an http(s) URL such as https://oidc.example.com/id-token?api-version=1`);
  }
  // The request token is a bearer secret: plain http only on this machine.
  if (parsed.protocol === 'http:' && !['127.0.0.1', 'localhost', '[::1]'].includes(parsed.hostname)) {
    throw usage(`${ENV.url} must be https (the request token would cross the network in clear), got ${parsed.origin}`);
  }
  const inline = env[ENV.token]?.trim();
  const file = env[ENV.tokenFile]?.trim();
  let token = inline;
  if (file) {
    let fromFile: string;
    try {
      fromFile = readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw usage(`cannot read ${ENV.tokenFile} (${file}): ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    // The pipeline library sets both to the same token; two different ones are a mistake.
    if (inline && inline !== fromFile) throw usage(`${ENV.token} and ${ENV.tokenFile} hold different tokens: set one`);
    token = fromFile;
  }
  if (!token) throw usage(`${ENV.token} (or ${ENV.tokenFile}) is not set`);
  return { url, token };
}

export function idTokenUrl(requestUrl: string, audience: string | undefined): string {
  if (audience === undefined) return requestUrl;
  return `${requestUrl}${requestUrl.includes('?') ? '&' : '?'}audience=${encodeURIComponent(audience)}`;
}

/** The service says the request token itself is dead (HTTP 401): revoked, expired, or its controller disabled. */
export class RequestTokenRefused extends AgentError {}

/** A failure worth another try: the service did not answer, or answered 5xx/429. */
class TransientError extends Error {}

async function fetchOnce(creds: RequestCredentials, audience: string | undefined): Promise<string> {
  let res: Response;
  try {
    res = await fetch(idTokenUrl(creds.url, audience), {
      headers: { authorization: `Bearer ${creds.token}`, accept: 'application/json' },
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      // The bearer token must not follow a redirect to wherever it points.
      redirect: 'error',
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new TransientError(cause?.code ?? cause?.message ?? (err as Error).name);
  }
  let text: string;
  try {
    text = await res.text();
  } catch (err) {
    // A reset or the timeout while the body arrives: worth another try.
    throw new TransientError((err as Error).name);
  }
  let body: { value?: unknown; error?: string; error_description?: string } = {};
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON: handled below by status
  }
  if (res.ok && typeof body.value === 'string') return body.value;
  if (res.status >= 500 || res.status === 429) throw new TransientError(`HTTP ${res.status}`);
  const why = body.error_description ?? `HTTP ${res.status}`;
  if (res.status === 401) {
    throw new RequestTokenRefused('refused', `the token service refused the build request token: ${why}`, [
      'A request token lives only as long as its build (and at most its lifetime); it stops working',
      'when the build ends, when it is revoked, or when its Jenkins controller is disabled.',
    ]);
  }
  if (body.error === 'invalid_target') {
    throw new AgentError('refused', `the token service refused the audience: ${why}`, [
      'The audiences a build may ask for are set on its Jenkins controller: jenkins-oidc clients update NAME --audience ...',
    ]);
  }
  throw new AgentError('refused', `the token service answered HTTP ${res.status}: ${why}`);
}

export async function fetchIdToken(creds: RequestCredentials, audience: string | undefined, retry: RetryOptions): Promise<string> {
  try {
    return await withRetries(
      () => fetchOnce(creds, audience),
      (err) => (err instanceof TransientError ? { retry: true, reason: err.message } : { retry: false, reason: '' }),
      retry,
    );
  } catch (err) {
    if (err instanceof TransientError) {
      throw new AgentError('unavailable', `could not get an ID token from ${new URL(creds.url).origin} after ${retry.maxAttempts} attempt(s): ${err.message}`);
    }
    throw err;
  }
}

export interface TokenClaims {
  iss?: string;
  sub?: string;
  aud?: string | string[];
  exp?: number;
  iat?: number;
  job?: string;
  /** A string for clients with claim_types string (the default), a number for json. */
  build_number?: number | string;
  jenkins_instance?: string;
  'https://aws.amazon.com/tags'?: { principal_tags?: Record<string, string[]>; transitive_tag_keys?: string[] };
  'https://aws.amazon.com/source_identity'?: string;
  [claim: string]: unknown;
}

/** The payload as the token service wrote it. Not verified: for messages and defaults only. */
export function decodeClaims(jwt: string): TokenClaims {
  const payload = jwt.split('.')[1];
  try {
    return JSON.parse(Buffer.from(payload ?? '', 'base64url').toString('utf8')) as TokenClaims;
  } catch {
    throw new AgentError('refused', 'the token service answered with something that is not a JWT');
  }
}
