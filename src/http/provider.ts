// The one factory that turns the signing keys in the database into a running
// OIDC surface: an oidc-provider instance (token endpoint, client
// authentication, revocation, OAuth error format), the signer grants use, and
// the discovery document and JWKS rendered once into memory.
//
// Key rotation (a later issue) calls this again with the new key set and swaps
// the result into the app's OidcRuntimeHolder; requests in flight keep the
// runtime they started with.
import Provider, { errors, type Configuration, type KoaContextWithOIDC } from 'oidc-provider';
import { CONTROLLER_METADATA, secretMatch, type ControllerClient } from '../clients/authentication.js';
import { isAllowedSource } from '../clients/sources.js';
import { revocationPolicy } from './revocation.js';
import { ALL_CLAIMS } from '../claims/names.js';
import { BUILD_CLIENT_ID } from '../clients/validation.js';
import type { Config } from '../config.js';
import type { Metrics } from '../metrics/metrics.js';
import * as exchange from '../grants/exchange.js';
import type { GrantDeps } from '../grants/deps.js';
import * as mint from '../grants/mint.js';
import { AUDIT_EVENTS, markRecorded, wasRecorded, type AuditTrail } from '../audit/trail.js';
import type { LoadedKey } from '../signing-keys/keys.js';
import { LocalKeySigner, type Signer } from '../signing-keys/signer.js';
import { createAdapterFactory } from '../store/oidc-adapter.js';
import { answerIfDatabaseUnavailable } from './unavailable.js';
import { trustsProxies } from './client-address.js';
import type { Db } from '../store/prisma.js';

export interface OidcRuntime {
  provider: Provider;
  signer: Signer;
  /** Serialised once; served as-is from memory. */
  discoveryJson: string;
  jwksJson: string;
  kids: string[];
}

export interface RuntimeInput {
  config: Config;
  db: Db;
  keys: LoadedKey[];
  audit: AuditTrail;
  metrics?: Metrics;
  onServerError?: (err: unknown) => void;
  /** A request was answered 503 because the database is out of reach; `cause` is short and fixed. */
  onDatabaseUnavailable?: (cause: string) => void;
}

/** Swappable reference to the current runtime (see key rotation). */
export class OidcRuntimeHolder {
  constructor(public current: OidcRuntime) {}
}

export const PATHS = {
  discovery: '/.well-known/openid-configuration',
  jwks: '/jwks',
  token: '/token',
  revocation: '/token/revocation',
  idToken: '/id-token',
} as const;

/**
 * The refusal for a right secret from a wrong address: 401 invalid_client,
 * like a wrong secret, so a thief learns nothing more; the description names
 * the address the service saw, which is what a controller's admin needs when
 * a NAT or proxy changed it. (oidc-provider stays out of clients/: the CLI
 * imports that folder, and oidc-provider prints a warning when loaded.)
 */
function sourceRefused(client: string, address: string | undefined): errors.OIDCProviderError {
  const err = new errors.CustomOIDCProviderError(
    'invalid_client',
    `client "${client}" may not be used from ${address || 'this address'}: it is not among the client's allowed sources (jenkins-oidc clients update ${client} --allowed-sources ...)`,
  );
  err.status = 401;
  err.statusCode = 401;
  return err;
}

/** Sent to clients on every 4xx/5xx from oidc-provider: JSON, never its HTML error page. */
function renderJsonError(ctx: KoaContextWithOIDC, out: { error: string; error_description?: string }): void {
  ctx.type = 'application/json';
  ctx.body = out;
}

