// The Vault side of the trust: the JWT auth method's config and a role that
// admits the ID tokens of chosen Jenkins jobs, as `vault` CLI commands and as
// the JSON bodies of the same API calls (the attribute names of Terraform's
// vault_jwt_auth_backend and vault_jwt_auth_backend_role).
//
// What Vault needs that AWS does not
// (https://developer.hashicorp.com/vault/api-docs/auth/jwt,
//  https://developer.hashicorp.com/vault/docs/auth/jwt):
// - bound_issuer beside oidc_discovery_url: without it Vault never compares
//   a token's iss (discovery only finds the keys), so any issuer sharing a
//   key set would pass.
// - role_type=jwt: the default is "oidc" (a browser login), which a build's
//   token cannot use.
// - a role must have at least one bound constraint; this generator always
//   binds aud (bound_audiences) and the controller (bound_claims
//   jenkins_instance), so a role can never admit another controller's builds.
// - bound_claims and claim_mappings compare and copy strings: a number claim
//   fails the login ("error converting claim ... to string"), so a client
//   whose claim_types is json cannot bind or map build_number,
//   restarted_from or replayed.
// - bound_claims_type glob: "*" matches any characters, "/" included, as
//   IAM's StringLike does; the same warnings apply.
import { BUILD_CLAIMS, isBuildClaim, type BuildClaimName } from '../claims/names.js';
import { InputError, checkUrl } from '../claims/text.js';
import type { ClientView } from '../clients/commands.js';

export type VaultClient = Pick<ClientView, 'name' | 'audiences' | 'claimTypes' | 'subTemplate'>;

/** Claims that are a number or a boolean unless the client's claim_types is string. */
const TYPED_CLAIMS: readonly BuildClaimName[] = ['build_number', 'restarted_from', 'replayed'];

export interface VaultSetupInput {
  issuer: string;
  client: VaultClient;
  /** The mount path of the JWT auth method (default jwt). */
  path: string;
  role: string;
  audience: string;
  /** --bound-claim key=value, repeatable; one key several times: any of the values. */
  boundClaims: string[];
  /** Claims copied into the token's metadata (and audit log), e.g. job, build_number. */
  claimMappings: string[];
  policies: string[];
  /** Vault token lifetime in seconds. */
  tokenTtl: number;
  userClaim: BuildClaimName | 'sub';
}

export interface VaultAuthConfig {
  oidc_discovery_url: string;
  bound_issuer: string;
  jwt_supported_algs: string[];
}

/**
 * The algorithms this service signs with (SIGNING_ALG). Vault accepts every
 * algorithm for jwt roles when jwt_supported_algs is unset (RS256 only for
 * oidc roles); naming ours keeps a key rotation to ES256 working and refuses
 * anything else.
 */
export const SERVICE_SIGNING_ALGS = ['RS256', 'ES256'];

export interface VaultRole {
  role_type: 'jwt';
  bound_audiences: string[];
  bound_claims_type: 'string' | 'glob';
  bound_claims: Record<string, string | string[]>;
  user_claim: string;
  claim_mappings: Record<string, string>;
  token_policies: string[];
  token_ttl: number;
  token_max_ttl: number;
  token_type: 'service';
}

