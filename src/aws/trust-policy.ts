// The IAM side of the trust: a role trust policy that admits the ID tokens of
// chosen Jenkins jobs, and the CloudFormation template that creates the IAM
// OIDC provider with such roles.
//
// Conditions use the condition keys AWS derives from the provider URL (the
// issuer without https://): `<host/path>:aud` must equal the audience and
// `<host/path>:sub` must match the --sub patterns (StringEquals when none has
// a wildcard, StringLike otherwise). Patterns are checked against the
// client's sub shape (its ordered sub claim keys), so a pattern that can never
// match, or one that names another controller, is refused before it reaches
// AWS; a pattern that would admit every job of the controller is warned about.
//
// In StringLike, `*` matches any characters, `/` and `:` included. So
// `job:team/app*` also admits team/apple and team/app-old/x, and `job:team/*`
// admits every job in every folder below team, among them multibranch
// pull-request jobs (team/app/PR-12) that can build code from forks. Both are
// warned about; --exclude-pull-requests adds a StringNotLike on `job:*/PR-*`.
import { PULL_REQUEST_REF_PREFIXES } from '../claims/build-claims.js';
import { escapeSubValue, parseSubTemplate } from '../claims/sub.js';
import { InputError } from '../claims/text.js';
import type { ClientView } from '../clients/commands.js';
import { DomainError } from '../errors.js';

export interface PolicyStatement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Principal: { Federated: string | { Ref: string } };
  Action: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

export type ClientShape = Pick<ClientView, 'name' | 'subClaims' | 'audiences' | 'sessionTags' | 'sourceIdentity'> & SubShape;

/** A client's sub: sub_claims' key:value form, or its sub template when set. */
export type SubShape = Pick<ClientView, 'name' | 'subClaims'> & Partial<Pick<ClientView, 'subTemplate' | 'jenkinsUrl'>>;

