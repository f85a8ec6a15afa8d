// One rule at the edge: every header, query and form value a request carries is
// checked for encoding before anything reads the database or writes a log
// line. PostgreSQL refuses U+0000 in text and jsonb (an unchecked NUL used to
// escape as a 500), Node's query and form parsers turn invalid UTF-8 into
// U+FFFD without a word (it would have ended up inside signed claims), and a
// control character in a stored value can forge lines wherever it is printed.
//
// Refusals name the parameter, never echo its value, and are 400 invalid_request
// in the OAuth JSON shape. Semantic limits (a job is at most 512 characters, an
// audience 255...) stay with the grants; the limits here bound any value.
//
// Bodies are on a deadline: a form must arrive within REQUEST_BODY_TIMEOUT of
// its headers, or the request is answered 408 and its connection closed, and
// one address (an IPv6 /64) may have at most MAX_PENDING_BODIES requests
// waiting for their bodies at once. A caller that sends headers and then
// nothing holds no more than that, and the front door counts a request
// against MAX_IN_FLIGHT only once its body is in (front-door.ts). A client
// that goes away mid-body is a client abort, not a database outage: it gets
// no answer (nobody is there to read it), a debug log line and a metric.
import type { IncomingMessage } from 'node:http';
import type { Context, Middleware } from 'koa';
import { budgetKey } from './abuse-limits.js';
import { sendError } from './routes/errors.js';

export const EDGE_LIMITS = {
  /** Characters in one query or form value (a build_url is at most 2048). */
  value: 2048,
  /** Query plus form parameters in one request. */
  parameters: 64,
  /** Characters in one header value we read (Authorization carries at most a Basic pair or a token). */
  header: 4096,
  /** Bytes in a form body; Content-Length is required. */
  body: 16 * 1024,
} as const;

/** A parameter name we are willing to repeat back in an error. */
const SAFE_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
/** C0 and C1 controls, DEL: never part of any value this service accepts. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const FATAL_UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Requests from one address (an IPv6 /64) still waiting for their bodies; past it, 429 at once. */
export const MAX_PENDING_BODIES = 16;

/** The client went away while its request was arriving. */
export class ClientAborted extends Error {
  constructor() {
    super('the client went away before its request arrived');
  }
}

export class EdgeError extends Error {
  constructor(readonly status: number, readonly description: string) {
    super(description);
  }
}

function nameOf(name: string): string {
  return SAFE_NAME.test(name) ? `parameter "${name}"` : 'a parameter name';
}

/** Plain ASCII with nothing to decode: most names and values, returned as they are. */
const NOTHING_TO_DECODE = /^[\u0000-\u0024\u0026-\u002a\u002c-\u007f]*$/;

/** The value of one hex digit, or -1. */
function hexDigit(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  const lower = code | 0x20;
  return lower >= 0x61 && lower <= 0x66 ? lower - 0x57 : -1;
}

/**
 * Strict percent-decoding: malformed escapes and invalid UTF-8 are errors, not U+FFFD.
 * (Bytes go into one buffer sized for the worst case: this runs for every
 * parameter of every request, and an array of numbers per value was the
 * token path's largest allocation.)
 */
function decodeComponent(raw: string, what: () => string): string {
  if (NOTHING_TO_DECODE.test(raw)) return raw;
  // At most 3 UTF-8 bytes per UTF-16 code unit; an escape is 3 characters for 1 byte.
  const bytes = Buffer.allocUnsafe(raw.length * 3);
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    const ch = raw.charCodeAt(i);
    if (ch === 0x25 /* % */) {
      const high = i + 2 < raw.length ? hexDigit(raw.charCodeAt(i + 1)) : -1;
      const low = high === -1 ? -1 : hexDigit(raw.charCodeAt(i + 2));
      if (low === -1) throw new EdgeError(400, `${what()} has a malformed percent-escape`);
      bytes[n++] = high * 16 + low;
      i += 2;
    } else if (ch === 0x2b /* + */) {
      bytes[n++] = 0x20;
    } else if (ch < 0x80) {
      bytes[n++] = ch;
    } else {
      // Raw non-ASCII in a query or form: take its UTF-8 as sent.
      n += bytes.write(raw[i]!, n, 'utf8');
    }
  }
  try {
    return FATAL_UTF8.decode(bytes.subarray(0, n));
  } catch {
    throw new EdgeError(400, `${what()} is not valid UTF-8`);
  }
}

/** Checks an application/x-www-form-urlencoded string (a query or a form body) and returns its pairs. */
export function checkForm(raw: string, where: 'query' | 'form'): [string, string][] {
  if (raw === '') return [];
  const parts = raw.split('&').filter((p) => p !== '');
  if (parts.length > EDGE_LIMITS.parameters) throw new EdgeError(400, `the ${where} has ${parts.length} parameters; at most ${EDGE_LIMITS.parameters} are accepted`);
  return parts.map((part) => {
    const eq = part.indexOf('=');
    const rawName = eq === -1 ? part : part.slice(0, eq);
    const name = decodeComponent(rawName, () => `a ${where} parameter name`);
    if (CONTROL.test(name) || name.length > 64) throw new EdgeError(400, `a ${where} parameter name is not a plain name`);
    const value = decodeComponent(eq === -1 ? '' : part.slice(eq + 1), () => nameOf(name));
    if (value.length > EDGE_LIMITS.value) throw new EdgeError(400, `${nameOf(name)} is longer than ${EDGE_LIMITS.value} characters`);
    if (CONTROL.test(value)) throw new EdgeError(400, `${nameOf(name)} must not contain control characters`);
    return [name, value];
  });
}

