// The two claims AWS STS reads itself from a web identity token, computed at
// mint from the client's settings and the build claims:
//
// - https://aws.amazon.com/tags: session tags, {"principal_tags": {"K": ["v"]},
//   "transitive_tag_keys": ["K"]}. Each client chooses which build claims
//   become tags (the tag key is the claim name). STS refuses the whole call
//   when one value has a character outside [\p{L}\p{Z}\p{N}_.:/=+\-@], and
//   permission policies compare tags (`${aws:PrincipalTag/job}`), so values
//   are escaped one-to-one into that set: "=" starts an escape, and every
//   character outside the set (and "=" itself) becomes "=" and the hex of each
//   of its UTF-8 bytes, as in quoted-printable: `feature%2Flogin` becomes
//   `feature=252Flogin` and can never equal the branch `feature_2Flogin`.
//   A value whose escaped form exceeds AWS's 256 characters is left out of
//   the tags (the mint says so in a warning), never cut: a cut value could
//   equal another build's.
// - https://aws.amazon.com/source_identity: rendered from a per-client template
//   such as "{jenkins_instance}-{build_number}". It follows the build through
//   every role it chains into (CloudTrail shows it), so it is checked against
//   STS's rules (2-64 characters of [\w+=,.@-]) when the template is saved.
//
// Only build claims can be used: they come from the client record or the
// controller's mint call, never from the build itself.
import { BUILD_CLAIMS, isBuildClaim, type BuildClaimName } from './names.js';
import { InputError } from './text.js';

/** STS limits on session tags passed by a web identity token. */
export const TAG_LIMITS = { count: 50, key: 128, value: 256 } as const;

/** RoleSessionName and SourceIdentity: 2-64 characters of [\w+=,.@-] (ASCII \w). */
export const STS_NAME_PATTERN = /^[\w+=,.@-]{2,64}$/;
const NOT_STS_NAME_CHARACTER = /[^\w+=,.@-]/g;
export const SOURCE_IDENTITY_MAX = 64;

export interface AwsClaimSettings {
  /** Build claims sent as session tags (tag key = claim name). Empty: no tags claim. */
  sessionTagClaims: readonly BuildClaimName[];
  /** Subset of sessionTagClaims that stay on the session through role chaining. */
  transitiveTagKeys: readonly BuildClaimName[];
  /** e.g. "{jenkins_instance}-{build_number}"; null: no source identity claim. */
  sourceIdentity: string | null;
}

export const NO_AWS_CLAIMS: AwsClaimSettings = { sessionTagClaims: [], transitiveTagKeys: [], sourceIdentity: null };

export interface SessionTagsClaim {
  principal_tags: Record<string, [string]>;
  transitive_tag_keys?: string[];
}

type ClaimValues = Partial<Record<BuildClaimName, string | number | boolean>>;

/** Outside AWS's tag alphabet, or "=", the escape character itself. */
const ESCAPED_IN_TAG = /[^\p{L}\p{Z}\p{N}_.:/+\-@]/gu;

/** One-to-one into AWS's tag alphabet: "=" and every character outside it as =XX per UTF-8 byte. */
export function escapeTagValue(value: string): string {
  return value.replace(ESCAPED_IN_TAG, (ch) => Array.from(Buffer.from(ch, 'utf8'), (b) => `=${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
}

/** The inverse of escapeTagValue (for tools and tests that read tags back). */
export function unescapeTagValue(tag: string): string {
  return tag.replace(/(?:=[0-9A-F]{2})+/g, (run) => Buffer.from(run.split('=').slice(1).map((h) => parseInt(h, 16))).toString('utf8'));
}

export function sanitizeStsName(value: string): string {
  return value.replace(NOT_STS_NAME_CHARACTER, '_');
}

export function checkSessionTagClaims(values: readonly string[]): BuildClaimName[] {
  if (values.length > TAG_LIMITS.count) throw new InputError('session_tags', `at most ${TAG_LIMITS.count} session tags`);
  const seen = new Set<string>();
  for (const v of values) {
    if (!isBuildClaim(v)) throw new InputError('session_tags', `"${v}" is not a build claim; choose from ${BUILD_CLAIMS.join(', ')}`);
    if (seen.has(v)) throw new InputError('session_tags', `"${v}" is listed twice`);
    seen.add(v);
  }
  return values as BuildClaimName[];
}

export function checkTransitiveTagKeys(values: readonly string[], sessionTags: readonly BuildClaimName[]): BuildClaimName[] {
  const seen = new Set<string>();
  for (const v of values) {
    if (!(sessionTags as readonly string[]).includes(v)) {
      throw new InputError('transitive_tags', `"${v}" is not one of this client's session tags (${sessionTags.join(', ') || 'none'}); a transitive tag must also be a session tag`);
    }
    if (seen.has(v)) throw new InputError('transitive_tags', `"${v}" is listed twice`);
    seen.add(v);
  }
  return values as BuildClaimName[];
}