export async function createOidcRuntime({ config, db, keys, audit, metrics, onServerError, onDatabaseUnavailable }: RuntimeInput): Promise<OidcRuntime> {
  const active = keys.find((k) => k.status === 'active');
  if (!active) throw new Error('no active signing key: run `jenkins-oidc migrate` and start the service once to create one');
  const signer = await LocalKeySigner.create(active.kid, active.alg, active.privateKey);
  const published = keys.map((k) => k.publicJwk);

  const configuration: Configuration = {
    adapter: createAdapterFactory(db),
    clients: [
      {
        client_id: BUILD_CLIENT_ID,
        token_endpoint_auth_method: 'none',
        grant_types: [exchange.grantType],
        response_types: [],
        redirect_uris: [],
      },
    ],
    // oidc-provider signs nothing itself here (our grants sign through the
    // Signer), but it wants a keystore; it gets the same private keys.
    jwks: { keys: keys.map((k) => ({ ...(k.privateKey.export({ format: 'jwk' }) as object), kid: k.kid, alg: k.alg, use: 'sig' })) } as Configuration['jwks'],
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'none'],
    // oidc-provider validates every client's id_token_signed_response_alg
    // against the keys it holds; with only ES256 keys its RS256 default would
    // make every client invalid. (Our grants sign with the Signer either way.)
    clientDefaults: { grant_types: [], response_types: [], token_endpoint_auth_method: 'client_secret_basic', id_token_signed_response_alg: active.alg },
    extraClientMetadata: { properties: [...CONTROLLER_METADATA] },
    responseTypes: ['none'],
    scopes: ['openid'],
    claims: { openid: ['sub'] },
    findAccount: async () => undefined,
    renderError: renderJsonError as Configuration['renderError'],
    features: {
      devInteractions: { enabled: false },
      dPoP: { enabled: false },
      rpInitiatedLogout: { enabled: false },
      pushedAuthorizationRequests: { enabled: false },
      resourceIndicators: { enabled: false },
      userinfo: { enabled: false },
      introspection: { enabled: false },
      registration: { enabled: false },
      clientCredentials: { enabled: false },
      revocation: { enabled: true, allowedPolicy: revocationPolicy(db) as never },
    },
    enabledJWA: { idTokenSigningAlgValues: ['RS256', 'ES256'] },
    clockTolerance: 5,
  };

  const provider = new Provider(config.issuer, configuration);
  provider.proxy = trustsProxies(config.trustProxy);

  // Client secrets are stored as SHA-256 (client_secret holds that hash), so
  // the comparison hashes the presented secret first, in constant time; the
  // previous secret counts during a rotation's overlap. A right secret from an
  // address outside the client's allowed sources is refused here, for every
  // endpoint that authenticates a controller (mint and revocation alike), and
  // counted in the audit trail per client, address and minute.
  provider.Client.prototype.compareClientSecret = async function compareHashedSecret(this: ControllerClient, actual: string) {
    const which = secretMatch(this, actual);
    if (!which) return false;
    const ctx = Provider.ctx as KoaContextWithOIDC | undefined;
    if (!isAllowedSource(this.allowed_sources, ctx?.ip)) {
      const err = sourceRefused(this.clientId, ctx?.ip);
      await audit.refuse({
        event: ctx?.path.endsWith(PATHS.revocation) ? AUDIT_EVENTS.revocationRefused : AUDIT_EVENTS.tokenRefused,
        authenticated: true,
        error: err.error,
        description: err.error_description!,
        clientName: this.clientId,
        remoteAddr: ctx?.ip,
      });
      throw markRecorded(err);
    }
    if (ctx) ctx.state.clientSecret = which;
    return true;
  };

  const deps: GrantDeps = { config, db, audit, metrics, signer: () => signer };
  provider.registerGrantType(mint.grantType, mint.handler(deps), [...mint.parameters], [...mint.allowDuplicates]);
  provider.registerGrantType(exchange.grantType, exchange.handler(deps), [...exchange.parameters]);
  // oidc-provider has already set 500 "oops! something went wrong" when it
  // emits this, synchronously, before the response is sent: a database that is
  // out of reach becomes 503 temporarily_unavailable here instead.
  provider.on('server_error', (ctx: KoaContextWithOIDC, err: unknown) => {
    const cause = answerIfDatabaseUnavailable(ctx, err);
    if (cause) onDatabaseUnavailable?.(cause);
    else onServerError?.(err);
  });
  // Refusals our grants did not already record (client authentication,
  // unsupported grant types, duplicated parameters...) still reach the audit
  // trail. The events are synchronous: the write is handed to the trail, and
  // the app awaits it before the answer goes out (app.ts, delegateToProvider).
  for (const event of ['grant.error', 'revocation.error'] as const) {
    // (typed loosely: @types/oidc-provider does not list these two events)
    provider.on(event as never, ((ctx: KoaContextWithOIDC, err: errors.OIDCProviderError) => {
      if (wasRecorded(err)) return;
      const client = ctx.oidc?.client?.clientId;
      // Only a controller whose secret checked out has proved who it is.
      const authenticated = client !== undefined && client !== BUILD_CLIENT_ID && err.error !== 'invalid_client';
      audit.track(ctx, audit.refuse({
        event: event === 'grant.error' ? AUDIT_EVENTS.tokenRefused : AUDIT_EVENTS.revocationRefused,
        authenticated,
        error: err.error ?? 'server_error',
        description: err.error_description ?? 'unexpected error',
        clientName: authenticated ? client : undefined,
        remoteAddr: ctx.ip,
      }));
    }) as never);
  }

  const discovery = {
    issuer: config.issuer,
    jwks_uri: `${config.issuer}${PATHS.jwks}`,
    token_endpoint: `${config.issuer}${PATHS.token}`,
    revocation_endpoint: `${config.issuer}${PATHS.revocation}`,
    grant_types_supported: [mint.grantType, exchange.grantType],
    response_types_supported: ['id_token'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: [...new Set(keys.map((k) => k.alg))],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
    revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
    scopes_supported: ['openid'],
    claims_supported: ALL_CLAIMS,
  };

  return {
    provider,
    signer,
    discoveryJson: JSON.stringify(discovery),
    jwksJson: JSON.stringify({ keys: published }),
    kids: keys.map((k) => k.kid),
  };
}
