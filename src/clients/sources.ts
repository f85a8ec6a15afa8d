// Where a controller's client secret may be used from. A secret can leak
// through Jenkins in ways no library can prevent (a misconfigured library, a
// plugin, a backup); with allowed sources set, a stolen secret mints nothing
// and revokes nothing from anywhere but the controller's own addresses.
//
// The address compared is ctx.ip: the connection's, or behind TRUST_PROXY the
// one the trusted proxies saw (http/client-address.ts), never a header the
// caller wrote.
import { InputError } from '../claims/text.js';
import { AddressSet, formatCidr, parseCidr } from '../net/cidr.js';

/** A controller needs a handful (its own addresses, a NAT pool); the list rides along with every client lookup. */
export const MAX_ALLOWED_SOURCES = 64;

/** `--allowed-sources`: CIDRs or single addresses, stored normalised (10.0.0.0/8, 192.0.2.7/32). [] allows any address. */
export function checkAllowedSources(values: readonly string[]): string[] {
  if (values.length > MAX_ALLOWED_SOURCES) throw new InputError('allowed_sources', `at most ${MAX_ALLOWED_SOURCES} ranges`);
  const out: string[] = [];
  for (const v of values) {
    let range: string;
    try {
      range = formatCidr(parseCidr(v));
    } catch (err) {
      throw new InputError('allowed_sources', (err as Error).message);
    }
    if (out.includes(range)) throw new InputError('allowed_sources', `${range} is listed twice`);
    out.push(range);
  }
  return out;
}

const sets = new Map<string, AddressSet>();

/** Whether a client with these allowed sources may act from `address`. */
export function isAllowedSource(allowed: readonly string[] | undefined, address: string | undefined): boolean {
  if (!allowed || allowed.length === 0) return true;
  const key = allowed.join(',');
  let set = sets.get(key);
  if (!set) {
    set = AddressSet.parse(allowed);
    // A few clients' lists at most; bounded anyway, as a list can change.
    if (sets.size >= 1000) sets.clear();
    sets.set(key, set);
  }
  return set.has(address);
}
