// A HashiCorp Vault stand-in for the test suite: the JWT auth method and the
// token endpoints a build uses, over Vault's HTTP API (JSON bodies, errors as
// {"errors": [...]}), so that Vault's own Python client (hvac) and the agent
// talk to it as to Vault. It is configured only through the API, with the
// bodies `jenkins-oidc vault setup --json` prints, and decides as Vault
// documents it. Sources: the API docs
// https://developer.hashicorp.com/vault/api-docs/auth/jwt (config, role,
// login), https://developer.hashicorp.com/vault/docs/auth/jwt (bound claims,
// claim mappings), https://developer.hashicorp.com/vault/api-docs/auth/token
// (lookup-self, revoke-self), and the plugin's source
// hashicorp/vault-plugin-auth-jwt (path_config.go, path_role.go,
// path_login.go, claims.go) for the answers' wording.
//
// config (POST auth/<path>/config, root token):
// 1. exactly one of oidc_discovery_url, jwks_url, jwt_validation_pubkeys
//                                                    (api-docs: "One (and only one)")
// 2. the discovery document is fetched when the config is written, over
//    HTTPS trusting only the test CA here, and its issuer must equal the URL
//    (go-oidc's NewProvider check)                   -> 400 "error checking oidc discovery URL"
// role (POST auth/<path>/role/<name>, root token):
// 3. role_type defaults to "oidc", which needs allowed_redirect_uris
//                                                    (api-docs, path_role.go)
// 4. user_claim is required                          ("a user claim must be defined on the role")
// 5. a jwt role needs at least one bound constraint (bound_audiences,
//    bound_subject, bound_claims, token_bound_cidrs) (path_role.go)
// 6. bound_claims_type is string or glob; bound_claims values strings or lists of strings
// login (POST auth/<path>/login {role, jwt}, no token):
// 7. the role exists and is a jwt role               -> 400
// 8. signature by a key of the discovered JWKS, header alg among
//    jwt_supported_algs (all asymmetric ones when unset, for jwt roles)
//                                                    -> 400 "error validating token: ..."
// 9. iss equals bound_issuer when set (never compared otherwise: the reason
//    the generator sets it); aud contains one of bound_audiences, and a
//    token with aud needs bound_audiences           -> 400
// 10. exp + expiration_leeway (150 s) + clock_skew_leeway (60 s) not passed,
//     nbf - not_before_leeway (150 s) - clock_skew_leeway not in the future
//     (role defaults, api-docs)                       -> 400 "... token is expired (exp)"
// 11. bound_claims: the claim must be a string (or list of strings) equal
//     to, or for glob matching (* any characters, "/" included), one of the
//     values                                          -> 400 "error validating claims: ..."
// 12. user_claim present and a string                -> 400
// 13. claim_mappings: each claim present must be a string
//                                                    -> 400 "error converting claim 'X' to string"
// Then a service token with the role's token_policies (plus "default"),
// token_ttl, and metadata from claim_mappings plus role.
// tokens: lookup-self answers the token's data; revoke-self (204) ends it;
// an unknown, expired or revoked token is 403 "permission denied".
//
// The stand-in's clock can be moved forward (expired tokens without waiting).
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { compactVerify, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import type { TestCa } from './test-ca.js';

class VaultError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

interface Role {
  role_type: string;
  bound_audiences: string[];
  bound_subject?: string;
  bound_claims: Record<string, string[]>;
  bound_claims_type: 'string' | 'glob';
  user_claim: string;
  claim_mappings: Record<string, string>;
  token_policies: string[];
  token_ttl: number;
}

interface Mount {
  config?: { issuerUrl: string; boundIssuer?: string; algs: string[]; jwks: JWK[] };
  roles: Map<string, Role>;
}

interface VaultToken {
  accessor: string;
  policies: string[];
  meta: Record<string, string>;
  expiresAt: number;
  displayName: string;
}

export interface LoginRecord {
  role: string;
  outcome: string;
  claims?: Record<string, unknown>;
}

const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'ES256', 'ES384', 'ES512', 'PS256', 'PS384', 'PS512', 'EdDSA'];
const EXPIRATION_LEEWAY = 150;
const NOT_BEFORE_LEEWAY = 150;
const CLOCK_SKEW_LEEWAY = 60;

const list = (v: unknown): string[] => (v === undefined ? [] : Array.isArray(v) ? v.map(String) : String(v).split(',').map((s) => s.trim()).filter(Boolean));

