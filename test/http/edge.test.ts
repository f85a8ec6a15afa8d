// One rule at the edge (issue 9): every header, query and form value is checked
// for encoding before the database or a log line sees it. Each path that used
// to reach PostgreSQL with a NUL (and answer 500) is here, with the methods,
// path aliases and parser errors that used to leak non-JSON answers.
import http from 'node:http';
import net from 'node:net';
import { basic, BUILD, EXCHANGE, MINT, REQUEST_TOKEN_TYPE as RTT, startWithToken, type TestService } from '../helpers/service.js';

let t: TestService;
let auth: string;
let token: string;

beforeAll(async () => {
  ({ t, auth, token } = await startWithToken());
});
afterAll(async () => t.stop());

async function rowCounts() {
  const [row] = await t.database.query<{ tokens: number; audit: number; clients: number }>(
    '(SELECT (SELECT count(*) FROM request_tokens)::int AS tokens, (SELECT count(*) FROM audit_events)::int AS audit, (SELECT count(*) FROM clients)::int AS clients)',
  );
  return row;
}

async function raw(path: string, init: RequestInit = {}) {
  const res = await fetch(`${t.url}${path}`, init);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // kept as text: the assertion shows it
  }
  return { status: res.status, type: res.headers.get('content-type'), body };
}

/** A form body written by hand, so that it can carry bytes no encoder would produce. */
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const mintForm = (extra: string) => `grant_type=${encodeURIComponent(MINT)}&build_number=42&build_url=${encodeURIComponent(BUILD.build_url)}&${extra}`;
const exchangeForm = (extra: string) => `grant_type=${encodeURIComponent(EXCHANGE)}&client_id=jenkins-build&subject_token=${token}&subject_token_type=${encodeURIComponent(RTT)}&${extra}`;
const refused = (description: string, status = 400) => ({ status, type: 'application/json; charset=utf-8', body: { error: 'invalid_request', error_description: description } });

type Case = [string, () => ReturnType<typeof raw>, { status: number; type: string; body: { error: string; error_description: string } }];

const cases: Case[] = [
  ['a NUL in a mint job', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: auth }, body: mintForm('job=team%00app') }),
    refused('parameter "job" must not contain control characters')],
  ['control characters in build_number', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: auth }, body: `grant_type=${encodeURIComponent(MINT)}&job=a&build_number=1%01%02%03&build_url=${encodeURIComponent(BUILD.build_url)}` }),
    refused('parameter "build_number" must not contain control characters')],
  ['control characters in ttl', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: auth }, body: mintForm('job=a&ttl=%1b%5b2J%0d%0a') }),
    refused('parameter "ttl" must not contain control characters')],
  ['control characters in commit', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: auth }, body: mintForm('job=a&commit=%0a%0aabc') }),
    refused('parameter "commit" must not contain control characters')],
  ['a NUL in a mint audience', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: auth }, body: mintForm('job=a&audience=sts%00') }),
    refused('parameter "audience" must not contain control characters')],
  ['a NUL in an exchange audience', () => raw('/token', { method: 'POST', headers: FORM, body: exchangeForm('audience=%00') }),
    refused('parameter "audience" must not contain control characters')],
  ['a NUL in the /id-token audience, with any bearer', () => raw('/id-token?api-version=1&audience=%00', { headers: { authorization: 'Bearer whatever' } }),
    refused('parameter "audience" must not contain control characters')],
  ['a NUL in client_id on /token', () => raw('/token', { method: 'POST', headers: FORM, body: `grant_type=${encodeURIComponent(MINT)}&client_id=ci%00main&client_secret=x` }),
    refused('parameter "client_id" must not contain control characters')],
  ['a NUL in client_id on /token/revocation', () => raw('/token/revocation', { method: 'POST', headers: FORM, body: `token=${token}&client_id=%00` }),
    refused('parameter "client_id" must not contain control characters')],
  // oidc-provider decodes the Basic pair itself and refuses it; nothing reaches the database.
  ['a NUL in a Basic client id', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: basic('ci\u0000main', 'x') }, body: mintForm('job=a') }),
    { status: 400, type: 'application/json; charset=utf-8', body: { error: 'invalid_request', error_description: 'client_id and client_secret in the authorization header are not properly encoded' } }],
  ['invalid UTF-8 (%FF) in a form value', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: auth }, body: mintForm('job=team%FFapp') }),
    refused('parameter "job" is not valid UTF-8')],
  ['an overlong UTF-8 "/" (%C0%AF) in a form value', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: auth }, body: mintForm('job=team%C0%AFapp') }),
    refused('parameter "job" is not valid UTF-8')],
  ['invalid UTF-8 in a query value', () => raw('/id-token?audience=%FF', { headers: { authorization: `Bearer ${token}` } }),
    refused('parameter "audience" is not valid UTF-8')],
  ['a malformed percent-escape', () => raw('/id-token?audience=%G1', { headers: { authorization: `Bearer ${token}` } }),
    refused('parameter "audience" has a malformed percent-escape')],
  ['raw invalid UTF-8 bytes in the body', () => raw('/token', { method: 'POST', headers: { ...FORM, authorization: auth }, body: Buffer.concat([Buffer.from(mintForm('job=')), Buffer.from([0xc3, 0x28])]) }),
    refused('the form body is not valid UTF-8')],
  ['a parameter name with a control character is not echoed', () => raw('/token', { method: 'POST', headers: FORM, body: 'gr%0aant=1' }),
    refused('a form parameter name is not a plain name')],
  ['a value longer than 2048 characters', () => raw(`/id-token?audience=${'a'.repeat(2049)}`, { headers: { authorization: `Bearer ${token}` } }),
    refused('parameter "audience" is longer than 2048 characters')],
  ['more than 64 parameters', () => raw(`/jwks?${Array.from({ length: 65 }, (_, i) => `p${i}=1`).join('&')}`),
    refused('the query has 65 parameters; at most 64 are accepted')],
  ['a bearer token with Latin-1 bytes', () => raw('/id-token', { headers: { authorization: Buffer.from(`Bearer jort_\u00e9`, 'latin1').toString('latin1') } }),
    refused('header authorization must be printable ASCII')],
];

