// The signer seam: grants hand a finished claim set to a Signer and get a
// compact JWT back. Today the only implementation holds the private key in
// process memory (LocalKeySigner); a cloud KMS signer would implement the same
// three members and nothing in grants/ or claims/ would change.
import type { JWTPayload } from 'jose';
import { AsyncResource } from 'node:async_hooks';
import { sign as cryptoSign, type KeyObject } from 'node:crypto';
import { InFlight, type InFlightTicket } from '../process/in-flight.js';

export interface Signer {
  readonly kid: string;
  readonly alg: 'RS256' | 'ES256';
  sign(payload: JWTPayload): Promise<string>;
}

/**
 * A JWS compact serialization (RFC 7515, section 7.1) of the claims, signed
 * with the key in process memory. What can be computed once is: the encoded
 * protected header (`alg`, `kid`, `typ`) is the same for every token of a key.
 * Per token: the claims as base64url JSON, one signature, the joins.
 *
 * - ES256 signs on the event loop: a P-256 signature costs about 30 µs of CPU
 *   there, less than handing it to libuv's thread pool and back (about 50 µs
 *   in all, measured on Node 24), and its encoding is the JWS one (r || s,
 *   RFC 7518 section 3.4: dsaEncoding ieee-p1363).
 * - RS256 signs on the thread pool (the callback form of crypto.sign): a
 *   2048-bit RSA signature costs 300 µs to 1 ms, which would stall every
 *   other request on the event loop.
 */
export class LocalKeySigner implements Signer {
  private readonly header: string;

  private constructor(
    readonly kid: string,
    readonly alg: 'RS256' | 'ES256',
    private readonly key: KeyObject,
  ) {
    this.header = Buffer.from(JSON.stringify({ alg, kid, typ: 'JWT' })).toString('base64url');
  }

  static async create(kid: string, alg: 'RS256' | 'ES256', privateKey: KeyObject): Promise<LocalKeySigner> {
    const type = privateKey.asymmetricKeyType;
    if ((alg === 'RS256' && type !== 'rsa') || (alg === 'ES256' && (type !== 'ec' || privateKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1'))) {
      throw new TypeError(`signing key ${kid} is not ${alg === 'RS256' ? 'an RSA' : 'a P-256'} key`);
    }
    return new LocalKeySigner(kid, alg, privateKey);
  }

  sign(payload: JWTPayload): Promise<string> {
    const input = `${this.header}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    if (this.alg === 'ES256') {
      try {
        const signature = cryptoSign('sha256', Buffer.from(input), { key: this.key, dsaEncoding: 'ieee-p1363' });
        return Promise.resolve(`${input}.${signature.toString('base64url')}`);
      } catch (err) {
        return Promise.reject(err as Error);
      }
    }
    return new Promise((resolve, reject) => {
      const held = jobs.add({ input, resolve, reject });
      try {
        outsideRequests.runInAsyncScope(cryptoSign, null, 'sha256', Buffer.from(input), this.key, whenSigned(held));
      } catch (err) {
        // Refused before any work was queued (a key node cannot use): no callback will come.
        jobs.take(held);
        reject(err as Error);
      }
    });
  }
}

/**
 * The async context every RS256 job starts in: none of a request's.
 * oidc-provider runs its routes inside an AsyncLocalStorage, and a job
 * started there holds the request's context (its Koa context, and through it
 * the whole request) for as long as V8 keeps the job: an RS256 exchange
 * promoted 8.5 KB to the old generation, against 0.7 KB when the job starts
 * here (V8's GC counters; docs/performance.md, "Garbage collection"). The
 * request's own code still runs in its context after the signature: an
 * `await` resumes in the context it was made in.
 */
const outsideRequests = new AsyncResource('jenkins-oidc.rs256-signer');

/**
 * RS256 signatures on the thread pool, by ticket. The thread pool's callback
 * holds only the ticket, never the promise of the request waiting for it.
 * Measured with V8's GC counters: a callback that resolved the request's
 * promise itself kept every RS256 request alive through minor collections
 * after it had run, until a full one (1.95 KB promoted per ID token one at a
 * time, against 0.1 KB for ES256, which signs in line; with a number, 0.3
 * KB). The jobs are held in an InFlight, not a Map: a Map kept them alive
 * the same way once several were signed at once (RS256 ID tokens 16 at a
 * time: 1,245 bytes promoted each with a Map, 116 without;
 * process/in-flight.ts).
 */
const jobs = new InFlight<{ input: string; resolve(token: string): void; reject(err: Error): void }>();

function whenSigned(held: InFlightTicket): (err: Error | null, signature: Buffer) => void {
  return (err, signature) => {
    const job = jobs.take(held);
    // Taken already: only a synchronous refusal takes a job, and then crypto.sign calls back never.
    if (!job) return;
    if (err) job.reject(err);
    else job.resolve(`${job.input}.${signature.toString('base64url')}`);
  };
}