/** "oidc.example.com/jenkins": the provider URL as IAM keeps it, prefix of the condition keys. */
export function providerUrl(issuer: string): string {
  return issuer.replace(/^https?:\/\//, '').replace(/\/+$/, '');
}

export function providerArn(issuer: string, accountId: string, partition = 'aws'): string {
  if (!/^\d{12}$/.test(accountId)) throw new InputError('--account-id', `must be a 12-digit AWS account ID, got "${accountId}"`);
  return `arn:${partition}:iam::${accountId}:oidc-provider/${providerUrl(issuer)}`;
}

/** Problems with the issuer that AWS IAM would refuse; the CLI prints them as warnings. */
export function issuerWarnings(issuer: string): string[] {
  const url = new URL(issuer);
  const out: string[] = [];
  if (url.protocol !== 'https:') out.push(`the issuer ${issuer} is not https: AWS IAM accepts only https OIDC providers (set ISSUER)`);
  if (url.port) out.push(`the issuer ${issuer} has a port: AWS IAM refuses provider URLs with a port (serve on 443 behind a proxy)`);
  return out;
}

const hasWildcard = (s: string) => /[*?]/.test(s);

/** IAM StringLike: `*` any characters (`/` and `:` included), `?` one character. */
export function stringLike(pattern: string, value: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[\\s\\S]*').replace(/\?/g, '[\\s\\S]');
  return new RegExp(`^${re}$`).test(value);
}

/**
 * What multibranch projects name their change-request jobs: PR-<n> (GitHub and
 * Bitbucket branch sources) and MR-<n> (GitLab).
 */
export const CHANGE_REQUEST_JOB_PREFIXES = ['PR-', 'MR-'] as const;
const CHANGE_REQUEST_JOB = /(?:^|\/)(?:PR|MR)-[0-9]+$/;

/** Whether a --sub job value with wildcards can match a pull-request job such as team/app/PR-12. */
function admitsChangeRequestJob(job: string): string | undefined {
  const wildcardAt = job.search(/[*?]/);
  if (wildcardAt < 0) return undefined;
  const stem = job.slice(0, wildcardAt);
  const folder = stem.slice(0, stem.lastIndexOf('/') + 1);
  // The literal text after the last * must end the name: PR-1<tail> tries it as the number's end.
  const tail = job.includes('*') ? job.slice(job.lastIndexOf('*') + 1).replaceAll('?', '1') : '';
  for (const base of [folder, `${stem}/`, `${stem}x/`]) {
    for (const prefix of CHANGE_REQUEST_JOB_PREFIXES) {
      for (const number of ['12', `1${tail}`]) {
        const candidate = `${base}${prefix}${number}`;
        if (CHANGE_REQUEST_JOB.test(candidate) && stringLike(job, candidate)) return candidate;
      }
    }
  }
  return undefined;
}

/** Whether a value pattern could match a value starting with one of these prefixes (or, for an exact pattern, does). */
function mayStartWith(value: string, prefixes: readonly string[]): boolean {
  if (!hasWildcard(value)) return prefixes.some((p) => value.startsWith(p));
  const literal = value.slice(0, value.search(/[*?]/));
  return prefixes.some((p) => literal.startsWith(p) || p.startsWith(literal));
}

/**
 * Whether the pattern's ref, ref_type or pull_request value already keeps
 * pull-request builds out: the library reports them with ref refs/pull/<n>/head
 * (ref_type pull_request) and a pull_request claim.
 */
function refusesPullRequestBuilds(values: ReadonlyMap<string, string>): boolean {
  const ref = values.get('ref');
  if (ref !== undefined && ref !== '' && !mayStartWith(ref, PULL_REQUEST_REF_PREFIXES)) return true;
  const refType = values.get('ref_type');
  if (refType !== undefined && !mayStartWith(refType, ['pull_request'])) return true;
  return values.get('pull_request') === '';
}

/** Advice for matching branches only, in the terms of this client's sub keys. */
function branchOnlyAdvice(keys: readonly string[]): string {
  if (keys.includes('ref_type')) return 'end the ref_type pair with ref_type:branch';
  if (keys.includes('ref')) return 'match ref:refs/heads/* (or one branch)';
  return 'add ref_type to the sub keys and match ref_type:branch';
}

/**
 * A "%" the rendered sub can contain: claims/sub.ts writes "%" in a value as
 * %25 and ":" as %3A, so every "%" of a sub starts one of those two. A pattern
 * whose "%" cannot (a raw 100%, a lower-case %3a) never matches.
 */
const UNMATCHABLE_PERCENT = /%(?!25|3A|\*|\?[5A*?]|2[*?]|3[*?])/;

/**
 * Checks one --sub pattern against the client's sub shape
 * (`key:value` pairs in the client's order, "%" in values written %25 and ":" %3A).
 * Throws when it can never match or would admit another controller's builds;
 * returns warnings for patterns that admit more than one would expect.
 */
export function checkSubPattern(pattern: string, client: SubShape, options: { excludePullRequests?: boolean } = {}): string[] {
  if (client.subTemplate) return checkTemplateSubPattern(pattern, { ...client, subTemplate: client.subTemplate });
  const keys = client.subClaims;
  const shape = keys.map((k) => `${k}:<${k}>`).join(':');
  const mismatch = (why: string) =>
    new InputError('--sub', `"${pattern}" does not fit this client's sub, which looks like ${shape} (${why}); change the sub keys with: jenkins-oidc clients update ${client.name} --sub-claims ...`);
  if (pattern.length === 0 || pattern.length > 255) throw new InputError('--sub', 'must be 1-255 characters');
  const segments = pattern.split(':');
  const values = new Map<string, string>();
  let absorbed = false;
  // A shape problem is reported after the controller check: naming the wrong
  // controller (or any) is the more important thing to hear about.
  let shapeProblem: InputError | undefined;
  for (let i = 0; i < keys.length; i += 1) {
    const key = segments[2 * i];
    const value = segments[2 * i + 1];
    if (key === undefined) {
      if (segments[2 * i - 1]?.endsWith('*')) absorbed = true;
      else shapeProblem = mismatch(`it ends before the ${keys[i]} pair`);
      break;
    }
    if (key !== keys[i]) {
      if (hasWildcard(key)) absorbed = true;
      else shapeProblem = mismatch(`pair ${i + 1} should be ${keys[i]}, not ${key}`);
      break;
    }
    if (value === undefined) {
      shapeProblem = mismatch(`${key} has no value`);
      break;
    }
    values.set(key, value);
  }
  if (!absorbed && !shapeProblem && segments.length > 2 * keys.length) shapeProblem = mismatch('it has more pairs than the sub');

  const warnings: string[] = [];
  if (keys.includes('jenkins_instance')) {
    const instance = values.get('jenkins_instance');
    if (instance === undefined && shapeProblem) throw shapeProblem;
    if (instance === undefined || hasWildcard(instance)) {
      throw new InputError('--sub', `"${pattern}" must name this controller exactly (jenkins_instance:${client.name}); a wildcard there would admit builds of every controller registered with this service`);
    }
    if (instance !== client.name) {
      throw new InputError('--sub', `"${pattern}" names the controller "${instance}", but this policy is for client ${client.name}`);
    }
  }
  if (shapeProblem) throw shapeProblem;
  if (UNMATCHABLE_PERCENT.test(pattern)) {
    throw new InputError('--sub', `"${pattern}" can never match: a sub writes "%" inside a value as %25 and ":" as %3A, so every "%" must start %25 or %3A (a job named 100% is job:100%25)`);
  }
  if (!keys.includes('jenkins_instance') && !keys.includes('jenkins_url')) {
    warnings.push(
      `the sub of client ${client.name} does not include jenkins_instance: a build of ANY controller registered with this service, with the same job name, would match. Add it: jenkins-oidc clients update ${client.name} --sub-claims jenkins_instance,${keys.join(',')}`,
    );
  }
  if (!keys.includes('job')) {
    warnings.push(`the sub of client ${client.name} does not include job: this policy admits every job of ${client.name}`);
  } else {
    const job = values.get('job');
    if (job === undefined || /^\*+$/.test(job)) {
      warnings.push(`"${pattern}" admits every job of ${client.name}; narrow it, e.g. job:team/app/*`);
    } else {
      const star = job.indexOf('*');
      if (star > 0 && job[star - 1] !== '/') {
        const stem = job.slice(0, star);
        warnings.push(
          `"${pattern}": * matches any characters, "/" and ":" included, so job:${job} admits every job whose full name starts with "${stem}" (such as ${stem}x/deploy); ` +
            `end the pattern at a separator (job:${stem}/*) or name the job exactly`,
        );
      }
      const prJob = admitsChangeRequestJob(job);
      if (prJob && !options.excludePullRequests && !refusesPullRequestBuilds(values)) {
        warnings.push(
          `"${pattern}" also admits multibranch pull-request jobs such as ${prJob}, which can run code from forks; ` +
            `to admit branches only, ${branchOnlyAdvice(keys)}, or refuse PR-*/MR-* jobs with --exclude-pull-requests`,
        );
      }
    }
  }
  return warnings;
}

/**
 * The text every sub of this client starts with, up to and including the
 * controller and the literal after it: `{jenkins_instance}:{job|sha256}`
 * gives "ci-main:". A pattern must start with it, wildcard-free, so that it
 * can only admit this controller's builds (values cannot contain ":", so the
 * literal after the controller ends its value). Only a template whose
 * controller comes before every other placeholder has such a prefix.
 */
export function templateControllerPrefix(client: SubShape & { subTemplate: string }): string {
  const parts = parseSubTemplate(client.subTemplate);
  const first = parts.findIndex((p) => p.claim);
  const part = parts[first]!;
  if ((part.claim !== 'jenkins_instance' && part.claim !== 'jenkins_url') || part.hashed) {
    throw new InputError('--sub', `the sub template of client ${client.name} ("${client.subTemplate}") does not start with {jenkins_instance}, so no pattern can pin the controller; put it first: jenkins-oidc clients update ${client.name} --sub-template '{jenkins_instance}:...'`);
  }
  if (part.claim === 'jenkins_url' && !client.jenkinsUrl) throw new InputError('--sub', `client ${client.name}'s Jenkins URL is needed to check patterns`);
  const value = part.claim === 'jenkins_instance' ? client.name : client.jenkinsUrl!;
  return `${part.literal}${escapeSubValue(value)}${parts[first + 1]!.literal}`;
}

/** checkSubPattern for a client with a sub template: pinned to the controller; the rest is the user's. */
function checkTemplateSubPattern(pattern: string, client: SubShape & { subTemplate: string }): string[] {
  if (pattern.length === 0 || pattern.length > 255) throw new InputError('--sub', 'must be 1-255 characters');
  const prefix = templateControllerPrefix(client);
  if (!pattern.startsWith(prefix)) {
    throw new InputError('--sub', `"${pattern}" must start with "${prefix}" (this controller, in the sub template "${client.subTemplate}"); anything else admits another controller's builds or none`);
  }
  if (UNMATCHABLE_PERCENT.test(pattern)) {
    throw new InputError('--sub', `"${pattern}" can never match: a sub writes "%" inside a value as %25 and ":" as %3A, so every "%" must start %25 or %3A`);
  }
  return pattern === `${prefix}*` ? [`"${pattern}" admits every job of ${client.name}`] : [];
}

export interface TrustPolicyInput {
  issuer: string;
  client: ClientShape;
  subPatterns: string[];
  audience: string;
  federated: string | { Ref: string };
  /** Add a StringNotLike on sub that refuses multibranch pull-request jobs (PR-*, MR-*). */
  excludePullRequests?: boolean;
}

/**
 * StringNotLike patterns refusing every sub whose job has a PR-<n> or MR-<n>
 * segment. `*` spans ":", so they also refuse a sub whose later values (a
 * branch feature/PR-x) or folders (team/PR-tools/app) contain "/PR-": an
 * over-refusal, never an admission.
 */
export function pullRequestExclusions(client: SubShape): string[] {
  if (client.subTemplate) {
    throw new InputError('--exclude-pull-requests', `client ${client.name} has a sub template; pull-request jobs cannot be told by name there: write --sub patterns that name the branch jobs`);
  }
  const at = client.subClaims.indexOf('job');
  if (at < 0) {
    throw new InputError(
      '--exclude-pull-requests',
      `the sub of client ${client.name} has no job, so pull-request jobs cannot be told by name; add ref_type to its sub keys and match ref_type:branch instead`,
    );
  }
  const lead = at === 0 ? '' : '*:';
  return CHANGE_REQUEST_JOB_PREFIXES.map((prefix) => `${lead}job:*/${prefix}*`);
}

/** A --sub example in this client's shape that admits branch builds of one multibranch project. */
function examplePattern(client: SubShape): string {
  if (client.subTemplate) return `${templateControllerPrefix({ ...client, subTemplate: client.subTemplate })}*`;
  const example: Record<string, string> = { jenkins_instance: client.name, job: 'team/app/*', ref: 'refs/heads/*', ref_type: 'branch', pull_request: '', replayed: 'false' };
  return client.subClaims.map((k) => `${k}:${example[k] ?? '*'}`).join(':');
}

export function checkAudience(audience: string | undefined, client: ClientShape): string {
  const chosen = audience ?? (client.audiences.includes('sts.amazonaws.com') ? 'sts.amazonaws.com' : client.audiences[0]!);
  if (!client.audiences.includes(chosen)) {
    throw new InputError('--audience', `"${chosen}" is not an audience of client ${client.name} (${client.audiences.join(', ')})`);
  }
  return chosen;
}

/** The actions a role must allow for this client's tokens: tags and source identity need their own. */
export function trustedActions(client: ClientShape): string[] {
  return [
    'sts:AssumeRoleWithWebIdentity',
    ...(client.sessionTags.length ? ['sts:TagSession'] : []),
    ...(client.sourceIdentity ? ['sts:SetSourceIdentity'] : []),
  ];
}

export function trustPolicy(input: TrustPolicyInput): { policy: PolicyDocument; warnings: string[] } {
  if (input.subPatterns.length === 0) {
    throw new InputError('--sub', `give at least one pattern for the sub this role admits, e.g. --sub '${examplePattern(input.client)}'`);
  }
  const options = { excludePullRequests: input.excludePullRequests };
  const warnings = [...new Set(input.subPatterns.flatMap((p) => checkSubPattern(p, input.client, options)))];
  const exclusions = input.excludePullRequests ? pullRequestExclusions(input.client) : [];
  const prefix = providerUrl(input.issuer);
  const subs = [...new Set(input.subPatterns)];
  const sub = subs.length === 1 ? subs[0]! : subs;
  const condition: Record<string, Record<string, string | string[]>> = subs.some(hasWildcard)
    ? { StringEquals: { [`${prefix}:aud`]: input.audience }, StringLike: { [`${prefix}:sub`]: sub } }
    : { StringEquals: { [`${prefix}:aud`]: input.audience, [`${prefix}:sub`]: sub } };
  if (exclusions.length) condition.StringNotLike = { [`${prefix}:sub`]: exclusions };
  const actions = trustedActions(input.client);
  return {
    policy: {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: `JenkinsOidc${input.client.name.replace(/[^A-Za-z0-9]/g, '')}`,
          Effect: 'Allow',
          Principal: { Federated: input.federated },
          Action: actions.length === 1 ? actions[0]! : actions,
          Condition: condition,
        },
      ],
    },
    warnings,
  };
}