test.each(cases)('%s: exact 4xx JSON, nothing written, still serving', async (_name, send, expected) => {
  const before = await rowCounts();
  expect(await send()).toEqual(expected);
  await t.service.audit.flush(true);
  // Refusals at the edge write nothing; one oidc-provider answers itself is one aggregated row.
  const audited = expected.body.error === 'invalid_request' && expected.body.error_description.startsWith('client_id and client_secret') ? 1 : 0;
  expect(await rowCounts()).toEqual({ ...before, audit: before!.audit + audited });
  expect((await fetch(`${t.url}/.well-known/openid-configuration`)).status).toBe(200);
});

/** Any method, as a client library would send it (fetch refuses TRACE). */
function request(method: string, path: string): Promise<{ status: number; type: string | undefined; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${t.url}${path}`, { method }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end();
  });
}

test.each(['TRACE', 'PROPFIND', 'MKCOL', 'LINK', 'PURGE'])('the method %s answers a JSON 405 on any path', async (method) => {
  for (const path of ['/token', '/jwks', '/nowhere']) {
    expect(await request(method, path)).toEqual({ status: 405, type: 'application/json; charset=utf-8', body: { error: 'invalid_request', error_description: `method ${method} is not allowed` } });
  }
});

test('a method a route does not take answers a JSON 405 naming the ones it does', async () => {
  expect(await request('PATCH', '/token')).toEqual({ status: 405, type: 'application/json; charset=utf-8', body: { error: 'invalid_request', error_description: 'method PATCH is not allowed here (allowed: POST)' } });
  expect(await request('DELETE', '/jwks')).toEqual({ status: 405, type: 'application/json; charset=utf-8', body: { error: 'invalid_request', error_description: 'method DELETE is not allowed here (allowed: HEAD, GET)' } });
});

test.each(['/TOKEN', '/Token', '/token/', '/token/revocation/', '/Token/revocation', '/JWKS', '/jwks/', '/id-token/', '/ID-TOKEN', '/.well-known/openid-configuration/', '/tok%65n', '/healthz/'])(
  'the path alias %s is not served',
  async (path) => {
    const res = await raw(path, { method: path.toLowerCase().includes('token') && !path.toLowerCase().includes('id-token') ? 'POST' : 'GET', headers: FORM, body: path.toLowerCase().includes('token') && !path.toLowerCase().includes('id-token') ? mintForm('job=a') : undefined });
    expect(res).toEqual({ status: 404, type: 'application/json; charset=utf-8', body: { error: 'not_found', error_description: expect.stringMatching(/^no such endpoint/) } });
  },
);

/** What a raw socket gets back for bytes Node's HTTP parser refuses. */
function rawHttp(request: string | Buffer): Promise<string> {
  const { port } = new URL(t.url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), '127.0.0.1', () => socket.write(request));
    let out = '';
    socket.on('data', (c) => (out += c.toString('latin1')));
    socket.on('end', () => resolve(out));
    socket.on('error', reject);
  });
}

function jsonAnswer(status: string, description: string): string {
  const body = JSON.stringify({ error: 'invalid_request', error_description: description });
  return `HTTP/1.1 ${status}\r\nContent-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
}

test.each([
  ['a malformed Content-Length', 'POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n', jsonAnswer('400 Bad Request', 'the HTTP request is malformed')],
  ['Content-Length together with Transfer-Encoding (smuggling)', 'POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', jsonAnswer('400 Bad Request', 'the HTTP request is malformed')],
  ['two Content-Length headers', 'POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcd', jsonAnswer('400 Bad Request', 'the HTTP request is malformed')],
  ['100 KB of headers', `GET /jwks HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(100_000)}\r\n\r\n`, jsonAnswer('431 Request Header Fields Too Large', 'the request headers are too large')],
  ['a header with a raw control character', 'GET /jwks HTTP/1.1\r\nHost: x\r\nX-Evil: a\u0001b\r\n\r\n', jsonAnswer('400 Bad Request', 'the HTTP request is malformed')],
])('%s gets a JSON error, then the connection is closed', async (_name, request, expected) => {
  expect(await rawHttp(request)).toBe(expected);
  expect((await fetch(`${t.url}/jwks`)).status).toBe(200);
});

test('a well-formed but unknown request token and a junk one are refused alike', async () => {
  for (const bearer of ['jort_' + 'A'.repeat(43), 'not-a-token', `${token}x`]) {
    expect(await raw('/id-token', { headers: { authorization: `Bearer ${bearer}` } })).toEqual({
      status: 401,
      type: 'application/json; charset=utf-8',
      body: { error: 'invalid_token', error_description: 'the build request token is not known to this service' },
    });
  }
});