export interface VaultSetup {
  path: string;
  config: VaultAuthConfig;
  role: { name: string; body: VaultRole };
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

export function checkVaultName(field: string, value: string): string {
  if (!NAME.test(value)) throw new InputError(field, `must be 1-128 letters, digits and _ . - starting with a letter or digit, got "${value}"`);
  return value;
}

export function checkMountPath(value: string): string {
  if (!/^[A-Za-z0-9_-]+(\/[A-Za-z0-9_-]+)*$/.test(value)) throw new InputError('--path', `must be a Vault mount path such as jwt or ci/jenkins, got "${value}"`);
  return value;
}

/** A claim a Vault role can bind or map for this client: a build claim whose value is a string. */
function checkStringClaim(field: string, claim: string, client: VaultClient): BuildClaimName | 'sub' {
  if (claim === 'sub') return 'sub';
  if (!isBuildClaim(claim)) throw new InputError(field, `"${claim}" is not a claim of these tokens; choose sub or one of ${BUILD_CLAIMS.join(', ')}`);
  if (client.claimTypes === 'json' && TYPED_CLAIMS.includes(claim)) {
    throw new InputError(
      field,
      `${claim} is a JSON ${claim === 'replayed' ? 'boolean' : 'number'} in client ${client.name}'s tokens, and Vault fails the login on a claim that is not a string; ` +
        `switch the client to string claims first: jenkins-oidc clients update ${client.name} --claim-types string`,
    );
  }
  return claim;
}

/** bound_claims from key=value flags; the controller is always bound, exactly. */
function boundClaims(flags: string[], client: VaultClient): { claims: Record<string, string | string[]>; glob: boolean; warnings: string[] } {
  const values = new Map<string, string[]>();
  for (const flag of flags) {
    const at = flag.indexOf('=');
    if (at <= 0) throw new InputError('--bound-claim', `must be claim=value, such as job=team/app/main, got "${flag}"`);
    const claim = checkStringClaim('--bound-claim', flag.slice(0, at), client);
    const value = flag.slice(at + 1);
    if (value === '') throw new InputError('--bound-claim', `${claim} has no value`);
    values.set(claim, [...(values.get(claim) ?? []), value]);
  }
  const instance = values.get('jenkins_instance');
  if (instance && (instance.length !== 1 || instance[0] !== client.name)) {
    throw new InputError('--bound-claim', `jenkins_instance must be this controller, ${client.name}, exactly; a role for another controller's builds is made with --client`);
  }
  values.delete('jenkins_instance');
  if (values.size === 0) {
    throw new InputError('--bound-claim', `give at least one, such as --bound-claim job=team/app/main: bound to the controller alone, the role would admit every job of ${client.name}`);
  }
  const glob = [...values.values()].flat().some((v) => v.includes('*'));
  const warnings: string[] = [];
  for (const [claim, list] of values) {
    for (const value of list) {
      const star = value.indexOf('*');
      if (star > 0 && value[star - 1] !== '/' && claim === 'job') {
        warnings.push(`job=${value}: * matches any characters, "/" included, so it admits every job whose name starts with "${value.slice(0, star)}"; end it at a separator (${value.slice(0, star)}/*) or name the job exactly`);
      }
      if (/^\*+$/.test(value)) warnings.push(`${claim}=${value} admits any value; leave it out instead`);
    }
  }
  if (glob && client.name.includes('*')) throw new InputError('--client', 'a controller name with * cannot be bound exactly in a glob role');
  const claims: Record<string, string | string[]> = { jenkins_instance: client.name };
  for (const [claim, list] of values) claims[claim] = list.length === 1 ? list[0]! : list;
  return { claims, glob, warnings };
}

export function vaultSetup(input: VaultSetupInput): { setup: VaultSetup; warnings: string[] } {
  const issuer = checkUrl('ISSUER', input.issuer).href.replace(/\/$/, '');
  if (!input.client.audiences.includes(input.audience)) {
    throw new InputError('--audience', `"${input.audience}" is not an audience of client ${input.client.name} (${input.client.audiences.join(', ')}); add it: jenkins-oidc clients update ${input.client.name} --audience ${[...input.client.audiences, input.audience].join(',')}`);
  }
  const { claims, glob, warnings } = boundClaims(input.boundClaims, input.client);
  const mappings: Record<string, string> = {};
  for (const claim of input.claimMappings) mappings[checkStringClaim('--claim-mapping', claim, input.client)] = claim;
  const userClaim = checkStringClaim('--user-claim', input.userClaim, input.client);
  if (input.policies.length === 0) throw new InputError('--policy', 'give at least one Vault policy the build\'s token gets');
  for (const policy of input.policies) checkVaultName('--policy', policy);
  if (!Number.isInteger(input.tokenTtl) || input.tokenTtl < 60 || input.tokenTtl > 86400) {
    throw new InputError('--token-ttl', `must be 60 s to 24 h, got ${input.tokenTtl}`);
  }
  return {
    setup: {
      path: checkMountPath(input.path),
      config: { oidc_discovery_url: issuer, bound_issuer: issuer, jwt_supported_algs: SERVICE_SIGNING_ALGS },
      role: {
        name: checkVaultName('--role', input.role),
        body: {
          role_type: 'jwt',
          bound_audiences: [input.audience],
          bound_claims_type: glob ? 'glob' : 'string',
          bound_claims: claims,
          user_claim: userClaim,
          claim_mappings: mappings,
          token_policies: input.policies,
          token_ttl: input.tokenTtl,
          // A build's Vault token cannot be renewed past its first lifetime:
          // the agent logs in again with a fresh ID token instead.
          token_max_ttl: input.tokenTtl,
          token_type: 'service',
        },
      },
    },
    warnings,
  };
}

function shellQuote(value: string): string {
  return /^[A-Za-z0-9_./:=@,+-]+$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

/** The same setup as `vault` CLI commands (run with a token allowed to manage auth methods). */
export function vaultCommands(setup: VaultSetup): string {
  const { path, config, role } = setup;
  return [
    `# once per Vault: the JWT auth method at auth/${path}, trusting this issuer's keys and only its iss`,
    `vault auth enable -path=${shellQuote(path)} jwt`,
    `vault write auth/${path}/config oidc_discovery_url=${shellQuote(config.oidc_discovery_url)} bound_issuer=${shellQuote(config.bound_issuer)} jwt_supported_algs=${config.jwt_supported_algs.join(',')}`,
    '',
    `# the role builds log in with (jenkins-oidc-agent vault-login --role ${role.name})`,
    `vault write auth/${path}/role/${shellQuote(role.name)} - <<'JSON'`,
    JSON.stringify(role.body, null, 2),
    'JSON',
    '',
  ].join('\n');
}
