// The client address every limit and audit row keys on: from the connection,
// or from the entries the trusted proxies appended to X-Forwarded-For, never
// from what the caller wrote to the left of them.
import { clientAddress, parseTrustProxy } from '../../src/http/client-address.js';
import { AddressSet, normalizeAddress, parseCidr } from '../../src/net/cidr.js';

describe('client address', () => {
  test.each([
    // [case, peer, X-Forwarded-For, TRUST_PROXY, address]
    ['without TRUST_PROXY the header is ignored', '203.0.113.7', '198.51.100.1', 'false', '203.0.113.7'],
    ['a dual-stack socket\'s mapped IPv4 address has one spelling', '::ffff:203.0.113.7', undefined, 'false', '203.0.113.7'],
    ['one hop: the entry the proxy appended, not the caller\'s leftmost', '10.0.0.5', '1.2.3.4, 198.51.100.9', 'true', '198.51.100.9'],
    ['one hop, the caller wrote nothing', '10.0.0.5', '198.51.100.9', '1', '198.51.100.9'],
    ['two hops: CDN then load balancer', '10.0.0.5', '6.6.6.6, 198.51.100.9, 172.16.0.2', '2', '198.51.100.9'],
    ['fewer entries than hops: the leftmost reached', '10.0.0.5', '198.51.100.9', '2', '198.51.100.9'],
    ['no header behind a proxy: the proxy itself', '10.0.0.5', undefined, 'true', '10.0.0.5'],
    ['an entry that is not an address ends the walk at the proxy', '10.0.0.5', '198.51.100.9, <script>', 'true', '10.0.0.5'],
    ['a 4 KB header of junk is never stored', '10.0.0.5', `${'x'.repeat(4000)}`, 'true', '10.0.0.5'],
    ['CIDRs: walk left while the address is a proxy', '10.0.0.5', '6.6.6.6, 198.51.100.9, 10.1.2.3', '10.0.0.0/8', '198.51.100.9'],
    ['CIDRs: a caller connecting directly is not a proxy, whatever it writes', '203.0.113.7', '10.9.9.9, 1.1.1.1', '10.0.0.0/8', '203.0.113.7'],
    ['CIDRs: IPv6 proxies and clients', '2001:db8::1', '2001:DB8:FFFF::9', '2001:db8::/64', '2001:db8:ffff::9'],
    ['CIDRs: a single proxy address', '192.168.1.5', '198.51.100.9', '192.168.1.5', '198.51.100.9'],
  ])('%s', (_name, peer, forwardedFor, trust, expected) => {
    expect(clientAddress(peer, forwardedFor, parseTrustProxy(trust))).toBe(expected);
  });

  test.each([
    ['false', { kind: 'none' }],
    ['', { kind: 'none' }],
    ['true', { kind: 'hops', hops: 1 }],
    ['3', { kind: 'hops', hops: 3 }],
    ['10.0.0.0/8, 2001:db8::/32', { kind: 'cidrs', ranges: [{ address: '10.0.0.0', prefix: 8, family: 'ipv4' }, { address: '2001:db8::', prefix: 32, family: 'ipv6' }] }],
  ])('TRUST_PROXY=%j', (value, expected) => {
    expect(parseTrustProxy(value)).toEqual(expected);
  });

  test('addresses and ranges', () => {
    expect([normalizeAddress('::FFFF:10.0.0.1'), normalizeAddress('fe80::1%eth0'), normalizeAddress('10.0.0.256'), normalizeAddress('2001:DB8::1')]).toEqual(['10.0.0.1', undefined, undefined, '2001:db8::1']);
    expect(() => parseCidr('10.0.0.0/33')).toThrow('"10.0.0.0/33": the prefix length must be 0-32');
    expect(() => parseCidr('10.0.0.0/8/1')).toThrow('"10.0.0.0/8/1" is not an IP address or a CIDR range such as 10.0.0.0/8 or 2001:db8::/32');
    const set = AddressSet.parse(['10.0.0.0/8', '2001:db8::/48']);
    expect([set.has('10.200.0.1'), set.has('::ffff:10.200.0.1'), set.has('11.0.0.1'), set.has('2001:db8:0:1::5'), set.has('2001:db9::1'), set.has('junk'), set.has(undefined)])
      .toEqual([true, true, false, true, false, false, false]);
  });
});