// ---- CloudFormation ----------------------------------------------------------

export interface RoleSpec {
  name: string;
  subPatterns: string[];
}

export interface TemplateInput {
  issuer: string;
  client: ClientShape;
  audience: string;
  roles: RoleSpec[];
  thumbprints: string[];
  /** Use an IAM OIDC provider that already exists (one per URL and account) instead of creating it. */
  existingProviderArn?: string;
  managedPolicyArns: string[];
  maxSessionDuration?: number;
  /** Every role refuses multibranch pull-request jobs (see pullRequestExclusions). */
  excludePullRequests?: boolean;
}

const PROVIDER_ID = 'JenkinsOidcProvider';

function logicalId(roleName: string): string {
  const words = roleName.split(/[^A-Za-z0-9]+/).filter(Boolean);
  return `${words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('') || 'Jenkins'}Role`;
}

export function checkRoleName(name: string): string {
  if (!/^[\w+=,.@-]{1,64}$/.test(name)) throw new InputError('--role', `"${name}" is not an IAM role name (1-64 of letters, digits and _ + = , . @ -)`);
  return name;
}

/**
 * The principal a trust policy trusts: the IAM OIDC provider ARN as given, or
 * built from the account (and partition) and the issuer.
 */
export function federatedPrincipal(input: { issuer: string; providerArn?: string; accountId?: string; partition?: string }): string {
  if (input.providerArn) return input.providerArn;
  if (!input.accountId) throw new DomainError('the trust policy needs the IAM OIDC provider it trusts', 'give --account-id 123456789012 (or --provider-arn arn:aws:iam::...:oidc-provider/...)');
  return providerArn(input.issuer, input.accountId, input.partition);
}

