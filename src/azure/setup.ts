// The Microsoft Entra side of the trust: federated identity credentials on an
// app registration, one per job (or per job and branch), as the parameters of
// `az ad app federated-credential create` and as JSON (the same objects, for
// Terraform's azuread_application_federated_identity_credential or Graph).
//
// What Entra needs that AWS does not, from Microsoft's "Important
// considerations and restrictions for federated identity credentials"
// (https://learn.microsoft.com/entra/workload-id/workload-identity-federation-considerations):
// - issuer and subject are compared with the token's iss and sub exactly:
//   "Wildcard characters aren't supported in any federated identity credential
//   property value", so each credential names one exact sub. A sub that holds
//   a claim changing from build to build (build_number, commit, ...) can never
//   match; the generator renders the sub each build of the job will carry with
//   the client's own sub rendering (claims/sub.ts) and warns when it cannot.
// - "A maximum of 20 federated identity credentials can be added to an
//   application": more jobs than that need another app, or a sub template
//   that names fewer things (one credential per controller and branch).
// - issuer and subject at most 600 characters each; name 3-120 characters of
//   letters, digits, - and _, the first alphanumeric; the one audience is
//   api://AzureADTokenExchange.
// - "Only issuers that provide tokens signed using the RS256 algorithm are
//   supported": a service signing with ES256 is refused (no credential printed).
import { renderSub, renderSubTemplate } from '../claims/sub.js';
import { refTypeOf } from '../claims/build-claims.js';
import type { BuildClaimName } from '../claims/names.js';
import { InputError, checkUrl } from '../claims/text.js';
import type { ClientView } from '../clients/commands.js';

export type AzureClient = Pick<ClientView, 'name' | 'jenkinsUrl' | 'audiences' | 'subClaims' | 'subTemplate'>;

/** The audience Entra requires in the token (the credential's one audience). */
export const AZURE_AUDIENCE = 'api://AzureADTokenExchange';
/** Entra's limit per application (or user-assigned managed identity). */
export const AZURE_MAX_CREDENTIALS = 20;
/** issuer, subject and description: 600 characters each. */
export const AZURE_FIELD_MAX = 600;

/** Claims the generator knows for a job (and a branch): every build of it carries the same values. */
const FIXED_PER_JOB: ReadonlySet<BuildClaimName> = new Set(['jenkins_instance', 'jenkins_url', 'job']);
const FIXED_PER_REF: ReadonlySet<BuildClaimName> = new Set(['ref', 'ref_type']);

export interface AzureSetupInput {
  issuer: string;
  signingAlg: string;
  client: AzureClient;
  /** The app registration: its application (client) ID or object ID, as `az ad app federated-credential create --id` takes. */
  app: string;
  /** Full job names (a multibranch branch job is folder/app/main). */
  jobs: string[];
  /** Full Git refs; one credential per job and ref. Only when the client's sub holds ref or ref_type. */
  refs: string[];
}

export interface FederatedCredential {
  name: string;
  issuer: string;
  subject: string;
  description: string;
  audiences: string[];
}

export interface AzureSetup {
  app: string;
  credentials: FederatedCredential[];
  commands: string[];
}

/** Which of the sub's claims a build can vary: the client's template or key list. */
function subClaimsOf(client: AzureClient): BuildClaimName[] {
  if (client.subTemplate === null) return client.subClaims as BuildClaimName[];
  return [...client.subTemplate.matchAll(/\{([a-z_]+)(?:\|sha256)?\}/g)].map((m) => m[1] as BuildClaimName);
}

