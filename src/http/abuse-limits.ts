// Abuse limits on the token endpoints: each address has a budget of failed
// attempts (a refused token, a failed client authentication, a request the
// edge refused), refilled continuously at FAILED_ATTEMPTS_PER_MINUTE. Past it,
// the address gets 429 with Retry-After, before any database work.
//
// A controller's NAT can share its address with whoever is hammering us, so a
// credential that has worked lately from this process (a request token that
// was exchanged, a client secret that minted, a request token this process
// minted) is let through even when its address is over budget: legitimate
// builds keep working while junk is turned away. Only a proof of possession
// earns that trust: a request accepted for what it presented. A revocation of
// a token the service does not know answers 200 (RFC 7009) but is charged as
// a failure and trusts nothing. A trusted credential that keeps failing (a
// valid request token asking for audiences it does not have) has a budget of
// its own and gets 429 too. The budget is per process: behind several
// replicas, put the load balancer's or proxy's own limits in front (docs:
// README, "Abuse limits").
//
// Addresses are the ones the trusted proxies saw (http/client-address.ts);
// an IPv6 caller is one /64, since a single host is usually given a whole
// /64 and could otherwise rotate through it.
import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { Context, Middleware } from 'koa';
import { AUDIT_EVENTS, type AuditTrail } from '../audit/trail.js';
import { sendError } from './routes/errors.js';

