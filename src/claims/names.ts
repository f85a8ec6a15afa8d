// The claims an ID token can carry, in the order they are written. Listed once
// here: discovery's claims_supported, the `sub` key check and the docs use it.
export const STANDARD_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti'] as const;

/** Facts about the build: from the client record (first two) or the controller's mint call. */
export const BUILD_CLAIMS = [
  'jenkins_instance',
  'jenkins_url',
  'job',
  'build_number',
  'build_url',
  'ref',
  'ref_type',
  'commit',
  'repository',
  'pull_request',
  'triggered_by',
  'replayed',
  'restarted_from',
] as const;

export type BuildClaimName = (typeof BUILD_CLAIMS)[number];

/**
 * Claims AWS STS reads itself (session tags, source identity). Computed at mint
 * from the client's settings and the build claims (claims/aws.ts), stored in
 * the snapshot, copied by the exchange like every other claim.
 */
export const AWS_TAGS_CLAIM = 'https://aws.amazon.com/tags';
export const AWS_SOURCE_IDENTITY_CLAIM = 'https://aws.amazon.com/source_identity';
export const AWS_CLAIMS = [AWS_TAGS_CLAIM, AWS_SOURCE_IDENTITY_CLAIM] as const;

/** Everything the exchange copies from the stored snapshot into an ID token, in order. */
export const SNAPSHOT_CLAIMS = [...BUILD_CLAIMS, ...AWS_CLAIMS] as const;

export const ALL_CLAIMS = [...STANDARD_CLAIMS, ...BUILD_CLAIMS, ...AWS_CLAIMS];

export const DEFAULT_SUB_CLAIMS: BuildClaimName[] = ['jenkins_instance', 'job'];

export function isBuildClaim(name: string): name is BuildClaimName {
  return (BUILD_CLAIMS as readonly string[]).includes(name);
}
