// A controller as oidc-provider hands it to our grants and revocation policy
// after client authentication, and how its secret is checked.
//
// Secrets are stored as SHA-256 (client_secret in the metadata holds the
// hash). After `clients rotate-secret --overlap`, the previous secret's hash
// is accepted too until the overlap ends, so a controller can be given the new
// secret without a window in which its builds get no token. Which of the two
// a request used is recorded in its audit row.
import { matchesHash } from '../secrets/bearer-secrets.js';
import type { BuildClaimName } from '../claims/names.js';
import type { ClaimTypes } from '../claims/build-claims.js';

/** The client record's fields, carried on oidc-provider's Client as extra metadata (kept snake_case by it). */
export interface ControllerClient {
  clientId: string;
  /** SHA-256 of the current secret. */
  clientSecret: string;
  jenkins_url: string;
  allowed_audiences: string[];
  sub_claims: BuildClaimName[];
  sub_template?: string;
  claim_types: ClaimTypes;
  max_request_token_ttl: number;
  session_tag_claims?: BuildClaimName[];
  transitive_tag_keys?: BuildClaimName[];
  source_identity?: string;
  allowed_sources?: string[];
  previous_secret_hash?: string;
  /** Epoch seconds after which the previous secret is refused. */
  previous_secret_expires_at?: number;
}

/** The metadata names oidc-provider must carry besides its own (extraClientMetadata.properties). */
export const CONTROLLER_METADATA = [
  'jenkins_url',
  'allowed_audiences',
  'sub_claims',
  'sub_template',
  'claim_types',
  'max_request_token_ttl',
  'session_tag_claims',
  'transitive_tag_keys',
  'source_identity',
  'allowed_sources',
  'previous_secret_hash',
  'previous_secret_expires_at',
] as const;

type SecretHolder = Pick<ControllerClient, 'clientSecret' | 'previous_secret_hash' | 'previous_secret_expires_at'>;

function previousStillValid(client: SecretHolder, now: number): boolean {
  return typeof client.previous_secret_hash === 'string' && typeof client.previous_secret_expires_at === 'number' && now < client.previous_secret_expires_at * 1000;
}

/**
 * Which of a controller's secrets `presented` is: the current one, or the
 * previous one while its overlap lasts; undefined for neither. Both hashes are
 * compared in constant time whenever both exist, so timing tells nothing.
 */
export function secretMatch(client: SecretHolder, presented: string, now = Date.now()): 'current' | 'previous' | undefined {
  if (typeof client.clientSecret !== 'string') return undefined;
  const current = matchesHash(presented, client.clientSecret);
  const previous = previousStillValid(client, now) && matchesHash(presented, client.previous_secret_hash!);
  return current ? 'current' : previous ? 'previous' : undefined;
}
