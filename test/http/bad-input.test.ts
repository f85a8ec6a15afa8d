// Malformed and hostile input on every endpoint: a 4xx OAuth-style JSON error
// naming the problem, nothing written, and the service keeps serving.
import { basic, BUILD, EXCHANGE, MINT, REQUEST_TOKEN_TYPE as RTT, startWithToken, type TestService } from '../helpers/service.js';

let t: TestService;
let auth: string;
let token: string;


beforeAll(async () => {
  ({ t, auth, token } = await startWithToken());
});
afterAll(async () => t.stop());

async function counts() {
  const [row] = await t.database.query(
    "SELECT (SELECT count(*) FROM request_tokens)::int AS tokens, (SELECT count(*) FROM audit_events WHERE event LIKE '%issued')::int AS issued, (SELECT count(*) FROM clients)::int AS clients",
  );
  return row;
}

async function raw(path: string, init: RequestInit) {
  const res = await fetch(`${t.url}${path}`, init);
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
}

const form = (fields: [string, string][]) => fields.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

type Case = [string, () => Promise<{ status: number; body: Record<string, unknown> }>, number, Record<string, unknown>];

const cases: Case[] = [
  ['mint without job', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: auth }, body: form([['grant_type', MINT], ['build_number', '1'], ['build_url', BUILD.build_url]]) }),
    400, { error: 'invalid_request', error_description: 'job: is required' }],
  ['mint with job given twice', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: auth }, body: form([['grant_type', MINT], ['job', 'a'], ['job', 'b'], ['build_number', '1'], ['build_url', BUILD.build_url]]) }),
    400, { error: 'invalid_request', error_description: "'job' parameter must not be provided twice" }],
  ['mint with build_number not a number', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: auth }, body: form([['grant_type', MINT], ['job', 'a'], ['build_number', '1; DROP TABLE clients'], ['build_url', BUILD.build_url]]) }),
    400, { error: 'invalid_request', error_description: 'build_number: must be a positive whole number up to 2147483647, got "1; DROP TABLE clients"' }],
  ['mint with an oversized job', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: auth }, body: form([['grant_type', MINT], ['job', 'x'.repeat(600)], ['build_number', '1'], ['build_url', BUILD.build_url]]) }),
    400, { error: 'invalid_request', error_description: 'job: must be at most 512 characters, got 600' }],
  ['mint with a NUL byte in triggered_by', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: auth }, body: form([['grant_type', MINT], ...Object.entries(BUILD), ['triggered_by', 'ali\u0000ce']]) }),
    400, { error: 'invalid_request', error_description: 'parameter "triggered_by" must not contain control characters' }],
  ['mint with a right-to-left override in job', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: auth }, body: form([['grant_type', MINT], ['job', 'prod/\u202Etset'], ['build_number', '1'], ['build_url', BUILD.build_url]]) }),
    400, { error: 'invalid_request', error_description: 'job: must not contain control or invisible formatting characters' }],
  ['mint with replayed not a boolean', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: auth }, body: form([['grant_type', MINT], ...Object.entries(BUILD), ['replayed', 'maybe']]) }),
    400, { error: 'invalid_request', error_description: 'replayed: must be true or false, got "maybe"' }],
  ['mint with replayed given twice', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: auth }, body: form([['grant_type', MINT], ...Object.entries(BUILD), ['replayed', 'false'], ['replayed', 'true']]) }),
    400, { error: 'invalid_request', error_description: "'replayed' parameter must not be provided twice" }],
  ['mint with a ttl that is not a number', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: auth }, body: form([['grant_type', MINT], ...Object.entries(BUILD), ['ttl', '1e9']]) }),
    400, { error: 'invalid_request', error_description: 'ttl: must be a positive whole number up to 2147483647, got "1e9"' }],
  ['a JSON body instead of a form', () => raw('/token', { method: 'POST', headers: { 'content-type': 'application/json', authorization: auth }, body: JSON.stringify({ grant_type: MINT, ...BUILD }) }),
    415, { error: 'invalid_request', error_description: 'send the form as application/x-www-form-urlencoded' }],
  ['no grant_type', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: auth }, body: form([['job', 'a']]) }),
    400, { error: 'invalid_request', error_description: "missing required parameter 'grant_type'" }],
  ['an unknown grant_type', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: auth }, body: form([['grant_type', 'password']]) }),
    400, { error: 'unsupported_grant_type', error_description: 'unsupported grant_type requested' }],
  ['grant_type given twice', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: auth }, body: form([['grant_type', MINT], ['grant_type', EXCHANGE]]) }),
    400, { error: 'invalid_request', error_description: "'grant_type' parameter must not be provided twice" }],
  ['a malformed Basic header', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: 'Basic !!!' }, body: form([['grant_type', MINT]]) }),
    400, { error: 'invalid_request', error_description: 'invalid authorization header value format' }],
  ['an unknown client', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: basic('nobody', 'x') }, body: form([['grant_type', MINT]]) }),
    401, { error: 'invalid_client', error_description: 'client authentication failed' }],
  ["a SQL-looking client id", () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: basic("x' OR '1'='1", 'x') }, body: form([['grant_type', MINT]]) }),
    401, { error: 'invalid_client', error_description: 'client authentication failed' }],
  ['a body over the 16 KiB limit', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: auth }, body: form([['grant_type', MINT], ['job', 'x'.repeat(20000)]]) }),
    413, { error: 'invalid_request', error_description: 'request body is 20069 bytes; the limit is 16384' }],
  ['a chunked body without Content-Length', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: auth }, body: new Blob([form([['grant_type', MINT]])]).stream(), duplex: 'half' } as RequestInit),
    411, { error: 'invalid_request', error_description: 'send the form with a Content-Length header (chunked bodies are not accepted)' }],
  ['exchange without subject_token', () => raw('/token', { method: 'POST', headers: FORM, body: form([['grant_type', EXCHANGE], ['client_id', 'jenkins-build'], ['subject_token_type', RTT]]) }),
    400, { error: 'invalid_request', error_description: "missing required parameter 'subject_token'" }],
  ['exchange with another subject_token_type', () => raw('/token', { method: 'POST', headers: FORM, body: form([['grant_type', EXCHANGE], ['client_id', 'jenkins-build'], ['subject_token', token], ['subject_token_type', 'urn:ietf:params:oauth:token-type:access_token']]) }),
    400, { error: 'invalid_request', error_description: `subject_token_type must be ${RTT}` }],
  ['exchange with subject_token twice', () => raw('/token', { method: 'POST', headers: FORM, body: form([['grant_type', EXCHANGE], ['client_id', 'jenkins-build'], ['subject_token', token], ['subject_token', token], ['subject_token_type', RTT]]) }),
    400, { error: 'invalid_request', error_description: "'subject_token' parameter must not be provided twice" }],
  ['exchange with an oversized audience', () => raw('/token', { method: 'POST', headers: FORM, body: form([['grant_type', EXCHANGE], ['client_id', 'jenkins-build'], ['subject_token', token], ['subject_token_type', RTT], ['audience', 'a'.repeat(300)]]) }),
    400, { error: 'invalid_target', error_description: 'audience must be 1-255 characters' }],
  ['exchange with a unicode look-alike of the token', () => raw('/token', { method: 'POST', headers: FORM, body: form([['grant_type', EXCHANGE], ['client_id', 'jenkins-build'], ['subject_token', token.replace('o', '\u043E')], ['subject_token_type', RTT]]) }),
    400, { error: 'invalid_grant', error_description: 'the build request token is not known to this service' }],
  ['exchange with a client secret for jenkins-build', () => raw('/token', { method: 'POST', headers: FORM, body: form([['grant_type', EXCHANGE], ['client_id', 'jenkins-build'], ['client_secret', 'guess'], ['subject_token', token], ['subject_token_type', RTT]]) }),
    401, { error: 'invalid_client', error_description: 'client authentication failed' }],
  ['revocation without token', () => raw('/token/revocation', { method: 'POST', headers: FORM, body: form([['client_id', 'jenkins-build']]) }),
    400, { error: 'invalid_request', error_description: "missing required parameter 'token'" }],
  ['/id-token with an oversized audience', () => raw(`/id-token?audience=${'a'.repeat(300)}`, { headers: { authorization: `Bearer ${token}` } }),
    400, { error: 'invalid_target', error_description: 'audience must be 1-255 characters' }],
  ['/id-token with two tokens in the header', () => raw('/id-token', { headers: { authorization: `Bearer ${token} ${token}` } }),
    401, { error: 'invalid_token', error_description: 'send the build request token as Authorization: Bearer <token>' }],
];

test.each(cases)('%s: exact 4xx, nothing written, still serving', async (_name, send, status, body) => {
  const before = await counts();
  const res = await send();
  expect(res).toEqual({ status, body });
  expect(await counts()).toEqual(before);
  expect((await fetch(`${t.url}/.well-known/openid-configuration`)).status).toBe(200);
});

test('the token is never echoed back in an error', async () => {
  const res = await raw('/token', { method: 'POST', headers: FORM, body: form([['grant_type', EXCHANGE], ['client_id', 'jenkins-build'], ['subject_token', `${token}x`], ['subject_token_type', RTT]]) });
  expect(JSON.stringify(res.body)).not.toContain(token);
});
