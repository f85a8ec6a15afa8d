// What the service exposes, and what it does not: discovery, JWKS, health,
// an issuer with a path, a TLS-terminating proxy, and 404 for everything
// oidc-provider would otherwise serve.
import { readFileSync } from 'node:fs';
import { addClient, startTestService, type TestService } from '../helpers/service.js';

describe('OIDC surface at the root', () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService();
  });
  afterAll(async () => t.stop());

  test('discovery lists exactly what the service does', async () => {
    const res = await fetch(`${t.url}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    expect(await res.json()).toEqual({
      issuer: t.url,
      jwks_uri: `${t.url}/jwks`,
      token_endpoint: `${t.url}/token`,
      revocation_endpoint: `${t.url}/token/revocation`,
      grant_types_supported: ['urn:jenkins-oidc:grant-type:build-request-token', 'urn:ietf:params:oauth:grant-type:token-exchange'],
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
      scopes_supported: ['openid'],
      claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'jenkins_instance', 'jenkins_url', 'job', 'build_number', 'build_url', 'ref', 'ref_type', 'commit', 'repository', 'pull_request', 'triggered_by', 'replayed', 'restarted_from', 'https://aws.amazon.com/tags', 'https://aws.amazon.com/source_identity'],
    });
  });

  test('JWKS has public parts only, with kid, alg and use', async () => {
    const res = await fetch(`${t.url}/jwks`);
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
    const body = (await res.json()) as { keys: Record<string, string>[] };
    expect(body.keys).toHaveLength(1);
    const [key] = body.keys;
    expect(Object.keys(key!).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use']);
    expect(key).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig', e: 'AQAB' });
    expect(Buffer.from(key!.n!, 'base64url')).toHaveLength(256);
  });

  test('health: /healthz is up, /readyz names the signing key', async () => {
    const h = await fetch(`${t.url}/healthz`);
    expect(h.status).toBe(200);
    expect(await h.json()).toEqual({ status: 'ok', version: JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version });
    const r = await fetch(`${t.url}/readyz`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: 'ready', signing_kid: t.service.runtime.current.signer.kid });
  });

  test.each([
    ['GET', '/auth'],
    ['GET', '/auth?client_id=jenkins-build&response_type=code'],
    ['GET', '/me'],
    ['POST', '/reg'],
    ['GET', '/session/end'],
    ['GET', '/interaction/abc'],
    ['POST', '/token/introspection'],
    ['POST', '/device/auth'],
    ['POST', '/request'],
    ['GET', '/.well-known/oauth-authorization-server'],
    ['GET', '/nothing-here'],
  ])('%s %s answers 404 with a JSON error', async (method, path) => {
    const res = await fetch(`${t.url}${path}`, { method });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: 'not_found', error_description: `no such endpoint; see the discovery document at ${t.url}/.well-known/openid-configuration` });
  });

  test('a wrong method on a real endpoint is 405 naming the allowed ones', async () => {
    const res = await fetch(`${t.url}/token`);
    expect(res.status).toBe(405);
    expect(await res.json()).toEqual({ error: 'invalid_request', error_description: 'method GET is not allowed here (allowed: POST)' });
  });
});

describe('issuer with a path, behind a TLS-terminating proxy', () => {
  let t: TestService;
  beforeAll(async () => {
    t = await startTestService({ ISSUER: 'https://ci.example.com/jenkins', TRUST_PROXY: 'true' });
  });
  afterAll(async () => t.stop());

  test('discovery and JWKS are served under the issuer path', async () => {
    const res = await fetch(`${t.url}/jenkins/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      issuer: 'https://ci.example.com/jenkins',
      jwks_uri: 'https://ci.example.com/jenkins/jwks',
      token_endpoint: 'https://ci.example.com/jenkins/token',
    });
    expect((await fetch(`${t.url}/jenkins/jwks`)).status).toBe(200);
    expect((await fetch(`${t.url}/.well-known/openid-configuration`)).status).toBe(404);
    expect((await fetch(`${t.url}/jenkins/readyz`)).status).toBe(200);
  });

  test('tokens are minted and exchanged under the path; the forwarded client address is audited', async () => {
    const { secret } = await addClient(t);
    const res = await fetch(`${t.url}/jenkins/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from(`ci-main:${secret}`).toString('base64')}`,
        'x-forwarded-for': '203.0.113.7',
        'x-forwarded-proto': 'https',
      },
      body: new URLSearchParams({ grant_type: 'urn:jenkins-oidc:grant-type:build-request-token', job: 'a', build_number: '1', build_url: 'https://jenkins.example.com/job/a/1/' }),
    });
    expect(res.status).toBe(200);
    const token = ((await res.json()) as { access_token: string }).access_token;
    const id = await fetch(`${t.url}/jenkins/id-token?api-version=1`, { headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': '203.0.113.8' } });
    expect(id.status).toBe(200);
    const { value } = (await id.json()) as { value: string };
    expect(JSON.parse(Buffer.from(value.split('.')[1]!, 'base64url').toString()).iss).toBe('https://ci.example.com/jenkins');
    const rows = await t.database.query("SELECT event, remote_addr FROM audit_events ORDER BY id");
    expect(rows).toEqual([
      { event: 'request_token.issued', remote_addr: '203.0.113.7' },
      { event: 'id_token.issued', remote_addr: '203.0.113.8' },
    ]);
  });
});
