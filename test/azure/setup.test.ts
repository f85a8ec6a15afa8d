// `azure setup` as a function: the federated credentials it writes carry the
// exact sub the exchange renders for a build of each job (the same rendering
// code, checked here against buildClaims), and it warns or refuses where
// Entra's documented rules would make a credential useless. The CLI form and
// Entra's own checks are in azure.test.ts.
import { azureSetup, type AzureClient } from '../../src/azure/setup.js';
import { buildClaims } from '../../src/claims/build-claims.js';
import { InputError } from '../../src/claims/text.js';

const ISSUER = 'https://oidc.example.com';
const AUD = 'api://AzureADTokenExchange';
const client = (over: Partial<AzureClient> = {}): AzureClient => ({
  name: 'ci-main',
  jenkinsUrl: 'https://jenkins.example.com/',
  audiences: ['sts.amazonaws.com', AUD],
  subClaims: ['jenkins_instance', 'job'],
  subTemplate: null,
  ...over,
});
const input = (over: Partial<Parameters<typeof azureSetup>[0]> = {}) => ({
  issuer: ISSUER,
  signingAlg: 'RS256',
  client: client(),
  app: '11111111-2222-3333-4444-555555555555',
  jobs: ['team/app/main'],
  refs: [],
  ...over,
});

test('one credential per job: the issuer as served, the exact sub of its builds, the one audience Entra accepts', () => {
  const { setup, warnings } = azureSetup(input({ jobs: ['team/app/main', 'team/app:odd name'] }));
  expect(warnings).toEqual([]);
  expect(setup).toEqual({
    app: '11111111-2222-3333-4444-555555555555',
    credentials: [
      { name: 'ci-main-team-app-main', issuer: ISSUER, subject: 'jenkins_instance:ci-main:job:team/app/main', description: 'Jenkins ci-main: team/app/main (jenkins-oidc)', audiences: [AUD] },
      { name: 'ci-main-team-app-odd-name', issuer: ISSUER, subject: 'jenkins_instance:ci-main:job:team/app%3Aodd name', description: 'Jenkins ci-main: team/app:odd name (jenkins-oidc)', audiences: [AUD] },
    ],
    commands: [
      `az ad app federated-credential create --id 11111111-2222-3333-4444-555555555555 --parameters '{"name":"ci-main-team-app-main","issuer":"${ISSUER}","subject":"jenkins_instance:ci-main:job:team/app/main","description":"Jenkins ci-main: team/app/main (jenkins-oidc)","audiences":["${AUD}"]}'`,
      `az ad app federated-credential create --id 11111111-2222-3333-4444-555555555555 --parameters '{"name":"ci-main-team-app-odd-name","issuer":"${ISSUER}","subject":"jenkins_instance:ci-main:job:team/app%3Aodd name","description":"Jenkins ci-main: team/app:odd name (jenkins-oidc)","audiences":["${AUD}"]}'`,
    ],
  });
  // The subject is what the exchange puts in sub for a build of that job.
  const built = buildClaims({ job: 'team/app:odd name', build_number: '7', build_url: 'https://jenkins.example.com/job/x/7/' }, { name: 'ci-main', jenkinsUrl: 'https://jenkins.example.com/', subClaims: ['jenkins_instance', 'job'] });
  expect(built.sub).toBe(setup.credentials[1]!.subject);
});

test('credential names: only letters, digits, - and _, unique per app', () => {
  const { setup } = azureSetup(input({ jobs: ['team/app main', 'team/app:main', 'x'] }));
  expect(setup.credentials.map((c) => c.name)).toEqual(['ci-main-team-app-main', 'ci-main-team-app-main-2', 'ci-main-x']);
});

test('a sub template with a hashed job and one credential per job and branch', () => {
  const c = client({ subTemplate: '{jenkins_instance}:{job|sha256}:{ref}' });
  const { setup, warnings } = azureSetup(input({ client: c, refs: ['refs/heads/main', 'refs/tags/v1'] }));
  expect(warnings).toEqual([]);
  const built = buildClaims({ job: 'team/app/main', build_number: '3', build_url: 'https://jenkins.example.com/job/x/3/', ref: 'refs/tags/v1' }, { name: 'ci-main', jenkinsUrl: 'https://jenkins.example.com/', subClaims: [], subTemplate: c.subTemplate });
  expect(setup.credentials.map((x) => [x.name, x.subject])).toEqual([
    ['ci-main-team-app-main-main', built.sub.replace('refs/tags/v1', 'refs/heads/main')],
    ['ci-main-team-app-main-v1', built.sub],
  ]);
});

test.each<[string, Partial<AzureClient>, string[], string]>([
  ['a sub holding build_number', { subClaims: ['jenkins_instance', 'job', 'build_number'] }, [],
    "client ci-main's sub holds build_number, which changes from build to build; Entra matches subject exactly, without wildcards, so these credentials cannot match every build. Make the sub name the job only: jenkins-oidc clients update ci-main --sub-template '{jenkins_instance}:{job}'"],
  ['a sub holding ref without --ref', { subClaims: ['jenkins_instance', 'job', 'ref'] }, [],
    "client ci-main's sub holds ref, which changes with the branch (give --ref for each branch); Entra matches subject exactly, without wildcards, so these credentials cannot match every build. Make the sub name the job only: jenkins-oidc clients update ci-main --sub-template '{jenkins_instance}:{job}'"],
])('warns when the sub is not exact: %s', (_name, over, refs, warning) => {
  expect(azureSetup(input({ client: client(over), refs })).warnings).toEqual([warning]);
});

test("warns past Entra's 20 credentials per app, and not at 20", () => {
  const jobs = (n: number) => Array.from({ length: n }, (_, i) => `team/app-${i}`);
  expect(azureSetup(input({ jobs: jobs(20) })).warnings).toEqual([]);
  const { setup, warnings } = azureSetup(input({ jobs: jobs(21) }));
  expect(setup.credentials).toHaveLength(21);
  expect(warnings).toEqual([
    '21 federated credentials for app 11111111-2222-3333-4444-555555555555; Entra allows at most 20 per app. Split the jobs across apps (one app per team or folder), or name fewer branches (--ref)',
  ]);
});

test.each<[string, Partial<Parameters<typeof azureSetup>[0]>, string]>([
  ['an ES256 service', { signingAlg: 'ES256' }, 'SIGNING_ALG: this service signs with ES256; Microsoft Entra supports only issuers whose tokens are signed with RS256. Keep SIGNING_ALG=RS256 while Azure trusts this service'],
  ['a client that may not mint api://AzureADTokenExchange', { client: client({ audiences: ['sts.amazonaws.com'] }) },
    '--client: client ci-main may not mint Entra\'s audience api://AzureADTokenExchange; add it: jenkins-oidc clients update ci-main --audience sts.amazonaws.com,api://AzureADTokenExchange'],
  ['--ref for a sub without ref', { refs: ['refs/heads/main'] }, "--ref: client ci-main's sub does not hold ref, so every branch of a job presents the same sub: one credential per job covers them all"],
  ['two jobs with one sub', { client: client({ subClaims: ['jenkins_instance'] }), jobs: ['a', 'b'] }, '--job: two credentials would have the same subject jenkins_instance:ci-main; Entra refuses a repeated issuer and subject'],
  ['an app that is not an ID', { app: 'my app' }, '--app: must be the app registration\'s application (client) ID or object ID, got "my app"'],
])('refuses %s', (_name, over, message) => {
  const run = () => azureSetup(input(over));
  expect(run).toThrow(InputError);
  expect(run).toThrow(message);
});
