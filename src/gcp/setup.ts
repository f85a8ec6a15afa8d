// The Google Cloud side of the trust: a Workload Identity Federation pool and
// OIDC provider for this issuer, and the IAM binding that lets one job's
// builds act as a principal, as gcloud commands and as JSON
// (https://cloud.google.com/iam/docs/workload-identity-federation-with-other-providers).
//
// What Google needs that AWS does not:
// - google.subject (from sub) holds at most 127 bytes: the mapping fails the
//   exchange for a longer sub. A client's sub that can exceed it is warned
//   about, with the sub template that fits ({jenkins_instance}:{job|sha256}).
// - the allowed audience defaults to the provider's own resource URL
//   (https://iam.googleapis.com/projects/N/.../providers/P), which the client
//   must be allowed to mint.
// - an attribute condition (CEL) pins the controller: without one, every
//   controller registered with this service could exchange its tokens.
// - bindings name principals: principal://.../subject/<sub>, exactly.
import { InputError, checkUrl } from '../claims/text.js';
import { CLAIM_MAX_LENGTH } from '../claims/build-claims.js';
import { BUILD_CLAIMS, isBuildClaim, type BuildClaimName } from '../claims/names.js';
import { GOOGLE_SUBJECT_MAX_BYTES, longestSubBytes } from '../claims/sub.js';
import type { ClientView } from '../clients/commands.js';

export type GcpClient = Pick<ClientView, 'name' | 'audiences' | 'claimTypes' | 'subClaims' | 'subTemplate'>;

/** Claims mapped to attributes (strings for every client): attribute.<claim>. */
// Only claims every token carries: a mapping that reads a missing claim fails the exchange.
const MAPPED: BuildClaimName[] = ['jenkins_instance', 'job'];
const TYPED_CLAIMS: readonly BuildClaimName[] = ['build_number', 'restarted_from', 'replayed'];

export interface GcpSetupInput {
  issuer: string;
  client: GcpClient;
  projectId: string;
  projectNumber: string;
  pool: string;
  provider: string;
  /** claim=value conditions besides the controller, ANDed. */
  conditions: string[];
  /** Subjects (exact sub values) granted roles/iam.workloadIdentityUser on the service account, or direct access. */
  subjects: string[];
  serviceAccount?: string;
}

export interface GcpSetup {
  providerName: string;
  audience: string;
  provider: { issuerUri: string; allowedAudiences: string[]; attributeMapping: Record<string, string>; attributeCondition: string };
  principals: string[];
  commands: string[];
}

const ID = /^[a-z][a-z0-9-]{2,30}[a-z0-9]$/;

function celString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export function gcpSetup(input: GcpSetupInput): { setup: GcpSetup; warnings: string[] } {
  const issuer = checkUrl('ISSUER', input.issuer).href.replace(/\/$/, '');
  if (!/^[a-z][a-z0-9-]{4,28}[a-z0-9]$/.test(input.projectId)) throw new InputError('--project-id', `must be a Google Cloud project ID, got "${input.projectId}"`);
  if (!/^\d{1,20}$/.test(input.projectNumber)) throw new InputError('--project-number', `must be the project's number (gcloud projects describe ${input.projectId} --format='value(projectNumber)'), got "${input.projectNumber}"`);
  if (!ID.test(input.pool)) throw new InputError('--pool', `must be 4-32 lowercase letters, digits and -, got "${input.pool}"`);
  if (!ID.test(input.provider)) throw new InputError('--provider', `must be 4-32 lowercase letters, digits and -, got "${input.provider}"`);
  const poolName = `projects/${input.projectNumber}/locations/global/workloadIdentityPools/${input.pool}`;
  const providerName = `${poolName}/providers/${input.provider}`;
  const audience = `https://iam.googleapis.com/${providerName}`;
  if (!input.client.audiences.includes(audience)) {
    throw new InputError('--provider', `client ${input.client.name} may not mint the provider's audience ${audience}; add it: jenkins-oidc clients update ${input.client.name} --audience ${[...input.client.audiences, audience].join(',')}`);
  }
  const warnings: string[] = [];
  const longest = longestSubBytes({ subClaims: input.client.subClaims as BuildClaimName[], subTemplate: input.client.subTemplate }, CLAIM_MAX_LENGTH);
  if (longest > GOOGLE_SUBJECT_MAX_BYTES) {
    warnings.push(
      `client ${input.client.name}'s sub can reach ${longest} bytes; google.subject holds ${GOOGLE_SUBJECT_MAX_BYTES} and Google refuses the exchange of a longer one. ` +
        `Hash the job into it: jenkins-oidc clients update ${input.client.name} --sub-template '{jenkins_instance}:{job|sha256}'`,
    );
  }
  const terms = [`assertion.jenkins_instance == ${celString(input.client.name)}`];
  for (const flag of input.conditions) {
    const at = flag.indexOf('=');
    if (at <= 0) throw new InputError('--condition', `must be claim=value, such as ref=refs/heads/main, got "${flag}"`);
    const claim = flag.slice(0, at);
    if (!isBuildClaim(claim)) throw new InputError('--condition', `"${claim}" is not a build claim; choose from ${BUILD_CLAIMS.join(', ')}`);
    if (input.client.claimTypes === 'json' && TYPED_CLAIMS.includes(claim)) {
      throw new InputError('--condition', `${claim} is not a string in client ${input.client.name}'s tokens; compare strings after: jenkins-oidc clients update ${input.client.name} --claim-types string`);
    }
    if (claim === 'jenkins_instance') throw new InputError('--condition', 'jenkins_instance is always this controller');
    terms.push(`assertion.${claim} == ${celString(flag.slice(at + 1))}`);
  }
  const mapping: Record<string, string> = { 'google.subject': 'assertion.sub' };
  for (const claim of MAPPED) mapping[`attribute.${claim}`] = `assertion.${claim}`;
  const principals = input.subjects.map((sub) => {
    if (Buffer.byteLength(sub) > GOOGLE_SUBJECT_MAX_BYTES) throw new InputError('--subject', `"${sub}" is over Google's ${GOOGLE_SUBJECT_MAX_BYTES} bytes`);
    return `principal://iam.googleapis.com/${poolName}/subject/${sub}`;
  });
  const condition = terms.join(' && ');
  const mappingFlag = Object.entries(mapping).map(([k, v]) => `${k}=${v}`).join(',');
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const commands = [
    `gcloud iam workload-identity-pools create ${input.pool} --project=${input.projectId} --location=global --display-name=${q('Jenkins (jenkins-oidc)')}`,
    `gcloud iam workload-identity-pools providers create-oidc ${input.provider} --project=${input.projectId} --location=global --workload-identity-pool=${input.pool} \\\n` +
      `  --issuer-uri=${q(issuer)} --allowed-audiences=${q(audience)} \\\n  --attribute-mapping=${q(mappingFlag)} \\\n  --attribute-condition=${q(condition)}`,
    ...principals.map((member) =>
      input.serviceAccount
        ? `gcloud iam service-accounts add-iam-policy-binding ${q(input.serviceAccount)} --project=${input.projectId} --role=roles/iam.workloadIdentityUser --member=${q(member)}`
        : `# grant ${member} the roles it needs, e.g.: gcloud projects add-iam-policy-binding ${input.projectId} --role=roles/storage.objectViewer --member=${q(member)}`,
    ),
  ];
  return {
    setup: { providerName, audience, provider: { issuerUri: issuer, allowedAudiences: [audience], attributeMapping: mapping, attributeCondition: condition }, principals, commands },
    warnings,
  };
}