/** Vault's glob (go-glob): "*" matches any run of characters, "/" included; nothing else is special. */
function globMatch(pattern: string, value: string): boolean {
  const re = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[\\s\\S]*');
  return new RegExp(`^${re}$`).test(value);
}

export class VaultStandIn {
  readonly rootToken = `hvs.root${randomBytes(8).toString('hex')}`;
  readonly logins: LoginRecord[] = [];
  clockOffsetSeconds = 0;
  /** The stand-in's clock stopped at this second: a test of a boundary needs the exact second, not a race with its client's start-up. */
  frozenAt: number | undefined;
  private server?: http.Server;
  private readonly mounts = new Map<string, Mount>();
  private readonly tokens = new Map<string, VaultToken>();
  private readonly idpAgent: https.Agent;
  url = '';

  constructor(ca: TestCa) {
    this.idpAgent = new https.Agent({ ca: ca.rootPem, keepAlive: false });
  }

  now(): number {
    if (this.frozenAt !== undefined) return this.frozenAt;
    return Math.floor(Date.now() / 1000) + this.clockOffsetSeconds;
  }

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        this.handle(req, body)
          .then(({ status, json }) => {
            res.writeHead(status, { 'content-type': 'application/json' });
            res.end(json === undefined ? '' : JSON.stringify(json));
          })
          .catch((err: unknown) => {
            const e = err instanceof VaultError ? err : new VaultError(500, `internal error: ${(err as Error).message}`);
            res.writeHead(e.status, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ errors: [e.message] }));
          });
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server!.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
    this.idpAgent.destroy();
  }

  private root(req: http.IncomingMessage): void {
    if (req.headers['x-vault-token'] !== this.rootToken) throw new VaultError(403, 'permission denied');
  }

  private mount(path: string): Mount {
    const m = this.mounts.get(path);
    if (!m) throw new VaultError(404, `no handler for route "auth/${path}". route entry not found.`);
    return m;
  }

  private async handle(req: http.IncomingMessage, raw: string): Promise<{ status: number; json?: unknown }> {
    const url = new URL(req.url ?? '/', 'http://vault');
    const method = req.method === 'PUT' ? 'POST' : req.method;
    let body: Record<string, unknown> = {};
    if (raw) {
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        throw new VaultError(400, 'failed to parse JSON input');
      }
    }
    const p = url.pathname;
    let m: RegExpExecArray | null;
    if (method === 'POST' && (m = /^\/v1\/sys\/auth\/(.+)$/.exec(p))) {
      this.root(req);
      if (body.type !== 'jwt') throw new VaultError(400, `this stand-in mounts only jwt, got ${String(body.type)}`);
      if (this.mounts.has(m[1]!)) throw new VaultError(400, `path is already in use at ${m[1]}/`);
      this.mounts.set(m[1]!, { roles: new Map() });
      return { status: 204 };
    }
    if (p === '/v1/auth/token/lookup-self' && method === 'GET') return { status: 200, json: { data: this.lookup(req) } };
    if (p === '/v1/auth/token/revoke-self' && method === 'POST') {
      this.lookup(req);
      this.tokens.delete(String(req.headers['x-vault-token']));
      return { status: 204 };
    }
    if (method === 'POST' && (m = /^\/v1\/auth\/(.+)\/config$/.exec(p))) {
      this.root(req);
      await this.writeConfig(this.mount(m[1]!), body);
      return { status: 204 };
    }
    if (method === 'POST' && (m = /^\/v1\/auth\/(.+)\/role\/([^/]+)$/.exec(p))) {
      this.root(req);
      this.mount(m[1]!).roles.set(m[2]!, this.parseRole(body));
      return { status: 204 };
    }
    if (method === 'POST' && (m = /^\/v1\/auth\/(.+)\/login$/.exec(p))) {
      const roleName = String(body.role ?? '');
      try {
        const auth = await this.login(this.mount(m[1]!), roleName, String(body.jwt ?? ''));
        return { status: 200, json: { request_id: randomBytes(8).toString('hex'), lease_id: '', renewable: false, lease_duration: 0, data: null, wrap_info: null, warnings: null, auth } };
      } catch (err) {
        this.logins.push({ role: roleName, outcome: (err as Error).message });
        throw err;
      }
    }
    throw new VaultError(404, `no handler for route "${p.replace(/^\/v1\//, '')}"`);
  }

  private lookup(req: http.IncomingMessage) {
    const id = String(req.headers['x-vault-token'] ?? '');
    const t = this.tokens.get(id);
    if (!t || t.expiresAt <= this.now()) throw new VaultError(403, 'permission denied');
    return { accessor: t.accessor, policies: t.policies, meta: t.meta, display_name: t.displayName, ttl: t.expiresAt - this.now(), type: 'service', orphan: true, renewable: true };
  }

  private async fetchJson(url: string): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const req = https.get(url, { agent: this.idpAgent, timeout: 5000 }, (res) => {
        let data = '';
        res.on('data', (c) => (data += c));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`${url}: HTTP ${res.statusCode}`));
          try {
            resolve(JSON.parse(data));
          } catch {
            reject(new Error(`${url}: not JSON`));
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${url}: timeout`)));
      req.on('error', reject);
    });
  }

  private async writeConfig(mount: Mount, body: Record<string, unknown>): Promise<void> {
    const sources = ['oidc_discovery_url', 'jwks_url', 'jwt_validation_pubkeys'].filter((k) => body[k] !== undefined && body[k] !== '');
    if (sources.length !== 1) throw new VaultError(400, 'exactly one of \'jwt_validation_pubkeys\', \'jwks_url\' or \'oidc_discovery_url\' must be set');
    if (sources[0] !== 'oidc_discovery_url') throw new VaultError(400, 'this stand-in implements oidc_discovery_url only');
    const issuerUrl = String(body.oidc_discovery_url);
    let jwks: JWK[];
    try {
      const discovery = (await this.fetchJson(`${issuerUrl.replace(/\/$/, '')}/.well-known/openid-configuration`)) as { issuer?: string; jwks_uri?: string };
      if (discovery.issuer !== issuerUrl) throw new Error(`oidc: issuer did not match the issuer returned by provider, expected "${issuerUrl}" got "${discovery.issuer}"`);
      jwks = ((await this.fetchJson(String(discovery.jwks_uri))) as { keys: JWK[] }).keys;
    } catch (err) {
      throw new VaultError(400, `error checking oidc discovery URL: ${(err as Error).message}`);
    }
    const algs = list(body.jwt_supported_algs);
    for (const alg of algs) if (!ASYMMETRIC.includes(alg)) throw new VaultError(400, `invalid jwt_supported_algs: ${alg}`);
    mount.config = { issuerUrl, boundIssuer: body.bound_issuer ? String(body.bound_issuer) : undefined, algs, jwks };
  }

  private parseRole(body: Record<string, unknown>): Role {
    const roleType = String(body.role_type ?? 'oidc');
    if (roleType === 'oidc' && list(body.allowed_redirect_uris).length === 0) {
      throw new VaultError(400, "'allowed_redirect_uris' must be set if 'role_type' is 'oidc' or unspecified.");
    }
    if (roleType !== 'jwt' && roleType !== 'oidc') throw new VaultError(400, `invalid 'role_type': ${roleType}`);
    if (!body.user_claim) throw new VaultError(400, 'a user claim must be defined on the role');
    const boundClaims: Record<string, string[]> = {};
    for (const [k, v] of Object.entries((body.bound_claims ?? {}) as Record<string, unknown>)) {
      const values = Array.isArray(v) ? v : [v];
      if (!values.every((x) => typeof x === 'string')) throw new VaultError(400, `bound claim is not a string or list: ${JSON.stringify(v)}`);
      boundClaims[k] = values as string[];
    }
    const type = String(body.bound_claims_type ?? 'string');
    if (type !== 'string' && type !== 'glob') throw new VaultError(400, `invalid 'bound_claims_type': ${type}`);
    const role: Role = {
      role_type: roleType,
      bound_audiences: list(body.bound_audiences),
      bound_subject: body.bound_subject ? String(body.bound_subject) : undefined,
      bound_claims: boundClaims,
      bound_claims_type: type,
      user_claim: String(body.user_claim),
      claim_mappings: (body.claim_mappings ?? {}) as Record<string, string>,
      token_policies: list(body.token_policies ?? body.policies),
      token_ttl: Number(body.token_ttl ?? 2764800),
    };
    if (roleType === 'jwt' && !role.bound_audiences.length && !role.bound_subject && !Object.keys(boundClaims).length && !list(body.token_bound_cidrs).length) {
      throw new VaultError(400, 'must have at least one bound constraint when creating/updating a role');
    }
    return role;
  }

  private async login(mount: Mount, roleName: string, jwt: string) {
    const role = mount.roles.get(roleName);
    if (!role) throw new VaultError(400, `role "${roleName}" could not be found`);
    if (role.role_type !== 'jwt') throw new VaultError(400, `role with oidc role_type is not allowed`);
    const config = mount.config;
    if (!config) throw new VaultError(400, 'could not load configuration');
    let claims: Record<string, unknown>;
    try {
      const header = decodeProtectedHeader(jwt);
      const algs = config.algs.length ? config.algs : ASYMMETRIC;
      if (!header.alg || !algs.includes(header.alg)) throw new Error(`unsupported signing algorithm "${header.alg}"`);
      const jwk = config.jwks.find((k) => k.kid === header.kid);
      if (!jwk) throw new Error('failed to verify id token signature');
      const { payload } = await compactVerify(jwt, await importJWK(jwk, header.alg));
      claims = JSON.parse(Buffer.from(payload).toString('utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new VaultError(400, `error validating token: ${(err as Error).message}`);
    }
    const now = this.now();
    if (config.boundIssuer !== undefined && claims.iss !== config.boundIssuer) throw new VaultError(400, 'error validating token: invalid issuer (iss) claim');
    const aud = list(claims.aud);
    if (role.bound_audiences.length) {
      if (!aud.some((a) => role.bound_audiences.includes(a))) throw new VaultError(400, 'error validating token: invalid audience (aud) claim: audience claim does not match any expected audience');
    } else if (aud.length) {
      throw new VaultError(400, 'audience claim found in JWT but no audiences bound to the role');
    }
    if (typeof claims.exp === 'number' && now > claims.exp + EXPIRATION_LEEWAY + CLOCK_SKEW_LEEWAY) throw new VaultError(400, 'error validating token: token is expired (exp)');
    if (typeof claims.nbf === 'number' && now < claims.nbf - NOT_BEFORE_LEEWAY - CLOCK_SKEW_LEEWAY) throw new VaultError(400, 'error validating token: token not valid yet (nbf)');
    if (role.bound_subject !== undefined && claims.sub !== role.bound_subject) throw new VaultError(400, 'error validating token: invalid subject (sub) claim');
    for (const [claim, expected] of Object.entries(role.bound_claims)) {
      const actual = claims[claim];
      const values = typeof actual === 'string' ? [actual] : Array.isArray(actual) && actual.every((v) => typeof v === 'string') ? (actual as string[]) : undefined;
      if (actual === undefined) throw new VaultError(400, `error validating claims: claim "${claim}" is missing`);
      if (!values) throw new VaultError(400, `error validating claims: received claim is not a string or list: ${JSON.stringify(actual)}`);
      const match = values.some((v) => expected.some((e) => (role.bound_claims_type === 'glob' ? globMatch(e, v) : e === v)));
      if (!match) throw new VaultError(400, `error validating claims: claim "${claim}" does not match any associated bound claim values`);
    }
    const user = claims[role.user_claim];
    if (user === undefined) throw new VaultError(400, `claim "${role.user_claim}" not found in token`);
    if (typeof user !== 'string') throw new VaultError(400, `claim "${role.user_claim}" could not be converted to string`);
    const meta: Record<string, string> = {};
    for (const [claim, name] of Object.entries(role.claim_mappings)) {
      const value = claims[claim];
      if (value === undefined) continue;
      if (typeof value !== 'string') throw new VaultError(400, `error converting claim '${claim}' to string`);
      meta[name] = value;
    }
    meta.role = roleName;
    const token = `hvs.${randomBytes(24).toString('base64url')}`;
    const policies = ['default', ...role.token_policies.filter((p) => p !== 'default')];
    this.tokens.set(token, { accessor: randomBytes(12).toString('base64url'), policies, meta, expiresAt: now + role.token_ttl, displayName: `jwt-${user}` });
    this.logins.push({ role: roleName, outcome: 'ok', claims });
    return {
      client_token: token,
      accessor: this.tokens.get(token)!.accessor,
      policies,
      token_policies: policies,
      metadata: meta,
      lease_duration: role.token_ttl,
      renewable: true,
      entity_id: randomBytes(8).toString('hex'),
      token_type: 'service',
      orphan: true,
    };
  }
}
