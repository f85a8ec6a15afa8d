// Shared rules for free text that ends up inside a signed token. A claim value
// is shown to humans (CloudTrail, audit logs) and matched by trust policies, so
// anything that renders differently from what it matches is refused: control
// characters, invisible formatting (zero-width, bidi overrides) and
// non-NFC forms that look identical to another string.
export class InputError extends Error {
  constructor(readonly field: string, readonly reason: string) {
    super(`${field}: ${reason}`);
    this.name = 'InputError';
  }
}

const INVISIBLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\u2028\u2029]/u;
const INVISIBLE_ALL = new RegExp(INVISIBLE.source, 'gu');

export function checkText(field: string, value: string, maxLength: number): string {
  if (value.length === 0) throw new InputError(field, 'must not be empty');
  if (value.length > maxLength) throw new InputError(field, `must be at most ${maxLength} characters, got ${value.length}`);
  if (INVISIBLE.test(value)) throw new InputError(field, 'must not contain control or invisible formatting characters');
  if (value.normalize('NFC') !== value) throw new InputError(field, 'must be in Unicode NFC form');
  if (value.trim() !== value) throw new InputError(field, 'must not start or end with whitespace');
  return value;
}

/** A strictly positive decimal integer that fits a PostgreSQL INTEGER. */
export function checkPositiveInt(field: string, value: string, max = 2_147_483_647): number {
  if (!/^[1-9][0-9]{0,9}$/.test(value) || Number(value) > max) {
    throw new InputError(field, `must be a positive whole number up to ${max}, got "${truncate(value)}"`);
  }
  return Number(value);
}

export function truncate(value: string, max = 40): string {
  const printable = value.replace(INVISIBLE_ALL, '?');
  return printable.length > max ? `${printable.slice(0, max)}…` : printable;
}

/** An absolute http(s) URL, normalised, without credentials, query-free when asked. */
export function checkUrl(field: string, value: string, { allowQuery = false } = {}): URL {
  checkText(field, value, 2048);
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InputError(field, `must be an absolute http(s) URL, got "${truncate(value)}"`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new InputError(field, 'must be an http or https URL');
  if (url.username || url.password) throw new InputError(field, 'must not contain credentials');
  if (url.hash) throw new InputError(field, 'must not contain a fragment');
  if (!allowQuery && url.search) throw new InputError(field, 'must not contain a query string');
  return url;
}
