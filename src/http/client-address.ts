// The address a request came from, as every limit, audit row, log line and
// allowed-sources check sees it (ctx.ip): the connection's peer, or, behind
// proxies the operator trusts (TRUST_PROXY), the address the outermost of
// them saw.
//
// X-Forwarded-For is read from the right: each proxy appends the address of
// the peer it talked to, so only the entries the trusted proxies added mean
// anything; whatever lies to their left was written by the caller and is
// never believed (Koa's own `proxy` mode takes the leftmost entry, which any
// caller can set). TRUST_PROXY says how far to walk:
// - a number of hops: that many entries from the right belong to proxies
//   (`true` is one hop: a load balancer or ingress in front of the service);
// - CIDRs: walk left while the address at hand is one of the proxies.
// An entry that is not an IP address ends the walk, and the address reached
// so far (a proxy's) is used: a header that cannot be trusted is ignored,
// never stored.
import type { Middleware } from 'koa';
import { AddressSet, normalizeAddress, parseCidr, type Cidr } from '../net/cidr.js';

export type TrustProxy = { kind: 'none' } | { kind: 'hops'; hops: number } | { kind: 'cidrs'; ranges: Cidr[] };

export const NO_PROXY: TrustProxy = { kind: 'none' };
const MAX_HOPS = 10;

/** TRUST_PROXY's value: false, true (one hop), a hop count, or comma-separated CIDRs of the proxies. */
export function parseTrustProxy(value: string | undefined): TrustProxy {
  const v = (value ?? '').trim().toLowerCase();
  if (v === '' || v === 'false' || v === '0') return NO_PROXY;
  if (v === 'true') return { kind: 'hops', hops: 1 };
  if (/^\d+$/.test(v)) {
    const hops = Number(v);
    if (hops > MAX_HOPS) throw new Error(`at most ${MAX_HOPS} proxy hops, got ${hops}`);
    return { kind: 'hops', hops };
  }
  const ranges = v.split(',').map((s) => s.trim()).filter(Boolean);
  try {
    return { kind: 'cidrs', ranges: ranges.map(parseCidr) };
  } catch (err) {
    throw new Error(`must be false, true (one proxy hop), a number of hops (1-${MAX_HOPS}) or the proxies' addresses/CIDRs, comma-separated: ${(err as Error).message}`);
  }
}

/** Whether X-Forwarded-For/-Proto are read at all (Koa's `proxy` flag, for the protocol). */
export function trustsProxies(trust: TrustProxy): boolean {
  return trust.kind !== 'none';
}

/**
 * The client's address for a connection from `peer` carrying `forwardedFor`
 * (the X-Forwarded-For header, repeated headers joined with commas).
 */
export function clientAddress(peer: string | undefined, forwardedFor: string | undefined, trust: TrustProxy, proxies?: AddressSet): string {
  const direct = (peer && normalizeAddress(peer)) || peer || '';
  if (trust.kind === 'none' || !forwardedFor || !direct) return direct;
  const entries = forwardedFor.split(',');
  let address = direct;
  const set = proxies ?? (trust.kind === 'cidrs' ? new AddressSet(trust.ranges) : undefined);
  for (let hop = 0; ; hop++) {
    const moreHops = trust.kind === 'hops' ? hop < trust.hops : set!.has(address);
    if (!moreHops || entries.length === 0) return address;
    const next = normalizeAddress(entries.pop()!);
    if (!next) return address;
    address = next;
  }
}

/** First middleware: ctx.ip is the client's address from here on. */
export function resolveClientAddress(trust: TrustProxy): Middleware {
  const proxies = trust.kind === 'cidrs' ? new AddressSet(trust.ranges) : undefined;
  return async function setClientAddress(ctx, next) {
    ctx.request.ip = clientAddress(ctx.req.socket.remoteAddress, ctx.get('x-forwarded-for') || undefined, trust, proxies);
    await next();
  };
}
