// The real service on loopback for a test file: real PostgreSQL (its own
// database), real HTTP, real keys. Production mode (DATABASE_URL set), with
// an http issuer allowed because tests cannot have TLS on a public name.
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { loadConfig, type Config } from '../../src/config.js';
import { registerClient } from '../../src/clients/commands.js';
import { createLogger } from '../../src/logger.js';
import { startService, type RunningService } from '../../src/process/service.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { boundListener } from './ports.js';

export const MINT = 'urn:jenkins-oidc:grant-type:build-request-token';
export const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const REQUEST_TOKEN_TYPE = 'urn:jenkins-oidc:token-type:build-request-token';

export interface TestService {
  url: string;
  config: Config;
  database: TestDatabase;
  service: RunningService;
  /** Every log line the service wrote, parsed. */
  logs: Record<string, unknown>[];
  rawLogs(): string;
  stop(): Promise<void>;
}

export async function startTestService(env: Record<string, string> = {}, existing?: TestDatabase): Promise<TestService> {
  const database = existing ?? (await createTestDatabase());
  // Bound here and handed over, never freed: ISSUER names the port, and no
  // other process of the run can take it before the service listens.
  const { server: listener, port } = await boundListener();
  const config = loadConfig({
    DATABASE_URL: database.url,
    KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    ISSUER: `http://127.0.0.1:${port}`,
    ALLOW_INSECURE_ISSUER: 'true',
    HOST: '127.0.0.1',
    PORT: String(port),
    // Many services run at once in the suite; keep PostgreSQL's connection slots free.
    DATABASE_POOL_SIZE: '4',
    // Suites refuse on purpose, all from 127.0.0.1; the abuse-limit tests set their own budget.
    FAILED_ATTEMPTS_PER_MINUTE: '100000',
    // No load balancer watches a test's /readyz: stop without the grace.
    SHUTDOWN_GRACE: '0',
    // The product's 3 s wait for a pooled connection answers 503 on a busy
    // test machine (2 cores, load average 15) where nothing is wrong; tests of
    // that bound (database-outage, capacity) set their own.
    DATABASE_ACQUIRE_TIMEOUT: '60',
    ...env,
  });
  let raw = '';
  const sink = new Writable({
    write(chunk, _enc, cb) {
      raw += chunk.toString();
      cb();
    },
  });
  const logger = createLogger('info', sink);
  const service = await startService(config, logger, { listener }).catch((err: unknown) => {
    listener.close();
    throw err;
  });
  return {
    url: `http://127.0.0.1:${port}`,
    config,
    database,
    service,
    get logs() {
      return raw.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    rawLogs: () => raw,
    stop: async () => {
      await service.close();
      if (!existing) await database.drop();
    },
  };
}

export async function addClient(t: TestService, name = 'ci-main', extra: { audiences?: string[]; subClaims?: string[]; maxRequestTokenTtl?: number; jenkinsUrl?: string } = {}) {
  return registerClient(t.database.db, { name, jenkinsUrl: extra.jenkinsUrl ?? 'https://jenkins.example.com', ...extra }, t.config.requestTokenMaxTtl);
}

export function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

export async function postForm(url: string, form: Record<string, string | string[]>, headers: Record<string, string> = {}) {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) for (const item of Array.isArray(v) ? v : [v]) body.append(k, item);
  const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json: json as Record<string, unknown> };
}

export const BUILD = {
  job: 'folder/app',
  build_number: '42',
  build_url: 'https://jenkins.example.com/job/folder/job/app/42/',
};

export async function mint(t: TestService, secret: string, form: Record<string, string | string[]> = {}, client = 'ci-main') {
  return postForm(`${t.url}/token`, { grant_type: MINT, ...BUILD, ...form }, { authorization: basic(client, secret) });
}

export async function exchange(t: TestService, subjectToken: string, form: Record<string, string> = {}) {
  return postForm(`${t.url}/token`, {
    grant_type: EXCHANGE,
    client_id: 'jenkins-build',
    subject_token: subjectToken,
    subject_token_type: REQUEST_TOKEN_TYPE,
    ...form,
  });
}

export function decodeJwt(jwt: string): { header: Record<string, unknown>; payload: Record<string, unknown> } {
  const [h, p] = jwt.split('.');
  return { header: JSON.parse(Buffer.from(h!, 'base64url').toString()), payload: JSON.parse(Buffer.from(p!, 'base64url').toString()) };
}

/** A service with one controller (ci-main) and one request token it minted: what most endpoint tests start from. */
export async function startWithToken(env: Record<string, string> = {}): Promise<{ t: TestService; auth: string; token: string }> {
  const t = await startTestService(env);
  const { secret } = await addClient(t);
  const auth = basic('ci-main', secret);
  const res = await postForm(`${t.url}/token`, { grant_type: MINT, ...BUILD }, { authorization: auth });
  return { t, auth, token: res.json.access_token as string };
}
