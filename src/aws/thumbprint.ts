// The thumbprint AWS IAM computes for an OIDC provider: the SHA-1 of the last
// certificate the issuer's server sends in its TLS chain (the top
// intermediate CA, or the root when the server sends it). AWS ignores it for
// certificates from CAs it trusts, but a private CA needs it.
//
// Node completes a peer's chain from the local trust store when it can, which
// would report a root the server never sent. Connecting with an empty trust
// store (ca: []) leaves exactly the served chain; nothing is verified here,
// only read.
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { DomainError } from '../errors.js';

export interface Thumbprint {
  url: string;
  thumbprint: string;
  /** The certificate the thumbprint is of. */
  subject: string;
  issuer: string;
  validTo: string;
  /** Subjects of the chain as served, leaf first. */
  chain: string[];
}

function dn(fields: tls.Certificate | undefined): string {
  if (!fields) return '';
  return Object.entries(fields)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join('+') : v}`)
    .join(', ');
}

export async function issuerThumbprint(target: string, timeoutMs = 10_000): Promise<Thumbprint> {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new DomainError(`"${target}" is not a URL`, 'give the issuer URL, e.g. jenkins-oidc aws thumbprint https://oidc.example.com');
  }
  if (url.protocol !== 'https:') throw new DomainError(`${target} is not https: AWS only trusts https issuers`);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port || 443);
  const peer = await new Promise<tls.DetailedPeerCertificate>((resolve, reject) => {
    const socket = tls.connect({ host, port, servername: isIP(host) ? undefined : host, ca: [], rejectUnauthorized: false });
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no TLS handshake with ${host}:${port} within ${timeoutMs / 1000} s`)));
    socket.once('secureConnect', () => {
      const cert = socket.getPeerCertificate(true);
      socket.end();
      resolve(cert);
    });
    socket.once('error', reject);
  }).catch((err: Error) => {
    throw new DomainError(`cannot read the TLS certificate chain of ${host}:${port}: ${err.message}`);
  });
  if (!peer.raw) throw new DomainError(`${host}:${port} sent no certificate`);
  const chain: tls.DetailedPeerCertificate[] = [peer];
  let last = peer;
  while (last.issuerCertificate && last.issuerCertificate !== last && last.issuerCertificate.fingerprint256 !== last.fingerprint256) {
    last = last.issuerCertificate;
    chain.push(last);
  }
  return {
    url: `https://${url.host}${url.pathname.replace(/\/+$/, '')}`,
    thumbprint: createHash('sha1').update(last.raw).digest('hex'),
    subject: dn(last.subject),
    issuer: dn(last.issuer),
    validTo: new Date(last.valid_to).toISOString(),
    chain: chain.map((c) => dn(c.subject)),
  };
}
