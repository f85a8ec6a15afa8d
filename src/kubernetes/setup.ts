// The Kubernetes side of the trust: kube-apiserver's JWT authenticator for
// this issuer, as a structured AuthenticationConfiguration
// (apiserver.config.k8s.io/v1, --authentication-config, Kubernetes 1.30+) and
// as the --oidc-* flags older clusters take
// (https://kubernetes.io/docs/reference/access-authn-authz/authentication/).
//
// What Kubernetes needs that AWS does not:
// - RS256: kube-apiserver verifies RS256 only unless --oidc-signing-algs says
//   more, so the service must sign with RS256 (SIGNING_ALG's default) while a
//   cluster trusts it; the generator warns otherwise.
// - a username: a string claim with a prefix (so a build can never pose as
//   a cluster user such as system:admin), here `sub` by default, which names
//   the controller and the job; RBAC then binds that username.
// - required claims match strings only: binding build_number, restarted_from
//   or replayed needs claim_types string.
// - one authenticator per issuer URL serves the whole cluster: it is pinned
//   to one controller (required claim jenkins_instance), so another
//   controller's builds are not authenticated at all.
import { BUILD_CLAIMS, isBuildClaim, type BuildClaimName } from '../claims/names.js';
import { InputError, checkUrl } from '../claims/text.js';
import type { ClientView } from '../clients/commands.js';

export type KubernetesClient = Pick<ClientView, 'name' | 'audiences' | 'claimTypes'>;

const TYPED_CLAIMS: readonly BuildClaimName[] = ['build_number', 'restarted_from', 'replayed'];

export interface KubernetesSetupInput {
  issuer: string;
  signingAlg: string;
  client: KubernetesClient;
  audience: string;
  usernameClaim: string;
  usernamePrefix: string;
  /** claim=value, repeatable; jenkins_instance=<client> is always added. */
  requiredClaims: string[];
}

export interface AuthenticationConfiguration {
  apiVersion: 'apiserver.config.k8s.io/v1';
  kind: 'AuthenticationConfiguration';
  jwt: {
    issuer: { url: string; audiences: string[] };
    claimValidationRules: { claim: string; requiredValue: string }[];
    claimMappings: { username: { claim: string; prefix: string } };
  }[];
}

function checkStringClaim(field: string, claim: string, client: KubernetesClient): string {
  if (claim !== 'sub' && !isBuildClaim(claim)) throw new InputError(field, `"${claim}" is not a claim of these tokens; choose sub or one of ${BUILD_CLAIMS.join(', ')}`);
  if (client.claimTypes === 'json' && TYPED_CLAIMS.includes(claim as BuildClaimName)) {
    throw new InputError(
      field,
      `${claim} is a JSON ${claim === 'replayed' ? 'boolean' : 'number'} in client ${client.name}'s tokens, and kube-apiserver matches string claims only; ` +
        `switch the client to string claims first: jenkins-oidc clients update ${client.name} --claim-types string`,
    );
  }
  return claim;
}

export function kubernetesSetup(input: KubernetesSetupInput): { config: AuthenticationConfiguration; flags: string[]; warnings: string[] } {
  const url = checkUrl('ISSUER', input.issuer);
  const issuer = url.href.replace(/\/$/, '');
  const warnings: string[] = [];
  if (url.protocol !== 'https:') warnings.push(`the issuer ${issuer} is not https: kube-apiserver accepts only https issuers`);
  if (input.signingAlg !== 'RS256') {
    warnings.push(`this service signs with ${input.signingAlg} (SIGNING_ALG); kube-apiserver verifies RS256 only by default: keep SIGNING_ALG=RS256 while a cluster trusts it`);
  }
  if (!input.client.audiences.includes(input.audience)) {
    throw new InputError('--audience', `"${input.audience}" is not an audience of client ${input.client.name} (${input.client.audiences.join(', ')}); add it: jenkins-oidc clients update ${input.client.name} --audience ${[...input.client.audiences, input.audience].join(',')}`);
  }
  const usernameClaim = checkStringClaim('--username-claim', input.usernameClaim, input.client);
  if (!/^[A-Za-z0-9_.:@/-]{1,64}$/.test(input.usernamePrefix) || input.usernamePrefix.startsWith('system:')) {
    throw new InputError('--username-prefix', `must be 1-64 characters of letters, digits and _ . : @ / - and not start with system:, got "${input.usernamePrefix}"`);
  }
  const rules = [{ claim: 'jenkins_instance', requiredValue: input.client.name }];
  for (const flag of input.requiredClaims) {
    const at = flag.indexOf('=');
    if (at <= 0 || at === flag.length - 1) throw new InputError('--required-claim', `must be claim=value, such as replayed=false, got "${flag}"`);
    const claim = checkStringClaim('--required-claim', flag.slice(0, at), input.client);
    const value = flag.slice(at + 1);
    if (claim === 'jenkins_instance') {
      if (value !== input.client.name) throw new InputError('--required-claim', `jenkins_instance is always this controller, ${input.client.name}`);
      continue;
    }
    if (rules.some((r) => r.claim === claim)) throw new InputError('--required-claim', `${claim} is given twice; a required claim has one value`);
    if (/[,=]/.test(value)) throw new InputError('--required-claim', `${claim}'s value must not contain "," or "=" (the --oidc-required-claim flag cannot carry them)`);
    rules.push({ claim, requiredValue: value });
  }
  const config: AuthenticationConfiguration = {
    apiVersion: 'apiserver.config.k8s.io/v1',
    kind: 'AuthenticationConfiguration',
    jwt: [
      {
        issuer: { url: issuer, audiences: [input.audience] },
        claimValidationRules: rules,
        claimMappings: { username: { claim: usernameClaim, prefix: input.usernamePrefix } },
      },
    ],
  };
  const flags = [
    `--oidc-issuer-url=${issuer}`,
    `--oidc-client-id=${input.audience}`,
    `--oidc-username-claim=${usernameClaim}`,
    `--oidc-username-prefix=${input.usernamePrefix}`,
    ...rules.map((r) => `--oidc-required-claim=${r.claim}=${r.requiredValue}`),
    '--oidc-signing-algs=RS256',
  ];
  return { config, flags, warnings };
}
