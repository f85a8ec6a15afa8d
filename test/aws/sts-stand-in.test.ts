// The STS stand-in itself, spoken to in STS's query protocol: every other AWS
// test trusts its verdicts, so each rule it applies is shown here with the
// status, error code and XML shape STS answers with.
import https from 'node:https';
import { startAwsLab, trustPolicyFor, type AwsLab } from '../helpers/aws-lab.js';
import { exchange } from '../helpers/service.js';

const ACCOUNT = '123456789012';
const ROLE = `arn:aws:iam::${ACCOUNT}:role/deploy`;
let lab: AwsLab;
let token: string;

beforeAll(async () => {
  lab = await startAwsLab();
  await lab.addClient({ name: 'ci-main' });
  lab.sts.addRole(ROLE, trustPolicyFor(lab.providerArn, lab.issuer, 'jenkins_instance:ci-main:job:folder/*'));
  const env = await lab.buildEnv('ci-main');
  token = (await exchange(lab.t, env.JENKINS_ID_TOKEN_REQUEST_TOKEN!)).json.access_token as string;
});
afterAll(async () => lab.stop());
beforeEach(() => {
  lab.sts.clockOffsetSeconds = 0;
});

function call(params: Record<string, string>): Promise<{ status: number; body: string }> {
  const body = new URLSearchParams({ Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: ROLE, RoleSessionName: 'test-session', WebIdentityToken: token, ...params }).toString();
  return new Promise((resolve, reject) => {
    const req = https.request(lab.sts.url, { method: 'POST', ca: lab.ca.rootPem, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, body: text.replace(/<RequestId>[^<]+<\/RequestId>/g, '<RequestId>ID</RequestId>') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const code = (body: string) => /<Code>([^<]+)<\/Code>/.exec(body)?.[1];
const message = (body: string) => /<Message>([^<]*)<\/Message>/.exec(body)?.[1];
const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');

test('a valid token for an admitting role: the AssumeRoleWithWebIdentityResponse shape', async () => {
  const res = await call({});
  expect(res.status).toBe(200);
  expect(res.body).toMatch(
    new RegExp(
      [
        '^<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">',
        '  <AssumeRoleWithWebIdentityResult>',
        '    <SubjectFromWebIdentityToken>jenkins_instance:ci-main:job:folder/app</SubjectFromWebIdentityToken>',
        '    <Audience>sts.amazonaws.com</Audience>',
        '    <AssumedRoleUser>',
        `      <Arn>arn:aws:sts::${ACCOUNT}:assumed-role/deploy/test-session</Arn>`,
        '      <AssumedRoleId>AROA[0-9A-F]{16}:test-session</AssumedRoleId>',
        '    </AssumedRoleUser>',
        '    <Credentials>',
        '      <SessionToken>[A-Za-z0-9+/=]+</SessionToken>',
        '      <SecretAccessKey>[A-Za-z0-9+/=]{40}</SecretAccessKey>',
        '      <Expiration>\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ</Expiration>',
        '      <AccessKeyId>ASIA[0-9A-F]{16}</AccessKeyId>',
        '    </Credentials>',
        `    <Provider>${lab.issuer}</Provider>`,
        '  </AssumeRoleWithWebIdentityResult>',
        '  <ResponseMetadata>',
        '    <RequestId>ID</RequestId>',
        '  </ResponseMetadata>',
        '</AssumeRoleWithWebIdentityResponse>',
        '$',
      ].join('\n'),
    ),
  );
});

test('an error: the ErrorResponse shape', async () => {
  const res = await call({ RoleArn: `arn:aws:iam::${ACCOUNT}:role/missing` });
  expect(res).toEqual({
    status: 403,
    body: [
      '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">',
      '  <Error>',
      '    <Type>Sender</Type>',
      '    <Code>AccessDenied</Code>',
      '    <Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message>',
      '  </Error>',
      '  <RequestId>ID</RequestId>',
      '</ErrorResponse>',
      '',
    ].join('\n'),
  });
});

test.each<[string, () => Record<string, string>, number, string, string | RegExp]>([
  ['a tampered signature', () => ({ WebIdentityToken: `${token.slice(0, -4)}AAAA` }), 400, 'InvalidIdentityToken', 'The web identity token that was passed could not be validated by AWS. Get a new identity token from the identity provider and then retry the request.'],
  ['a kid the JWKS does not have', () => {
    const [, payload, sig] = token.split('.');
    return { WebIdentityToken: `${b64({ alg: 'RS256', kid: 'not-published', typ: 'JWT' })}.${payload}.${sig}` };
  }, 400, 'InvalidIdentityToken', "Unable to find a matching key for kid not-published in the issuer's JWKS"],
  ['a role that does not exist (AWS does not say so)', () => ({ RoleArn: 'arn:aws:iam::999999999999:role/deploy' }), 403, 'AccessDenied', 'Not authorized to perform sts:AssumeRoleWithWebIdentity'],
  ['a session name outside STS\'s rules', () => ({ RoleSessionName: 'a b' }), 400, 'ValidationError', "1 validation error detected: Value 'a b' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"],
  ['a duration above the role\'s MaxSessionDuration', () => ({ DurationSeconds: '7200' }), 400, 'ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.'],
  ['an issuer AWS cannot reach', () => {
    lab.sts.addOidcProvider(ACCOUNT, 'https://127.0.0.1:1', ['sts.amazonaws.com']);
    const now = Math.floor(Date.now() / 1000);
    return { WebIdentityToken: `${b64({ alg: 'RS256', kid: 'k' })}.${b64({ iss: 'https://127.0.0.1:1', aud: 'sts.amazonaws.com', sub: 'x', iat: now, exp: now + 60 })}.c2ln` };
  }, 400, 'IDPCommunicationError', "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements"],
  ['an issuer with no IAM provider', () => {
    const [h, , sig] = token.split('.');
    return { WebIdentityToken: `${h}.${b64({ iss: 'https://oidc.other.example', aud: 'sts.amazonaws.com' })}.${sig}` };
  }, 400, 'InvalidIdentityToken', 'No OpenIDConnect provider found in your account for https://oidc.other.example'],
])('%s', async (_name, params, status, expectedCode, expectedMessage) => {
  const res = await call(params());
  expect([res.status, code(res.body)]).toEqual([status, expectedCode]);
  expect(message(res.body)?.replace(/&apos;/g, "'").replace(/&amp;/g, '&')).toEqual(expectedMessage);
});

test('the stand-in clock: a token before its nbf, and after its exp', async () => {
  lab.sts.clockOffsetSeconds = -3600;
  const early = await call({});
  expect([early.status, code(early.body), message(early.body)]).toEqual([400, 'InvalidIdentityToken', 'Token is not yet valid (nbf)']);
  lab.sts.clockOffsetSeconds = 301;
  const late = await call({});
  expect([late.status, code(late.body)]).toEqual([400, 'ExpiredTokenException']);
  expect(message(late.body)).toMatch(/^Token expired: current date\/time \d+ must be before the expiration date\/time \d+$/);
});

test('a Deny statement wins over an Allow', async () => {
  const denyRole = `arn:aws:iam::${ACCOUNT}:role/denied`;
  const policy = trustPolicyFor(lab.providerArn, lab.issuer, 'jenkins_instance:ci-main:job:*');
  lab.sts.addRole(denyRole, {
    Statement: [...policy.Statement, { Effect: 'Deny', Principal: { Federated: lab.providerArn }, Action: 'sts:AssumeRoleWithWebIdentity', Condition: { StringLike: { [`${lab.issuer.replace('https://', '')}:sub`]: '*:job:folder/*' } } }],
  });
  const res = await call({ RoleArn: denyRole });
  expect([res.status, code(res.body)]).toEqual([403, 'AccessDenied']);
});