/** Header values we read: no control characters but tab, bounded; Authorization plain ASCII. */
export function checkHeaders(headers: IncomingMessage['headers']): void {
  for (const name in headers) {
    const value = headers[name];
    if (Array.isArray(value)) for (const v of value) checkHeader(name, v);
    else checkHeader(name, value ?? '');
  }
}

function checkHeader(name: string, v: string): void {
  if (v.length > EDGE_LIMITS.header) throw new EdgeError(431, `header ${name} is longer than ${EDGE_LIMITS.header} characters`);
  if (/[\u0000-\u0008\u000a-\u001f\u007f]/.test(v)) throw new EdgeError(400, `header ${name} must not contain control characters`);
  // Node reads header bytes as Latin-1; anything above ASCII in credentials is not ours.
  if (name === 'authorization' && /[^\u0020-\u007e]/.test(v)) throw new EdgeError(400, 'header authorization must be printable ASCII');
}

/** The body, all of it, within `timeoutMs`; EdgeError 408 past it, ClientAborted if the client goes. */
function readBody(req: IncomingMessage, length: number, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let received = 0;
    const finish = (settle: () => void) => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onGone);
      req.off('close', onGone);
      settle();
    };
    const timer = setTimeout(() => finish(() => reject(new EdgeError(408, `the request body did not arrive within ${timeoutMs / 1000} s of its headers`))), timeoutMs);
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > length) return finish(() => reject(new EdgeError(400, 'the request body is longer than its Content-Length')));
      chunks.push(chunk);
    };
    const onEnd = () =>
      finish(() => (received === length ? resolve(Buffer.concat(chunks)) : reject(new EdgeError(400, 'the request body is shorter than its Content-Length'))));
    // 'error' (ECONNRESET, "aborted") or a close before the end: nobody is left to answer.
    const onGone = () => finish(() => reject(new ClientAborted()));
    req.on('data', onData);
    req.once('end', onEnd);
    req.once('error', onGone);
    req.once('close', onGone);
  });
}

/**
 * The request as oidc-provider should see it after the check: the same
 * message, with the body it already had, readable again from the start.
 * oidc-provider reads a form with `for await (const chunk of
 * req.iterator(...))` once it sees `req.readable`; it gets the checked bytes
 * as one chunk, without a stream built around them for every request.
 */
export function withReplayedBody(req: IncomingMessage, body: Buffer): IncomingMessage {
  let consumed = false;
  async function* replay(): AsyncGenerator<Buffer> {
    if (consumed) return;
    consumed = true;
    yield body;
  }
  return new Proxy(req, {
    get(target, prop, receiver) {
      if (prop === 'readable') return !consumed;
      if (prop === 'readableEncoding') return null;
      if (prop === 'iterator' || prop === Symbol.asyncIterator) return replay;
      return Reflect.get(target, prop, receiver);
    },
  });
}

const FORM = 'application/x-www-form-urlencoded';

export interface EdgeOptions {
  /** Seconds a body may take after its headers (REQUEST_BODY_TIMEOUT). */
  bodyTimeoutSeconds: number;
  /** A client went away mid-request (metrics). */
  onClientAbort?: () => void;
}

export function checkAtTheEdge(options: EdgeOptions): Middleware {
  const pending = new Map<string, number>();
  return async function checkRequestEncoding(ctx: Context, next) {
    try {
      checkHeaders(ctx.req.headers);
      checkForm(ctx.querystring, 'query');
      if (ctx.method === 'POST' && ctx.request.length) {
        if (ctx.request.length > EDGE_LIMITS.body) {
          ctx.set('Connection', 'close');
          return sendError(ctx, 413, 'invalid_request', `request body is ${ctx.request.length} bytes; the limit is ${EDGE_LIMITS.body}`);
        }
        if (!ctx.is(FORM)) throw new EdgeError(415, `send the form as ${FORM}`);
        const address = budgetKey(ctx.ip);
        const waiting = pending.get(address) ?? 0;
        if (waiting >= MAX_PENDING_BODIES) {
          ctx.set('Connection', 'close');
          ctx.set('Retry-After', '1');
          return sendError(ctx, 429, 'slow_down', `this address has ${MAX_PENDING_BODIES} requests still sending their bodies; finish those first`);
        }
        pending.set(address, waiting + 1);
        let body: Buffer;
        try {
          body = await readBody(ctx.req, ctx.request.length, options.bodyTimeoutSeconds * 1000);
        } finally {
          const left = (pending.get(address) ?? 1) - 1;
          if (left > 0) pending.set(address, left);
          else pending.delete(address);
        }
        let text: string;
        try {
          text = FATAL_UTF8.decode(body);
        } catch {
          throw new EdgeError(400, 'the form body is not valid UTF-8');
        }
        // The checked pairs are kept for the abuse limits (first value of each name), so the form is decoded once here.
        ctx.state.form = new Map(checkForm(text, 'form').reverse());
        ctx.state.formBody = body;
      }
    } catch (err) {
      if (err instanceof ClientAborted) {
        // Nobody to answer: no response, the socket goes; logged at debug and counted (app.ts).
        ctx.state.clientAborted = true;
        options.onClientAbort?.();
        ctx.respond = false;
        ctx.req.socket.destroy();
        return;
      }
      if (!(err instanceof EdgeError)) throw err;
      ctx.state.edgeRefused = true;
      // A body that never came: the connection cannot be trusted to carry another request.
      if (err.status === 408) ctx.set('Connection', 'close');
      return sendError(ctx, err.status, 'invalid_request', err.description);
    }
    return next();
  };
}
