// One URL story (issue 21): AWS calls the issuer's host, controllers and agents
// the service URL, an internal host where the public Ingress serves only
// discovery and JWKS. The docs said the ISSUER once, and minting got a 404: this
// keeps the Kubernetes manifests, the README's table, docs/jenkins.md (its
// settings table, JCasC and freestyle examples) and docs/aws.md in one voice.
import { readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const hostOf = (file: string) => /^\s+- host: (\S+)$/m.exec(read(file))?.[1];

const publicHost = hostOf('deploy/kubernetes/base/ingress-public.yaml')!;
const internalHost = hostOf('deploy/kubernetes/base/ingress-internal.yaml')!;

test('the public Ingress is on the ISSUER host and routes only discovery and JWKS; the internal one the rest', () => {
  expect(read('deploy/kubernetes/base/configmap.yaml')).toMatch(new RegExp(`^\\s+ISSUER: https://${publicHost}$`, 'm'));
  const paths = (file: string) => [...read(file).matchAll(/^\s+- path: (\S+)$/gm)].map((m) => m[1]);
  expect(paths('deploy/kubernetes/base/ingress-public.yaml')).toEqual(['/.well-known/openid-configuration', '/jwks']);
  expect(paths('deploy/kubernetes/base/ingress-internal.yaml')).toEqual(expect.arrayContaining(['/token', '/token/revocation', '/id-token']));
  expect(publicHost).not.toBe(internalHost);
});

test('the docs send controllers and agents to the internal host, and AWS to the issuer', () => {
  const readme = read('README.md');
  expect(readme).toContain(`the **issuer URL**, \`ISSUER\` (\`https://${publicHost}\`)`);
  expect(readme).toContain(`the **service URL** (\`https://${internalHost}\`): \`JENKINS_OIDC_URL\` in Jenkins`);

  const jenkins = read('docs/jenkins.md');
  expect(jenkins).toContain(`| \`JENKINS_OIDC_URL\` | the **service URL**, \`https://${internalHost}\``);
  expect(jenkins).toMatch(new RegExp(`- key: JENKINS_OIDC_URL\\n\\s+value: https://${internalHost.replaceAll('.', '\\.')}\\b`));
  // The freestyle recipe's calls: every /token, /token/revocation and /id-token URL is on the internal host.
  const calls = [...jenkins.matchAll(/https:\/\/([a-z0-9.-]+)\/(token|id-token)\b/g)].map((m) => m[1]);
  expect(calls.length).toBeGreaterThan(0);
  expect(calls.filter((host) => host !== internalHost)).toEqual([]);

  const aws = read('docs/aws.md');
  expect(aws).toContain('| `JENKINS_ID_TOKEN_REQUEST_URL` | `<service URL>/id-token?api-version=1`');
  expect(aws).not.toMatch(/<ISSUER>\/(id-token|token)\b/);
});
