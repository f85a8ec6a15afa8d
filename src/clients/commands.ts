// Jenkins controllers as registered clients: the verbs the CLI calls (and that
// an HTTP admin API could call with the same typed input). Each returns data;
// printing is the CLI's business.
import { checkSessionTagClaims, checkSourceIdentityTemplate, checkTransitiveTagKeys } from '../claims/aws.js';
import { checkClaimTypes, type ClaimTypes } from '../claims/build-claims.js';
import type { BuildClaimName } from '../claims/names.js';
import { checkSubTemplate } from '../claims/sub.js';
import type { Db } from '../store/prisma.js';
import { AUDIT_EVENTS } from '../audit/trail.js';
import { checkAllowedSources } from './sources.js';
import { DomainError, NotFoundError } from '../errors.js';
import { InputError } from '../claims/text.js';
import { CLIENT_SECRET_PREFIX, generateSecret, hashSecret } from '../secrets/bearer-secrets.js';
import { DEFAULT_AUDIENCES, DEFAULT_SUB_CLAIMS, checkAudiences, checkJenkinsUrl, checkMaxTtl, checkName, checkSubClaims } from './validation.js';

export interface ClientView {
  name: string;
  jenkinsUrl: string;
  audiences: string[];
  subClaims: string[];
  /** Overrides subClaims' key:value form when set. */
  subTemplate: string | null;
  /** 'string': build_number, restarted_from, replayed as strings; 'json': number and boolean. */
  claimTypes: ClaimTypes;
  maxRequestTokenTtl: number;
  /** Build claims sent to AWS as session tags; transitive ones a subset. */
  sessionTags: string[];
  transitiveTags: string[];
  /** Source identity template, or null. */
  sourceIdentity: string | null;
  /** CIDRs the client may mint and revoke from; [] is any address. */
  allowedSources: string[];
  enabled: boolean;
  /** e.g. "jocs_…Ab3x": enough for a human to recognise, useless to an attacker. */
  secretHint: string;
  secretRotatedAt: string;
  /** The previous secret while a rotation's overlap lasts, else null. */
  previousSecret: { hint: string; expiresAt: string } | null;
  createdAt: string;
  updatedAt: string;
}

export interface RegisterClientInput {
  name: string;
  jenkinsUrl: string;
  audiences?: string[];
  subClaims?: string[];
  subTemplate?: string;
  /** Default 'string' (every relying party can match it). */
  claimTypes?: string;
  maxRequestTokenTtl?: number;
  sessionTags?: string[];
  transitiveTags?: string[];
  sourceIdentity?: string;
  allowedSources?: string[];
}

export interface UpdateClientInput {
  jenkinsUrl?: string;
  audiences?: string[];
  subClaims?: string[];
  /** '' removes the template (sub_claims' key:value form again). */
  subTemplate?: string;
  claimTypes?: string;
  maxRequestTokenTtl?: number;
  /** [] removes every session tag. */
  sessionTags?: string[];
  transitiveTags?: string[];
  /** '' removes the source identity. */
  sourceIdentity?: string;
  /** [] allows any address again. */
  allowedSources?: string[];
}

type Row = NonNullable<Awaited<ReturnType<Db['client']['findUnique']>>>;