/** A credential name Entra accepts: letters, digits, - and _, first alphanumeric, 3-120. */
function credentialName(client: string, job: string, ref: string | undefined, taken: Set<string>): string {
  const base = `${client}-${job}${ref ? `-${ref.replace(/^refs\/(heads|tags)\//, '')}` : ''}`
    .replace(/[^A-Za-z0-9_-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 112)
    .replace(/-+$/, '');
  const stem = base.length >= 3 ? base : `jenkins-${base}`;
  // Names are unique per app: two jobs that differ only in characters a name cannot hold get -2, -3...
  let name = stem;
  for (let n = 2; taken.has(name); n++) name = `${stem}-${n}`;
  taken.add(name);
  return name;
}

export function azureSetup(input: AzureSetupInput): { setup: AzureSetup; warnings: string[] } {
  const issuer = checkUrl('ISSUER', input.issuer).href.replace(/\/$/, '');
  if (input.signingAlg !== 'RS256') {
    // Refused rather than warned: every credential printed would fail every login.
    throw new InputError('SIGNING_ALG', `this service signs with ${input.signingAlg}; Microsoft Entra supports only issuers whose tokens are signed with RS256. Keep SIGNING_ALG=RS256 while Azure trusts this service`);
  }
  if (issuer.length > AZURE_FIELD_MAX) throw new InputError('ISSUER', `is ${issuer.length} characters; a federated credential's issuer holds at most ${AZURE_FIELD_MAX}`);
  if (!/^[A-Za-z0-9-]{1,64}$/.test(input.app)) throw new InputError('--app', `must be the app registration's application (client) ID or object ID, got "${input.app}"`);
  if (!input.client.audiences.includes(AZURE_AUDIENCE)) {
    throw new InputError('--client', `client ${input.client.name} may not mint Entra's audience ${AZURE_AUDIENCE}; add it: jenkins-oidc clients update ${input.client.name} --audience ${[...input.client.audiences, AZURE_AUDIENCE].join(',')}`);
  }
  if (input.jobs.length === 0) throw new InputError('--job', 'name at least one job (its full name, e.g. team/app/main)');
  const claims = subClaimsOf(input.client);
  const usesRef = claims.some((c) => FIXED_PER_REF.has(c));
  if (input.refs.length > 0 && !usesRef) {
    throw new InputError('--ref', `client ${input.client.name}'s sub does not hold ref, so every branch of a job presents the same sub: one credential per job covers them all`);
  }
  for (const ref of input.refs) refTypeOf(ref);
  const warnings: string[] = [];
  const varying = claims.filter((c) => !FIXED_PER_JOB.has(c) && !(FIXED_PER_REF.has(c) && input.refs.length > 0));
  if (varying.length > 0) {
    warnings.push(
      `client ${input.client.name}'s sub holds ${varying.join(', ')}, which ${input.refs.length === 0 && varying.every((c) => FIXED_PER_REF.has(c)) ? 'changes with the branch (give --ref for each branch)' : 'changes from build to build'}; ` +
        'Entra matches subject exactly, without wildcards, so these credentials cannot match every build. ' +
        `Make the sub name the job only: jenkins-oidc clients update ${input.client.name} --sub-template '{jenkins_instance}:{job}'`,
    );
  }
  const refs: (string | undefined)[] = input.refs.length > 0 ? input.refs : [undefined];
  const total = input.jobs.length * refs.length;
  if (total > AZURE_MAX_CREDENTIALS) {
    warnings.push(
      `${total} federated credentials for app ${input.app}; Entra allows at most ${AZURE_MAX_CREDENTIALS} per app. ` +
        'Split the jobs across apps (one app per team or folder), or name fewer branches (--ref)',
    );
  }
  const taken = new Set<string>();
  const seen = new Set<string>();
  const credentials: FederatedCredential[] = [];
  for (const job of input.jobs) {
    for (const ref of refs) {
      // The same rendering the exchange uses for a build of this job (and branch).
      const values: Partial<Record<BuildClaimName, string>> = { jenkins_instance: input.client.name, jenkins_url: input.client.jenkinsUrl, job };
      if (ref) Object.assign(values, { ref, ref_type: refTypeOf(ref) });
      const subject = input.client.subTemplate ? renderSubTemplate(input.client.subTemplate, values) : renderSub(input.client.subClaims as BuildClaimName[], values);
      if (subject.length > AZURE_FIELD_MAX) throw new InputError('--job', `the sub of ${job} is ${subject.length} characters; a federated credential's subject holds at most ${AZURE_FIELD_MAX}`);
      // "The combination of issuer and subject must be unique on the app."
      if (seen.has(subject)) throw new InputError('--job', `two credentials would have the same subject ${subject}; Entra refuses a repeated issuer and subject`);
      seen.add(subject);
      credentials.push({
        name: credentialName(input.client.name, job, ref, taken),
        issuer,
        subject,
        description: `Jenkins ${input.client.name}: ${job}${ref ? ` on ${ref}` : ''} (jenkins-oidc)`.slice(0, AZURE_FIELD_MAX),
        audiences: [AZURE_AUDIENCE],
      });
    }
  }
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const commands = credentials.map((c) => `az ad app federated-credential create --id ${input.app} --parameters ${q(JSON.stringify(c))}`);
  return { setup: { app: input.app, credentials, commands }, warnings };
}
