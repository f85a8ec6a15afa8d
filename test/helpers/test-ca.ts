// A private certificate authority made for one test run with openssl: a root,
// an intermediate, and a server certificate for 127.0.0.1 and localhost. The
// servers send the server certificate with the intermediate (not the root),
// as public sites do, so the thumbprint AWS computes is the intermediate's.
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface TestCa {
  dir: string;
  /** PEM file of the root: give it to NODE_EXTRA_CA_CERTS or an https.Agent's ca. */
  rootFile: string;
  rootPem: string;
  intermediatePem: string;
  serverKeyPem: string;
  /** Server certificate followed by the intermediate. */
  serverChainPem: string;
  /** SHA-1 of the intermediate's DER, lower-case hex: what AWS would use as the thumbprint. */
  intermediateSha1: string;
}

export function createTestCa(): TestCa {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'jo-test-ca-'));
  const f = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('/usr/bin/openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const key = (name: string) => openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', f(name));

  writeFileSync(f('ca.ext'), 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n');
  writeFileSync(f('int.ext'), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
  writeFileSync(
    f('server.ext'),
    'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nauthorityKeyIdentifier=keyid\n',
  );

  key('root.key');
  openssl('req', '-x509', '-new', '-key', f('root.key'), '-subj', '/CN=jenkins-oidc test root CA', '-days', '2', '-out', f('root.pem'), '-extensions', 'v3_ca', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  key('int.key');
  openssl('req', '-new', '-key', f('int.key'), '-subj', '/CN=jenkins-oidc test intermediate CA', '-out', f('int.csr'));
  openssl('x509', '-req', '-in', f('int.csr'), '-CA', f('root.pem'), '-CAkey', f('root.key'), '-CAcreateserial', '-days', '2', '-extfile', f('int.ext'), '-out', f('int.pem'));
  key('server.key');
  openssl('req', '-new', '-key', f('server.key'), '-subj', '/CN=127.0.0.1', '-out', f('server.csr'));
  openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('int.pem'), '-CAkey', f('int.key'), '-CAcreateserial', '-days', '2', '-extfile', f('server.ext'), '-out', f('server.pem'));

  const read = (name: string) => readFileSync(f(name), 'utf8');
  const intermediatePem = read('int.pem');
  return {
    dir,
    rootFile: f('root.pem'),
    rootPem: read('root.pem'),
    intermediatePem,
    serverKeyPem: read('server.key'),
    serverChainPem: read('server.pem') + intermediatePem,
    intermediateSha1: createHash('sha1').update(new X509Certificate(intermediatePem).raw).digest('hex'),
  };
}

/**
 * A server certificate for other names, from the same intermediate: for a
 * stand-in that answers as a public host (login.microsoftonline.com) to a
 * client routed to it through a proxy and told to trust this CA.
 */
export function issueServerCertificate(ca: TestCa, dnsNames: string[]): { keyPem: string; chainPem: string } {
  const stem = `host-${createHash('sha256').update(dnsNames.join(',')).digest('hex').slice(0, 8)}`;
  const f = (name: string) => path.join(ca.dir, `${stem}.${name}`);
  const openssl = (...args: string[]) => execFileSync('/usr/bin/openssl', args, { cwd: ca.dir, stdio: ['ignore', 'pipe', 'pipe'] });
  writeFileSync(
    f('ext'),
    `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=${dnsNames.map((n) => `DNS:${n}`).join(',')}\nauthorityKeyIdentifier=keyid\n`,
  );
  openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', f('key'));
  openssl('req', '-new', '-key', f('key'), '-subj', `/CN=${dnsNames[0]}`, '-out', f('csr'));
  openssl('x509', '-req', '-in', f('csr'), '-CA', 'int.pem', '-CAkey', 'int.key', '-CAcreateserial', '-days', '2', '-extfile', f('ext'), '-out', f('pem'));
  return { keyPem: readFileSync(f('key'), 'utf8'), chainPem: readFileSync(f('pem'), 'utf8') + ca.intermediatePem };
}
