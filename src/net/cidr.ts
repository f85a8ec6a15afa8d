// IP addresses and CIDR ranges, for the two places an address decides
// something: which proxies are trusted to report a client's address
// (TRUST_PROXY, http/client-address.ts) and which addresses a controller
// may use its client secret from (--allowed-sources, clients/sources.ts).
//
// An IPv4 address that reaches a dual-stack socket as ::ffff:10.0.0.1 is
// written as 10.0.0.1 everywhere (audit rows, limits, comparisons), so one
// host never has two spellings.
import { BlockList, isIPv4, isIPv6 } from 'node:net';

const MAPPED_IPV4 = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/** The address in its one spelling, or undefined if it is not an IP address. */
export function normalizeAddress(value: string): string | undefined {
  const v = value.trim();
  const mapped = MAPPED_IPV4.exec(v);
  if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
  if (isIPv4(v)) return v;
  // Zone ids (fe80::1%eth0) are local to one host: never a client we can name.
  if (isIPv6(v) && !v.includes('%')) return v.toLowerCase();
  return undefined;
}

export interface Cidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/** "10.0.0.0/8", "2001:db8::/32", or one address (a /32 or /128). Throws a message naming the value. */
export function parseCidr(text: string): Cidr {
  const [addr, bits, extra] = text.trim().split('/');
  const address = normalizeAddress(addr ?? '');
  if (!address || extra !== undefined) throw new Error(`"${text}" is not an IP address or a CIDR range such as 10.0.0.0/8 or 2001:db8::/32`);
  const family = isIPv4(address) ? 'ipv4' : 'ipv6';
  const max = family === 'ipv4' ? 32 : 128;
  if (bits === undefined) return { address, prefix: max, family };
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) throw new Error(`"${text}": the prefix length must be 0-${max}`);
  return { address, prefix: Number(bits), family };
}

/** How a range is shown and stored: the address as given (normalised) and its prefix. */
export function formatCidr(c: Cidr): string {
  return `${c.address}/${c.prefix}`;
}

/** A set of ranges to test addresses against. */
export class AddressSet {
  private readonly list = new BlockList();
  readonly size: number;

  constructor(ranges: readonly Cidr[]) {
    for (const r of ranges) this.list.addSubnet(r.address, r.prefix, r.family);
    this.size = ranges.length;
  }

  static parse(texts: readonly string[]): AddressSet {
    return new AddressSet(texts.map(parseCidr));
  }

  has(address: string | undefined): boolean {
    const a = address === undefined ? undefined : normalizeAddress(address);
    if (!a) return false;
    return this.list.check(a, isIPv4(a) ? 'ipv4' : 'ipv6');
  }
}
