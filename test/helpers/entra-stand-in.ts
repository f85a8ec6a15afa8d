// A Microsoft Entra stand-in for the test suite: the token endpoint of the
// client credentials grant with a federated credential (the build's ID token
// as client_assertion), the tenant's OpenID configuration MSAL reads first,
// and the Azure Resource Manager subscription list `az login` reads after.
// It is served over HTTPS (test CA) as login.microsoftonline.com and
// management.azure.com, which the Azure CLI reaches through a CONNECT proxy
// (connect-proxy.ts): az cannot be pointed at another authority.
//
// Apps and their federated credentials come from `jenkins-oidc azure setup
// --json`. The rules, and where Microsoft documents them:
// - Client credentials with a federated credential: grant_type
//   client_credentials, client_assertion_type
//   urn:ietf:params:oauth:client-assertion-type:jwt-bearer, client_assertion
//   the external token, scope <resource>/.default
//   (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow,
//   "Third case: Access token request with a federated credential").
// - "Only issuers that provide tokens signed using the RS256 algorithm are
//   supported" (https://learn.microsoft.com/entra/workload-id/workload-identity-federation-considerations,
//   "Supported signing algorithms and issuers"): another alg is AADSTS50027.
// - issuer, subject and audience of a federated credential "must match" the
//   token's iss, sub and aud, "Wildcard characters aren't supported" (same
//   page, federated credential configuration): compared exactly, and
//   case-sensitively; no match is AADSTS70021.
// - The token is verified with the issuer's keys, from its OpenID discovery
//   document's jwks_uri (https://learn.microsoft.com/entra/workload-id/workload-identity-federation,
//   "How it works"): a bad signature is AADSTS50027.
// - A token outside its lifetime: AADSTS700024 "Client assertion is not within
//   its valid time range".
// Error codes and their names: https://learn.microsoft.com/entra/identity-platform/reference-error-codes
// (AADSTS50027 InvalidJwtToken, AADSTS70021 no matching federated identity
// record, AADSTS700016 application not found in the directory, AADSTS90002
// tenant not found, AADSTS700024 assertion outside its time range).
import { randomBytes, randomUUID } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { compactVerify, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import { issueServerCertificate, type TestCa } from './test-ca.js';

export const ENTRA_HOSTS = ['login.microsoftonline.com', 'management.azure.com'];
/** Also in the certificate: the agent (Node, no proxy) reaches the stand-in as https://localhost:<port> (--authority-host). */
const ALSO_SERVED_AS = ['localhost'];
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export interface FederatedCredential {
  name: string;
  issuer: string;
  subject: string;
  audiences: string[];
}

export interface EntraExchange {
  outcome: string;
  clientId?: string;
  subject?: string;
}

class EntraError extends Error {
  constructor(readonly status: number, readonly error: string, readonly code: number, description: string) {
    super(`AADSTS${code}: ${description}`);
  }
}

export class EntraStandIn {
  port = 0;
  clockOffsetSeconds = 0;
  readonly exchanges: EntraExchange[] = [];
  /** Every request, as host and path: which of Microsoft's endpoints az reached. */
  readonly requests: string[] = [];
  private readonly apps = new Map<string, { tenantId: string; credentials: FederatedCredential[] }>();
  private readonly tokens = new Map<string, { clientId: string; tenantId: string; subject: string; exp: number }>();
  private server?: https.Server;
  private readonly idpAgent: https.Agent;

  constructor(private readonly ca: TestCa) {
    this.idpAgent = new https.Agent({ ca: ca.rootPem, keepAlive: false });
  }

  now(): number {
    return Math.floor(Date.now() / 1000) + this.clockOffsetSeconds;
  }

  /** An app registration in a tenant, with the federated credentials `azure setup --json` printed. */
  addApp(tenantId: string, clientId: string, credentials: FederatedCredential[]): void {
    this.apps.set(clientId, { tenantId, credentials });
  }

  /** Who an access token was issued to (as a resource would see it). */
  tokenInfo(accessToken: string) {
    return this.tokens.get(accessToken);
  }

  async start(): Promise<this> {
    const { keyPem, chainPem } = issueServerCertificate(this.ca, [...ENTRA_HOSTS, ...ALSO_SERVED_AS]);
    this.server = https.createServer({ key: keyPem, cert: chainPem }, (req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const host = (req.headers.host ?? '').replace(/:\d+$/, '');
        const url = new URL(req.url ?? '/', `https://${host}`);
        this.requests.push(`${req.method} ${host}${url.pathname}`);
        const send = (status: number, json: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(JSON.stringify(json));
        };
        if (host === 'management.azure.com') return this.arm(req.headers.authorization, url, send);
        const tenantPath = /^\/([^/]+)\/(v2\.0\/\.well-known\/openid-configuration|oauth2\/v2\.0\/token)$/.exec(url.pathname);
        if (req.method === 'GET' && tenantPath?.[2]?.startsWith('v2.0')) return send(200, this.openidConfiguration(tenantPath[1]!));
        if (req.method === 'POST' && tenantPath) {
          this.token(tenantPath[1]!, new URLSearchParams(body))
            .then((json) => send(200, json))
            .catch((err: unknown) => {
              const e = err instanceof EntraError ? err : new EntraError(500, 'server_error', 0, (err as Error).message);
              this.exchanges.push({ outcome: e.message });
              // Entra's error body: the code first in error_description, then trace lines.
              send(e.status, { error: e.error, error_description: `${e.message}\r\nTrace ID: ${randomUUID()}\r\nCorrelation ID: ${randomUUID()}\r\nTimestamp: ${new Date().toISOString()}`, error_codes: [e.code], timestamp: new Date().toISOString() });
            });
          return;
        }
        send(404, { error: 'not_found', error_description: `stand-in: ${req.method} ${host}${url.pathname}` });
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server!.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    this.idpAgent.destroy();
    await new Promise<void>((resolve) => {
      this.server?.close(() => resolve());
      this.server?.closeAllConnections();
    });
  }

  /** The tenant's v2.0 metadata: where MSAL finds the token endpoint. */
  private openidConfiguration(tenant: string) {
    const base = `https://login.microsoftonline.com/${tenant}`;
    return {
      issuer: `https://login.microsoftonline.com/${tenant}/v2.0`,
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      token_endpoint: `${base}/oauth2/v2.0/token`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    };
  }

  private fetchJson(url: string): Promise<unknown> {
    return new Promise((resolve, reject) => {
      https
        .get(url, { agent: this.idpAgent, timeout: 5000 }, (res) => {
          let data = '';
          res.on('data', (c) => (data += c));
          res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(data)) : reject(new Error(`${url}: HTTP ${res.statusCode}`))));
        })
        .on('error', reject);
    });
  }

  private async token(tenant: string, form: URLSearchParams) {
    if (form.get('grant_type') !== 'client_credentials') throw new EntraError(400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
    const clientId = form.get('client_id') ?? '';
    const app = this.apps.get(clientId);
    if (![...this.apps.values()].some((a) => a.tenantId === tenant)) throw new EntraError(400, 'invalid_request', 90002, `Tenant '${tenant}' not found.`);
    if (!app || app.tenantId !== tenant) throw new EntraError(400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${tenant}'.`);
    if (!/\/\.default$/.test(form.get('scope') ?? '')) throw new EntraError(400, 'invalid_scope', 1002012, 'The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.');
    if (form.get('client_assertion_type') !== JWT_BEARER) throw new EntraError(400, 'invalid_request', 900023, "The client_assertion_type must be 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'.");
    const jwt = form.get('client_assertion') ?? '';
    let header: { alg?: string; kid?: string };
    let claims: Record<string, unknown>;
    try {
      header = decodeProtectedHeader(jwt);
      claims = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new EntraError(400, 'invalid_request', 50027, 'JWT token is invalid or malformed.');
    }
    // RS256 only (workload-identity-federation-considerations, "Supported signing algorithms and issuers").
    if (header.alg !== 'RS256') throw new EntraError(400, 'invalid_request', 50027, `Invalid JWT token. Unsupported signing algorithm '${String(header.alg)}': only RS256 is supported for federated credentials.`);
    const aud = Array.isArray(claims.aud) ? claims.aud.map(String) : [String(claims.aud)];
    // Exact, case-sensitive, no wildcards: issuer, subject, and one of the credential's audiences.
    const match = app.credentials.find((c) => c.issuer === claims.iss && c.subject === claims.sub && aud.some((a) => c.audiences.includes(a)));
    if (!match) {
      throw new EntraError(400, 'invalid_request', 70021, `No matching federated identity record found for presented assertion. Assertion Issuer: '${String(claims.iss)}'. Assertion Subject: '${String(claims.sub)}'. Assertion Audience: '${aud.join(',')}'.`);
    }
    try {
      const discovery = (await this.fetchJson(`${match.issuer}/.well-known/openid-configuration`)) as { jwks_uri: string };
      const jwk = ((await this.fetchJson(discovery.jwks_uri)) as { keys: JWK[] }).keys.find((k) => k.kid === header.kid);
      if (!jwk) throw new Error('no key with this kid');
      await compactVerify(jwt, await importJWK(jwk, 'RS256'));
    } catch (err) {
      throw new EntraError(400, 'invalid_request', 50027, `Invalid JWT token. The external ID token from issuer '${match.issuer}' failed signature verification (${(err as Error).message}).`);
    }
    const now = this.now();
    if (typeof claims.exp !== 'number' || claims.exp <= now || (typeof claims.nbf === 'number' && claims.nbf > now)) {
      throw new EntraError(401, 'invalid_client', 700024, 'Client assertion is not within its valid time range.');
    }
    const accessToken = `entra-stand-in.${randomBytes(32).toString('base64url')}`;
    this.tokens.set(accessToken, { clientId, tenantId: tenant, subject: String(claims.sub), exp: now + 3599 });
    this.exchanges.push({ outcome: 'ok', clientId, subject: String(claims.sub) });
    return { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: accessToken };
  }

  /** Azure Resource Manager: the subscriptions list az login reads, for a token this stand-in issued. */
  private arm(authorization: string | undefined, url: URL, send: (status: number, json: unknown) => void) {
    const token = this.tokens.get((authorization ?? '').replace(/^Bearer /, ''));
    if (!token || token.exp <= this.now()) return send(401, { error: { code: 'InvalidAuthenticationToken', message: 'The access token is invalid.' } });
    if (url.pathname === '/subscriptions') {
      return send(200, {
        value: [
          {
            id: '/subscriptions/5f2c1e4a-0d3b-4c6e-9a8f-7b1d2e3f4a5b',
            subscriptionId: '5f2c1e4a-0d3b-4c6e-9a8f-7b1d2e3f4a5b',
            tenantId: token.tenantId,
            displayName: 'jenkins-oidc stand-in subscription',
            state: 'Enabled',
            subscriptionPolicies: { locationPlacementId: 'Public_2014-09-01', quotaId: 'PayAsYouGo_2014-09-01', spendingLimit: 'Off' },
            authorizationSource: 'RoleBased',
          },
        ],
      });
    }
    return send(404, { error: { code: 'NotFound', message: `stand-in: ${url.pathname}` } });
  }
}