function view(row: Row): ClientView {
  return {
    name: row.name,
    jenkinsUrl: row.jenkinsUrl,
    audiences: row.audiences,
    subClaims: row.subClaims,
    subTemplate: row.subTemplate,
    claimTypes: row.claimTypes as ClaimTypes,
    maxRequestTokenTtl: row.maxRequestTokenTtl,
    sessionTags: row.sessionTagClaims,
    transitiveTags: row.transitiveTagKeys,
    sourceIdentity: row.sourceIdentity,
    allowedSources: row.allowedSources,
    enabled: row.enabled,
    secretHint: `${row.secretPrefix}…${row.secretLast4}`,
    secretRotatedAt: row.secretRotatedAt.toISOString(),
    previousSecret:
      row.previousSecretLast4 !== null && row.previousSecretExpiresAt !== null && row.previousSecretExpiresAt.getTime() > Date.now()
        ? { hint: `${row.secretPrefix}…${row.previousSecretLast4}`, expiresAt: row.previousSecretExpiresAt.toISOString() }
        : null,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}

function secretFields(secret: string) {
  return { secretHash: hashSecret(secret), secretPrefix: CLIENT_SECRET_PREFIX, secretLast4: secret.slice(-4), secretRotatedAt: new Date() };
}

async function find(db: Db, name: string): Promise<Row> {
  const row = await db.client.findUnique({ where: { name } });
  if (!row) throw new NotFoundError(`client "${name}"`, 'list registered clients with: jenkins-oidc clients list');
  return row;
}

export async function registerClient(db: Db, input: RegisterClientInput, maxTtlCeiling: number): Promise<{ client: ClientView; secret: string }> {
  const data = {
    name: checkName(input.name),
    jenkinsUrl: checkJenkinsUrl(input.jenkinsUrl),
    audiences: checkAudiences(input.audiences ?? DEFAULT_AUDIENCES),
    subClaims: checkSubClaims(input.subClaims ?? DEFAULT_SUB_CLAIMS),
    subTemplate: input.subTemplate ? checkSubTemplate(input.subTemplate) : null,
    claimTypes: checkClaimTypes(input.claimTypes ?? 'string'),
    maxRequestTokenTtl: checkMaxTtl(input.maxRequestTokenTtl ?? maxTtlCeiling, maxTtlCeiling),
    allowedSources: checkAllowedSources(input.allowedSources ?? []),
    ...awsFields(input, { sessionTagClaims: [], transitiveTagKeys: [], sourceIdentity: null }),
  };
  if (await db.client.findUnique({ where: { name: data.name } })) {
    throw new DomainError(`client "${data.name}" already exists`, `change it with: jenkins-oidc clients update ${data.name} ...`);
  }
  const secret = generateSecret(CLIENT_SECRET_PREFIX);
  const row = await db.client.create({ data: { ...data, ...secretFields(secret) } });
  return { client: view(row), secret };
}

export async function listClients(db: Db): Promise<ClientView[]> {
  return (await db.client.findMany({ orderBy: { name: 'asc' } })).map(view);
}

export async function showClient(db: Db, name: string): Promise<ClientView> {
  return view(await find(db, name));
}

/**
 * The AWS claim fields to store, validated against each other: transitive
 * tags must stay a subset of the session tags, whichever of the two changes.
 */
function awsFields(input: Pick<UpdateClientInput, 'sessionTags' | 'transitiveTags' | 'sourceIdentity'>, current: Pick<Row, 'sessionTagClaims' | 'transitiveTagKeys' | 'sourceIdentity'>) {
  const out: Partial<Pick<Row, 'sessionTagClaims' | 'transitiveTagKeys' | 'sourceIdentity'>> = {};
  const tags = input.sessionTags !== undefined ? checkSessionTagClaims(input.sessionTags) : (current.sessionTagClaims as BuildClaimName[]);
  if (input.sessionTags !== undefined) out.sessionTagClaims = tags;
  if (input.sessionTags !== undefined && tags.length === 0 && input.transitiveTags === undefined) {
    // Removing every session tag removes the transitive ones with them.
    out.transitiveTagKeys = [];
  } else if (input.transitiveTags !== undefined || input.sessionTags !== undefined) {
    const transitive = checkTransitiveTagKeys(input.transitiveTags ?? current.transitiveTagKeys, tags);
    if (input.transitiveTags !== undefined) out.transitiveTagKeys = transitive;
  }
  if (input.sourceIdentity !== undefined) out.sourceIdentity = input.sourceIdentity === '' ? null : checkSourceIdentityTemplate(input.sourceIdentity);
  return out;
}

export async function updateClient(db: Db, name: string, input: UpdateClientInput, maxTtlCeiling: number): Promise<ClientView> {
  const current = await find(db, name);
  const data = {
    ...(input.jenkinsUrl !== undefined && { jenkinsUrl: checkJenkinsUrl(input.jenkinsUrl) }),
    ...(input.audiences !== undefined && { audiences: checkAudiences(input.audiences) }),
    ...(input.subClaims !== undefined && { subClaims: checkSubClaims(input.subClaims) }),
    ...(input.subTemplate !== undefined && { subTemplate: input.subTemplate === '' ? null : checkSubTemplate(input.subTemplate) }),
    ...(input.claimTypes !== undefined && { claimTypes: checkClaimTypes(input.claimTypes) }),
    ...(input.maxRequestTokenTtl !== undefined && { maxRequestTokenTtl: checkMaxTtl(input.maxRequestTokenTtl, maxTtlCeiling) }),
    ...(input.allowedSources !== undefined && { allowedSources: checkAllowedSources(input.allowedSources) }),
    ...awsFields(input, current),
  };
  if (Object.keys(data).length === 0) {
    throw new DomainError('nothing to update', 'give at least one of --jenkins-url, --audience, --sub-claims, --sub-template, --claim-types, --max-ttl, --session-tags, --transitive-tags, --source-identity, --allowed-sources');
  }
  return view(await db.client.update({ where: { name }, data: { ...data, updatedAt: new Date() } }));
}

/** `--overlap`: at most this long (30 days) may two secrets work at once. */
export const MAX_SECRET_OVERLAP = 30 * 86400;

/**
 * A new secret. Without an overlap the old one stops working at once; with
 * one it keeps working for that many seconds (only the secret current until
 * now: an older one still in its overlap stops at once), so the controller's
 * credential can be updated without a window in which builds get no token.
 * Request tokens already minted keep working either way. The rotation is in
 * the audit trail, and each later use says which secret it was.
 */
export async function rotateClientSecret(db: Db, name: string, overlapSeconds = 0): Promise<{ client: ClientView; secret: string }> {
  if (!Number.isInteger(overlapSeconds) || overlapSeconds < 0 || overlapSeconds > MAX_SECRET_OVERLAP) {
    throw new InputError('overlap', `must be between 0 and ${MAX_SECRET_OVERLAP} seconds (30d), got ${overlapSeconds}`);
  }
  const current = await find(db, name);
  const secret = generateSecret(CLIENT_SECRET_PREFIX);
  const now = new Date();
  const previous = overlapSeconds > 0
    ? { previousSecretHash: current.secretHash, previousSecretLast4: current.secretLast4, previousSecretExpiresAt: new Date(now.getTime() + overlapSeconds * 1000) }
    : { previousSecretHash: null, previousSecretLast4: null, previousSecretExpiresAt: null };
  const [row] = await db.$transaction([
    db.client.update({ where: { name }, data: { ...secretFields(secret), ...previous, updatedAt: now } }),
    db.auditEvent.create({
      data: {
        event: AUDIT_EVENTS.clientSecretRotated,
        clientName: name,
        detail: {
          new_secret: `${CLIENT_SECRET_PREFIX}…${secret.slice(-4)}`,
          previous_secret: `${current.secretPrefix}…${current.secretLast4}`,
          previous_secret_valid_until: previous.previousSecretExpiresAt?.toISOString() ?? null,
        },
      },
    }),
  ]);
  return { client: view(row), secret };
}

/** A disabled client can neither mint nor exchange: its live request tokens die at once. */
export async function setClientEnabled(db: Db, name: string, enabled: boolean): Promise<ClientView> {
  await find(db, name);
  return view(await db.client.update({ where: { name }, data: { enabled, updatedAt: new Date() } }));
}

/** Removes the client and its request tokens; audit rows stay (they name the client as text). */
export async function removeClient(db: Db, name: string): Promise<{ name: string; requestTokensRemoved: number }> {
  await find(db, name);
  return db.$transaction(async (tx) => {
    const { count } = await tx.requestToken.deleteMany({ where: { clientName: name } });
    await tx.client.delete({ where: { name } });
    return { name, requestTokensRemoved: count };
  });
}