/** What `aws cloudformation` was given to name its roles. */
export interface RoleFlags {
  clientName: string;
  /** --role-name: the role of the --sub patterns (default jenkins-<client>). */
  roleName?: string;
  /** --sub patterns. */
  sub?: string[];
  /** --role NAME=PATTERN values; a name repeated gathers its patterns. */
  role?: string[];
}

/** The roles of a template, in the order first named: --role-name/--sub first, then each --role. */
export function rolesFromFlags(flags: RoleFlags): RoleSpec[] {
  const roles = new Map<string, RoleSpec>();
  if (flags.sub?.length || flags.roleName) {
    const name = flags.roleName ?? `jenkins-${flags.clientName}`;
    roles.set(name, { name, subPatterns: flags.sub ?? [] });
  }
  for (const spec of flags.role ?? []) {
    const at = spec.indexOf('=');
    if (at < 1) throw new InputError('--role', `must be NAME=SUB_PATTERN, got "${spec}"`);
    const name = spec.slice(0, at);
    const role = roles.get(name) ?? { name, subPatterns: [] };
    role.subPatterns.push(spec.slice(at + 1));
    roles.set(name, role);
  }
  return [...roles.values()];
}

/** --max-session-duration as typed: whole seconds. */
export function parseMaxSessionDuration(value: string): number {
  if (!/^\d+$/.test(value)) throw new InputError('--max-session-duration', `must be whole seconds, got "${value}"`);
  return Number(value);
}