export interface FailureBudgetOptions {
  perMinute: number;
  now?: () => number;
  /** Addresses tracked at once; the oldest are forgotten first. */
  maxAddresses?: number;
  /** How long a credential that worked stays trusted. */
  trustMs?: number;
  maxTrusted?: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class FailureBudget {
  private readonly buckets = new Map<string, Bucket>();
  private readonly trusted = new Map<string, number>();
  private readonly now: () => number;
  private readonly perMs: number;

  constructor(private readonly options: FailureBudgetOptions) {
    this.now = options.now ?? Date.now;
    this.perMs = options.perMinute / 60_000;
  }

  get enabled(): boolean {
    return this.options.perMinute > 0;
  }

  private bucket(address: string): Bucket {
    const now = this.now();
    let b = this.buckets.get(address);
    if (!b) {
      b = { tokens: this.options.perMinute, at: now };
    } else {
      b.tokens = Math.min(this.options.perMinute, b.tokens + (now - b.at) * this.perMs);
      b.at = now;
      this.buckets.delete(address); // re-inserted below: Map order is least recently used first
    }
    this.buckets.set(address, b);
    if (this.buckets.size > (this.options.maxAddresses ?? 100_000)) this.buckets.delete(this.buckets.keys().next().value!);
    return b;
  }

  /** Seconds until this address may try an unproven credential again; 0 if it may now. */
  retryAfter(address: string): number {
    if (!this.enabled) return 0;
    const b = this.bucket(address);
    return b.tokens >= 1 ? 0 : Math.ceil((1 - b.tokens) / this.perMs / 1000);
  }

  /** One failed attempt; also how an attempt is reserved before its outcome is known. */
  fail(address: string): void {
    if (!this.enabled) return;
    const b = this.bucket(address);
    b.tokens = Math.max(0, b.tokens - 1);
  }

  /** Gives back an attempt reserved with fail() that turned out to succeed. */
  refund(address: string): void {
    if (!this.enabled) return;
    const b = this.bucket(address);
    b.tokens = Math.min(this.options.perMinute, b.tokens + 1);
  }

  trust(credential: string): void {
    this.trusted.delete(credential);
    this.trusted.set(credential, this.now() + (this.options.trustMs ?? 15 * 60_000));
    if (this.trusted.size > (this.options.maxTrusted ?? 100_000)) this.trusted.delete(this.trusted.keys().next().value!);
  }

  isTrusted(credential: string | undefined): boolean {
    if (!credential) return false;
    const until = this.trusted.get(credential);
    return until !== undefined && until > this.now();
  }
}

/** The key an address's budget is kept under: the address, or for IPv6 its /64. */
export function budgetKey(address: string): string {
  if (!isIPv6(address)) return address;
  // Expand "::" so that the first four groups are the /64 whatever the spelling.
  const [head = '', tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = address.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = address.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/** A digest of the credential a request presents (never the credential itself), or undefined. */
export function credentialOf(ctx: Context): string | undefined {
  const digest = (kind: string, value: string) => `${kind}:${createHash('sha256').update(value).digest('base64url')}`;
  const header = ctx.get('authorization');
  const bearer = /^Bearer (\S+)$/i.exec(header);
  if (bearer) return digest('token', bearer[1]!);
  // The form the edge already decoded and checked.
  const form = ctx.state.form as Map<string, string> | undefined;
  // A build's own token, whichever way it comes (bearer, token exchange, revocation).
  const token = form?.get('subject_token') ?? (form?.get('client_id') === 'jenkins-build' ? form.get('token') : null);
  if (token) return digest('token', token);
  if (/^Basic \S+$/i.test(header)) return digest('client', header.slice(6));
  const id = form?.get('client_id');
  const secret = form?.get('client_secret');
  if (id && secret) return digest('client', Buffer.from(`${id}:${secret}`).toString('base64'));
  return undefined;
}

/** Whether an answer counts against the address: the caller was refused for what it presented. */
function isFailure(status: number): boolean {
  return status === 400 || status === 401 || status === 403 || status === 415 || status === 431;
}

/**
 * Whether a 200 proved the credential: anything but a build's revocation of
 * a token the service did not find (http/revocation.ts marks the ones it found).
 */
function proved(ctx: Context): boolean {
  const form = ctx.state.form as Map<string, string> | undefined;
  const buildRevocation = ctx.path.endsWith('/token/revocation') && form?.get('client_id') === 'jenkins-build';
  return !buildRevocation || ctx.state.revocationFound === true;
}

/**
 * Counts the outcome of every request to the token endpoints (outermost, so
 * refusals at the edge count too) and trusts credentials that worked.
 * `credentials` is the budget of trusted credentials' own failures.
 */
export function countAttempts(budget: FailureBudget, isTokenPath: (ctx: Context) => boolean, credentials?: FailureBudget): Middleware {
  return async function countFailedAttempts(ctx, next) {
    await next();
    if (!budget.enabled || !isTokenPath(ctx)) return;
    const address = budgetKey(ctx.ip);
    // An unproven credential's attempt was reserved up front (see refuseOverBudget).
    const reserved = ctx.state.attemptReserved === true;
    // A controller whose secret checked out (provider.ts sets clientSecret) is
    // not guessing: its refusals (an audience it may not have, a malformed
    // fact) are its own, audited by name, and must not spend the budget of an
    // address its builds' requests share. Pipeline code can make a controller
    // send such requests; it must not be able to get the controller's address
    // refused for everyone.
    const proven = ctx.state.clientSecret !== undefined;
    const credential = (ctx.state.credential as string | undefined) ?? credentialOf(ctx);
    if (isFailure(ctx.status)) {
      if (proven && reserved) budget.refund(address);
      else if (!proven && !reserved) budget.fail(address);
      // A trusted credential's failure spends its own budget (it went past the address's).
      if (!proven && credential && ctx.state.credentialTrusted === true) credentials?.fail(credential);
    } else if (ctx.status === 200 && !proved(ctx)) {
      // RFC 7009's 200 for a token nobody has: a failed guess all the same.
      if (!reserved) budget.fail(address);
    } else if (ctx.status === 200) {
      if (reserved) budget.refund(address);
      if (credential) budget.trust(credential);
      // A request token this process just minted is good from its first use on.
      const minted = (ctx.body as { access_token?: unknown } | undefined)?.access_token;
      if (typeof minted === 'string' && minted.startsWith('jort_')) budget.trust(`token:${createHash('sha256').update(minted).digest('base64url')}`);
    }
  };
}

/** After the edge read the form: an address over budget is turned away unless its credential worked lately (and has not kept failing since). */
export function refuseOverBudget(budget: FailureBudget, isTokenPath: (ctx: Context) => boolean, audit: AuditTrail, credentials?: FailureBudget): Middleware {
  return async function refuseAddressOverBudget(ctx, next) {
    if (!budget.enabled || !isTokenPath(ctx)) return next();
    const address = budgetKey(ctx.ip);
    const credential = credentialOf(ctx);
    ctx.state.credential = credential;
    if (budget.isTrusted(credential)) {
      const wait = credentials?.retryAfter(credential!) ?? 0;
      if (wait > 0) {
        ctx.set('Retry-After', String(wait));
        await audit.refuse({ event: AUDIT_EVENTS.tokenRefused, authenticated: false, error: 'slow_down', description: 'too many failed attempts with this credential', remoteAddr: ctx.ip });
        return sendError(ctx, 429, 'slow_down', `too many failed attempts with this credential; retry in ${wait} s`);
      }
      ctx.state.credentialTrusted = true;
      return next();
    }
    const wait = budget.retryAfter(address);
    if (wait > 0) {
      ctx.set('Retry-After', String(wait));
      // Counted with the other unauthenticated refusals: a flood is a few rows with their counts.
      await audit.refuse({ event: AUDIT_EVENTS.tokenRefused, authenticated: false, error: 'slow_down', description: 'too many failed attempts from this address', remoteAddr: ctx.ip });
      return sendError(ctx, 429, 'slow_down', `too many failed attempts from this address; retry in ${wait} s`);
    }
    // Reserved now, refunded if it works: concurrent junk cannot all slip through on one remaining attempt.
    budget.fail(address);
    ctx.state.attemptReserved = true;
    return next();
  };
}
