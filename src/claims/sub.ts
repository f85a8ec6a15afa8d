// `sub` is what an AWS trust policy matches (`<issuer>:sub`), so each client
// chooses which claims make it up, in order. Rendering follows GitHub Actions'
// customisable subject: `key:value` pairs joined by `:`, with `:` inside a
// value escaped as `%3A` so a value can never forge an extra pair. `%` itself
// is escaped first, as `%25`, so rendering is one-to-one: without it `a:b` and
// the literal `a%3Ab` would both render `a%3Ab`. Values without `%` render as
// they always did. A claim the build did not carry renders as an empty value,
// which no pattern naming a concrete value can match.
import { createHash } from 'node:crypto';
import { BUILD_CLAIMS, isBuildClaim, type BuildClaimName } from './names.js';
import { InputError } from './text.js';

/** AWS `SubjectFromWebIdentityToken` is 6-255 characters. */
export const SUB_MIN = 6;
export const SUB_MAX = 255;

/** One claim value as written in `sub`: `%` -> `%25` first, then `:` -> `%3A`. */
export function escapeSubValue(value: string): string {
  return value.replaceAll('%', '%25').replaceAll(':', '%3A');
}

export function renderSub(keys: readonly BuildClaimName[], claims: Partial<Record<BuildClaimName, string | number | boolean>>): string {
  const sub = keys.map((key) => `${key}:${escapeSubValue(String(claims[key] ?? ''))}`).join(':');
  if (sub.length > SUB_MAX) {
    throw new InputError(
      'sub',
      `the subject rendered from this client's sub claim keys (${keys.join(',')}) is ${sub.length} characters; AWS accepts at most ${SUB_MAX}. ` +
        'Use fewer or shorter claims: jenkins-oidc clients update NAME --sub-claims ...',
    );
  }
  if (sub.length < SUB_MIN) throw new InputError('sub', `the rendered subject "${sub}" is shorter than the ${SUB_MIN} characters AWS requires`);
  return sub;
}

// A sub template is the other way to shape `sub`, for relying parties that
// the key:value form does not fit: Google maps `google.subject` from the
// token and holds at most 127 bytes, and Azure matches `sub` exactly, so a
// client may write `{jenkins_instance}:{job|sha256}` (a long job name hashed
// to 43 characters, still unique) or `jenkins/{jenkins_instance}:{job}`.
// It stays one-to-one: values are escaped as above (no raw ":" in a value),
// and two placeholders must be separated by literal text containing ":",
// so one sub can only be read back one way. It must name the controller
// ({jenkins_instance} or {jenkins_url}, unhashed) for the same reason
// sub_claims must: another controller's job of the same name would
// otherwise present the same sub.

/** Literal template text: the characters trust policies and Google's mapping handle as themselves. */
const TEMPLATE_LITERAL = /^[A-Za-z0-9_.:/=+@-]*$/;
const PLACEHOLDER = /\{([a-z_]+)(\|sha256)?\}/g;

export interface SubTemplatePart {
  literal: string;
  claim?: BuildClaimName;
  hashed?: boolean;
}

/** Parsed template: literal, placeholder, literal, ... ; validated as described above. */
export function parseSubTemplate(template: string): SubTemplatePart[] {
  if (template.length === 0 || template.length > 255) throw new InputError('sub_template', 'must be 1-255 characters');
  const parts: SubTemplatePart[] = [];
  let at = 0;
  for (const m of template.matchAll(PLACEHOLDER)) {
    const literal = template.slice(at, m.index);
    const claim = m[1]!;
    if (!isBuildClaim(claim)) throw new InputError('sub_template', `{${claim}} is not a build claim; choose from ${BUILD_CLAIMS.join(', ')}`);
    parts.push({ literal, claim, hashed: m[2] !== undefined });
    at = m.index + m[0].length;
  }
  parts.push({ literal: template.slice(at) });
  for (const { literal } of parts) {
    if (!TEMPLATE_LITERAL.test(literal)) {
      throw new InputError('sub_template', `"${literal}" outside a placeholder: use letters, digits and _ . : / = + @ - and placeholders {claim} or {claim|sha256}`);
    }
  }
  const placeholders = parts.filter((p) => p.claim);
  if (placeholders.length === 0) throw new InputError('sub_template', 'has no {claim} placeholder');
  for (let i = 1; i < parts.length - 1; i++) {
    if (!parts[i]!.literal.includes(':')) {
      throw new InputError('sub_template', `{${parts[i - 1]!.claim}} and {${parts[i]!.claim}} must be separated by text containing ":" (values write ":" as %3A, so the sub reads back one way only)`);
    }
  }
  const names = placeholders.map((p) => p.claim);
  if (new Set(names).size !== names.length) throw new InputError('sub_template', 'names a claim twice');
  if (!placeholders.some((p) => (p.claim === 'jenkins_instance' || p.claim === 'jenkins_url') && !p.hashed)) {
    throw new InputError('sub_template', 'must include {jenkins_instance} (or {jenkins_url}), unhashed, or builds of another controller could present the same sub');
  }
  return parts;
}

export function checkSubTemplate(template: string): string {
  parseSubTemplate(template);
  return template;
}

/** base64url SHA-256: 43 characters whatever the value, and no ":" to escape. */
export function hashSubValue(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('base64url');
}

export function renderSubTemplate(template: string, claims: Partial<Record<BuildClaimName, string | number | boolean>>): string {
  const sub = parseSubTemplate(template)
    .map(({ literal, claim, hashed }) => {
      if (!claim) return literal;
      const value = String(claims[claim] ?? '');
      return literal + (hashed ? hashSubValue(value) : escapeSubValue(value));
    })
    .join('');
  if (sub.length > SUB_MAX) {
    throw new InputError('sub', `the subject rendered from this client's sub template is ${sub.length} characters; AWS accepts at most ${SUB_MAX}. Hash long claims ({job|sha256}): jenkins-oidc clients update NAME --sub-template ...`);
  }
  if (sub.length < SUB_MIN) throw new InputError('sub', `the rendered subject "${sub}" is shorter than the ${SUB_MIN} characters AWS requires`);
  return sub;
}

/** Google Cloud's google.subject: at most 127 bytes (Workload Identity Federation attribute mapping). */
export const GOOGLE_SUBJECT_MAX_BYTES = 127;

/** Claims whose values are ASCII without ":" (a slug, digits, hex, a fixed word): one byte per character. */
const ASCII_WITHOUT_COLON = new Set<BuildClaimName>(['jenkins_instance', 'build_number', 'ref_type', 'commit', 'replayed', 'restarted_from']);

/**
 * The longest sub (UTF-8 bytes) a client's settings can render, from the
 * mint limits: a value escapes to at most 3 bytes per character ("%3A"), and
 * a character is at most 4 bytes, so 4 per character bounds both.
 */
export function longestSubBytes(settings: { subClaims: readonly BuildClaimName[]; subTemplate: string | null }, limits: Partial<Record<BuildClaimName, number>>): number {
  const valueBytes = (claim: BuildClaimName, hashed = false) => (hashed ? 43 : (ASCII_WITHOUT_COLON.has(claim) ? 1 : 4) * (limits[claim] ?? 0));
  if (settings.subTemplate === null) {
    return settings.subClaims.reduce((n, key, i) => n + (i ? 1 : 0) + key.length + 1 + valueBytes(key), 0);
  }
  return parseSubTemplate(settings.subTemplate).reduce((n, p) => n + p.literal.length + (p.claim ? valueBytes(p.claim, p.hashed) : 0), 0);
}
