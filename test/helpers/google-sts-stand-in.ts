// A Google Security Token Service stand-in for the test suite: the token
// exchange and introspection endpoints gcloud and Google's client libraries
// call with an external_account credential, over HTTPS (test CA), deciding
// as Google documents Workload Identity Federation for OIDC providers.
// Sources: https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token,
// https://cloud.google.com/iam/docs/workload-identity-federation-with-other-providers
// (token requirements, allowed audiences, attribute mappings and conditions),
// https://cloud.google.com/iam/docs/workload-identity-federation#mapping
// (google.subject at most 127 bytes).
//
// 1. grant_type token-exchange, subject_token_type jwt or id_token,
//    requested_token_type access_token                 -> 400 invalid_request
// 2. audience //iam.googleapis.com/<provider name> of a provider registered
//    here (from `jenkins-oidc gcp setup --json`)       -> 400 invalid_target
// 3. the JWT: header kid and alg RS256 or ES256; signature by a key from the
//    issuer's discovery jwks_uri (fetched over HTTPS)  -> 400 invalid_grant
// 4. iss equals the provider's issuer URI; aud one of its allowed audiences
//    (default: https://iam.googleapis.com/<provider name>); exp in the future;
//    exp - iat under 24 hours                             -> 400 invalid_grant
// 5. attribute mapping (assertion.<claim> only, as generated); google.subject
//    at most 127 bytes                                     -> 400 invalid_request
// 6. attribute condition: CEL, here the subset the generator writes
//    (assertion.<claim> == '<text>' joined by &&)         -> 400 unauthorized_client
// Then an access token for principal://iam.googleapis.com/<pool>/subject/<sub>;
// introspection answers it (gcloud names the account from it).
import { randomBytes } from 'node:crypto';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { compactVerify, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import type { TestCa } from './test-ca.js';

export interface GcpProviderConfig {
  issuerUri: string;
  allowedAudiences: string[];
  attributeMapping: Record<string, string>;
  attributeCondition: string;
}

class GoogleError extends Error {
  constructor(readonly status: number, readonly error: string, readonly description: string) {
    super(description);
  }
}

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const DAY = 86400;

export class GoogleStsStandIn {
  url = '';
  clockOffsetSeconds = 0;
  readonly exchanges: { outcome: string; principal?: string }[] = [];
  private readonly providers = new Map<string, GcpProviderConfig>();
  private readonly tokens = new Map<string, { principal: string; exp: number; attributes: Record<string, string> }>();
  private server?: https.Server;
  private readonly idpAgent: https.Agent;

  constructor(private readonly ca: TestCa) {
    this.idpAgent = new https.Agent({ ca: ca.rootPem, keepAlive: false });
  }

  now(): number {
    return Math.floor(Date.now() / 1000) + this.clockOffsetSeconds;
  }

  addProvider(name: string, config: GcpProviderConfig): void {
    this.providers.set(name, config);
  }

  /** The principal and attributes an access token was issued for (as IAM would see them). */
  principalOf(accessToken: string) {
    return this.tokens.get(accessToken);
  }

  async start(): Promise<this> {
    this.server = https.createServer({ key: this.ca.serverKeyPem, cert: this.ca.serverChainPem }, (req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const form = new URLSearchParams(body);
        const answer = req.url === '/v1/token' ? this.exchange(form) : req.url === '/v1/introspect' ? this.introspect(form) : Promise.reject(new GoogleError(404, 'not_found', req.url ?? ''));
        answer
          .then((json) => {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(JSON.stringify(json));
          })
          .catch((err: unknown) => {
            const e = err instanceof GoogleError ? err : new GoogleError(500, 'server_error', (err as Error).message);
            if (req.url === '/v1/token') this.exchanges.push({ outcome: `${e.error}: ${e.description}` });
            res.writeHead(e.status, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ error: e.error, error_description: e.description }));
          });
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `https://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.idpAgent.destroy();
    await new Promise<void>((resolve) => {
      this.server?.close(() => resolve());
      this.server?.closeAllConnections();
    });
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

  private async exchange(form: URLSearchParams) {
    if (form.get('grant_type') !== TOKEN_EXCHANGE) throw new GoogleError(400, 'invalid_request', `Invalid value for "grant_type"`);
    const subjectType = form.get('subject_token_type');
    if (subjectType !== 'urn:ietf:params:oauth:token-type:jwt' && subjectType !== 'urn:ietf:params:oauth:token-type:id_token') {
      throw new GoogleError(400, 'invalid_request', 'Invalid value for "subject_token_type"');
    }
    const requested = form.get('requested_token_type');
    if (requested !== 'urn:ietf:params:oauth:token-type:access_token') throw new GoogleError(400, 'invalid_request', 'Invalid value for "requested_token_type"');
    const audience = form.get('audience') ?? '';
    const name = audience.replace(/^\/\/iam\.googleapis\.com\//, '');
    const provider = this.providers.get(name);
    if (!audience.startsWith('//iam.googleapis.com/') || !provider) throw new GoogleError(400, 'invalid_target', 'The target service indicated by the "audience" parameters is invalid.');
    const jwt = form.get('subject_token') ?? '';
    let claims: Record<string, unknown>;
    try {
      const header = decodeProtectedHeader(jwt);
      if (!header.kid) throw new Error('The JWT does not have a "kid" header.');
      if (header.alg !== 'RS256' && header.alg !== 'ES256') throw new Error(`Unsupported signing algorithm ${header.alg}.`);
      const discovery = (await this.fetchJson(`${provider.issuerUri}/.well-known/openid-configuration`)) as { jwks_uri: string };
      const jwks = ((await this.fetchJson(discovery.jwks_uri)) as { keys: JWK[] }).keys;
      const jwk = jwks.find((k) => k.kid === header.kid);
      if (!jwk) throw new Error('The JWT signature is invalid: no key with this kid.');
      const { payload } = await compactVerify(jwt, await importJWK(jwk, header.alg));
      claims = JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new GoogleError(400, 'invalid_grant', (err as Error).message);
    }
    if (claims.iss !== provider.issuerUri) throw new GoogleError(400, 'invalid_grant', `The issuer in ID Token ${String(claims.iss)} does not match the expected ones: ${provider.issuerUri}.`);
    const aud = Array.isArray(claims.aud) ? claims.aud.map(String) : [String(claims.aud)];
    if (!aud.some((a) => provider.allowedAudiences.includes(a))) throw new GoogleError(400, 'invalid_grant', 'The audience in ID Token does not match the expected audience.');
    const now = this.now();
    if (typeof claims.exp !== 'number' || claims.exp <= now) throw new GoogleError(400, 'invalid_grant', 'ID Token expired.');
    if (typeof claims.iat !== 'number' || claims.exp - claims.iat >= DAY) throw new GoogleError(400, 'invalid_grant', 'The ID Token lifetime must be less than 24 hours.');
    const attributes: Record<string, string> = {};
    for (const [attribute, expression] of Object.entries(provider.attributeMapping)) {
      const m = /^assertion\.([a-z_]+)$/.exec(expression);
      if (!m) throw new GoogleError(500, 'server_error', `stand-in: unsupported mapping ${expression}`);
      const value = claims[m[1]!];
      if (typeof value !== 'string') throw new GoogleError(400, 'invalid_request', `The mapped attribute ${attribute} is not a string.`);
      attributes[attribute] = value;
    }
    const subject = attributes['google.subject'] ?? '';
    if (Buffer.byteLength(subject) > 127) {
      throw new GoogleError(400, 'invalid_request', 'The size of mapped attribute google.subject exceeds the 127 bytes limit. Either modify your attribute mapping or the incoming assertion to produce a mapped attribute that is less than 127 bytes.');
    }
    if (!this.condition(provider.attributeCondition, claims)) throw new GoogleError(400, 'unauthorized_client', 'The given credential is rejected by the attribute condition.');
    const pool = name.replace(/\/providers\/[^/]+$/, '');
    const principal = `principal://iam.googleapis.com/${pool}/subject/${subject}`;
    const token = `ya29.${randomBytes(32).toString('base64url')}`;
    this.tokens.set(token, { principal, exp: now + 3600, attributes });
    this.exchanges.push({ outcome: 'ok', principal });
    return { access_token: token, issued_token_type: 'urn:ietf:params:oauth:token-type:access_token', token_type: 'Bearer', expires_in: 3600 };
  }

  /** The CEL the generator writes: assertion.<claim> == '<text>' terms joined by &&. */
  private condition(expression: string, claims: Record<string, unknown>): boolean {
    const terms = expression.split(' && ');
    return terms.every((term) => {
      const m = /^assertion\.([a-z_]+) == '((?:[^'\\]|\\.)*)'$/.exec(term);
      if (!m) throw new GoogleError(500, 'server_error', `stand-in: unsupported condition ${term}`);
      return claims[m[1]!] === m[2]!.replace(/\\(.)/g, '$1');
    });
  }

  private async introspect(form: URLSearchParams) {
    const t = this.tokens.get(form.get('token') ?? '');
    if (!t || t.exp <= this.now()) return { active: false };
    return { active: true, username: t.principal, exp: t.exp, token_type: 'Bearer' };
  }
}