/** The MaxSessionDuration IAM accepts: 1 to 12 hours. */
export function checkMaxSessionDuration(seconds: number | undefined): number | undefined {
  if (seconds !== undefined && (seconds < 3600 || seconds > 43200)) {
    throw new InputError('--max-session-duration', `must be 3600-43200 seconds, got ${seconds}`);
  }
  return seconds;
}

export function checkThumbprint(value: string): string {
  if (!/^[0-9a-fA-F]{40}$/.test(value)) throw new InputError('--thumbprint', `must be 40 hexadecimal characters (a SHA-1), got "${value}"`);
  return value.toLowerCase();
}

export function cloudFormationTemplate(input: TemplateInput): { template: Record<string, unknown>; warnings: string[] } {
  if (input.roles.length === 0) throw new InputError('--role', 'give at least one role (--role-name NAME with --sub PATTERN, or --role NAME=PATTERN)');
  const federated = input.existingProviderArn ?? { Ref: PROVIDER_ID };
  const resources: Record<string, unknown> = {};
  const outputs: Record<string, unknown> = {};
  if (!input.existingProviderArn) {
    resources[PROVIDER_ID] = {
      Type: 'AWS::IAM::OIDCProvider',
      Properties: {
        Url: input.issuer,
        ClientIdList: [input.audience],
        // Optional for certificates from CAs AWS trusts; needed for a private CA.
        ...(input.thumbprints.length && { ThumbprintList: input.thumbprints }),
      },
    };
    outputs.OidcProviderArn = { Description: 'ARN of the IAM OIDC provider for the Jenkins token service', Value: { Ref: PROVIDER_ID } };
  }
  const warnings: string[] = [];
  const seen = new Set<string>();
  for (const role of input.roles) {
    const id = logicalId(checkRoleName(role.name));
    if (seen.has(id)) throw new InputError('--role', `two roles map to the same CloudFormation logical ID ${id}`);
    seen.add(id);
    const { policy, warnings: w } = trustPolicy({
      issuer: input.issuer,
      client: input.client,
      subPatterns: role.subPatterns,
      audience: input.audience,
      federated,
      excludePullRequests: input.excludePullRequests,
    });
    warnings.push(...w.map((text) => `role ${role.name}: ${text}`));
    resources[id] = {
      Type: 'AWS::IAM::Role',
      Properties: {
        RoleName: role.name,
        Description: `Assumed by Jenkins builds of ${input.client.name} through jenkins-oidc`,
        AssumeRolePolicyDocument: policy,
        ...(input.maxSessionDuration && { MaxSessionDuration: input.maxSessionDuration }),
        ...(input.managedPolicyArns.length && { ManagedPolicyArns: input.managedPolicyArns }),
      },
    };
    outputs[`${id}Arn`] = { Description: `ARN of role ${role.name}`, Value: { 'Fn::GetAtt': [id, 'Arn'] } };
  }
  return {
    template: {
      AWSTemplateFormatVersion: '2010-09-09',
      Description: `IAM OIDC provider and roles for Jenkins builds of ${input.client.name} (jenkins-oidc, issuer ${input.issuer})`,
      Resources: resources,
      Outputs: outputs,
    },
    warnings,
  };
}
