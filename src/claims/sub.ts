// `sub` is what an AWS trust policy matches (`<issuer>:sub`), so each client
// chooses which claims make it up, in order. Rendering follows GitHub Actions'
// customisable subject: `key:value` pairs joined by `:`, with `:` inside a
// value escaped as `%3A` so a value can never forge an extra pair. `%` itself
// is escaped first, as `%25`, so rendering is one-to-one: without it `a:b` and
// the literal `a%3Ab` would both render `a%3Ab`. Values without `%` render as
// they always did. A claim the build did not carry renders as an empty value,
// which no pattern naming a concrete value can match.
import type { BuildClaimName } from './names.js';
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