type TemplatePart = { literal: string } | { claim: BuildClaimName };

export function parseSourceIdentityTemplate(template: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  const re = /\{([^{}]*)\}|([^{}]+)|([{}])/g;
  for (const m of template.matchAll(re)) {
    if (m[3]) throw new InputError('source_identity', `unbalanced "${m[3]}" in "${template}"; write claims as {claim_name}`);
    if (m[2] !== undefined) {
      const bad = m[2].match(NOT_STS_NAME_CHARACTER);
      if (bad) {
        throw new InputError('source_identity', `"${bad[0]}" is not allowed; AWS accepts only letters, digits and _ + = , . @ - in a source identity`);
      }
      parts.push({ literal: m[2] });
    } else {
      const name = m[1]!;
      if (!isBuildClaim(name)) throw new InputError('source_identity', `{${name}} is not a build claim; choose from ${BUILD_CLAIMS.join(', ')}`);
      parts.push({ claim: name });
    }
  }
  return parts;
}

/**
 * Validates a template when a client is saved: only known claims, only
 * characters STS accepts, and room for every claim to keep at least one
 * character within the 64 allowed.
 */
export function checkSourceIdentityTemplate(template: string): string {
  if (template.length === 0) throw new InputError('source_identity', 'must not be empty (omit it to send no source identity)');
  const parts = parseSourceIdentityTemplate(template);
  const literal = parts.reduce((n, p) => n + ('literal' in p ? p.literal.length : 0), 0);
  const claims = parts.filter((p) => 'claim' in p).length;
  if (literal + claims > SOURCE_IDENTITY_MAX) {
    throw new InputError('source_identity', `"${template}" leaves no room for its claims within the ${SOURCE_IDENTITY_MAX} characters AWS allows`);
  }
  if (claims === 0 && !STS_NAME_PATTERN.test(template)) {
    throw new InputError('source_identity', `"${template}" must be 2-${SOURCE_IDENTITY_MAX} characters`);
  }
  return template;
}

/**
 * Renders the source identity for one build. Characters STS refuses become
 * "_"; a result over 64 characters is shortened by cutting the longest claim
 * value first, so short facts such as the build number survive. A result under
 * two characters (claims the build did not carry) means no source identity.
 */
export function renderSourceIdentity(template: string, values: ClaimValues): string | undefined {
  const parts = parseSourceIdentityTemplate(template);
  const rendered = parts.map((p) => ('literal' in p ? p.literal : sanitizeStsName(String(values[p.claim] ?? ''))));
  const claimIndexes = parts.flatMap((p, i) => ('claim' in p ? [i] : []));
  let total = rendered.reduce((n, s) => n + s.length, 0);
  while (total > SOURCE_IDENTITY_MAX) {
    const longest = claimIndexes.reduce((a, b) => (rendered[b]!.length > rendered[a]!.length ? b : a));
    rendered[longest] = rendered[longest]!.slice(0, -1);
    total -= 1;
  }
  const value = rendered.join('');
  return STS_NAME_PATTERN.test(value) ? value : undefined;
}

/**
 * The tags claim for one build, or undefined when no tag applies. `warnings`
 * receives one line per tag left out because its escaped value is too long.
 */
export function renderSessionTags(settings: AwsClaimSettings, values: ClaimValues, warnings: string[] = []): SessionTagsClaim | undefined {
  const principal_tags: Record<string, [string]> = {};
  for (const key of settings.sessionTagClaims) {
    const value = values[key];
    if (value === undefined) continue;
    const escaped = escapeTagValue(String(value));
    // Characters, as AWS counts them (code points).
    const length = Array.from(escaped).length;
    if (length > TAG_LIMITS.value) {
      warnings.push(`session tag ${key} left out: its value is ${length} characters once escaped for AWS, which allows ${TAG_LIMITS.value}`);
      continue;
    }
    principal_tags[key] = [escaped];
  }
  if (Object.keys(principal_tags).length === 0) return undefined;
  const transitive = settings.transitiveTagKeys.filter((k) => k in principal_tags);
  return transitive.length ? { principal_tags, transitive_tag_keys: transitive } : { principal_tags };
}
