// Every environment variable the service reads, validated once, documented in
// place. Nothing else in src/ reads process.env for settings: a bad value is
// refused at start with the variable's name and the reason, never discovered
// later by a request.
//
// Two modes follow from DATABASE_URL:
// - unset: "embedded" — the service runs a PostgreSQL of its own in DATA_DIR
//   and generates a key-encryption key there. Meant for a laptop or a trial.
// - set: "production" — nothing is generated: a key-encryption key must be
//   given and the issuer must be https (AWS only trusts https issuers).
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NO_PROXY, parseTrustProxy, type TrustProxy } from './http/client-address.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Config {
  /** Public issuer URL, exactly as registered in AWS IAM (no trailing slash). */
  issuer: string;
  /** Path part of the issuer ('' or '/jenkins'): every route is served under it. */
  basePath: string;
  host: string;
  port: number;
  /** undefined => embedded PostgreSQL in dataDir. */
  databaseUrl: string | undefined;
  /** Connections each `serve` process (each worker) may open (CLI commands use 2). */
  databasePoolSize: number;
  /** Seconds a connection attempt (or a wait for a pooled connection) may take before the request fails. */
  databaseAcquireTimeout: number;
  /**
   * Seconds a statement of `serve` may run: the server cancels it then
   * (statement_timeout), and one unanswered a second later has its
   * connection destroyed (store/deadlines.ts).
   */
  databaseStatementTimeout: number;
  /** Seconds a request's body may take to arrive after its headers before 408. */
  requestBodyTimeout: number;
  mode: 'embedded' | 'production';
  dataDir: string;
  /** 32 bytes, or undefined in embedded mode until generated into dataDir. */
  keyEncryptionKey: Buffer | undefined;
  idTokenTtl: number;
  requestTokenTtl: number;
  requestTokenMaxTtl: number;
  /** Which proxies report the client's address in X-Forwarded-For (http/client-address.ts). */
  trustProxy: TrustProxy;
  logLevel: LogLevel;
  migrateOnStart: boolean;
  allowInsecureIssuer: boolean;
  /** Algorithm of new signing keys (the one that signs once they are active). */
  signingAlg: 'RS256' | 'ES256';
  /** Seconds an active key signs before the scheduler starts the next rotation. */
  keyRotationInterval: number;
  /** Seconds a new key is published in JWKS before it signs. */
  keyPublishLead: number;
  /** Seconds a retired key stays published (tokens it signed must still verify). */
  keyRetiredRetention: number;
  /** Seconds between schedule checks and key-set polls (LISTEN/NOTIFY is the fast path). */
  keyCheckInterval: number;
  /** Only for `keys rewrap`: the key-encryption key being replaced. */
  previousKeyEncryptionKey: Buffer | undefined;
  /** Failed attempts one address may make per minute on the token endpoints before 429 (0: no limit). */
  failedAttemptsPerMinute: number;
  /** Open connections one process accepts; past it, a new connection gets 503 and is closed. */
  maxConnections: number;
  /** Requests one process works on at once (health, discovery and JWKS aside); past it, 503. */
  maxInFlight: number;
  /** Queries waiting for a pooled connection; past it, a token request gets 503 at once. */
  databaseMaxQueue: number;
  /** Port of the Prometheus listener; undefined: no metrics listener. */
  metricsPort: number | undefined;
  metricsHost: string;
  /** Seconds an audit row is kept; 0 keeps every row forever. */
  auditRetention: number;
  /** Seconds a request token's row is kept after it expired; 0 keeps them forever. */
  requestTokenRetention: number;
  /** Seconds `serve` and `migrate` wait at start for the database to answer (production mode). */
  databaseConnectTimeout: number;
  /** Seconds `serve` keeps answering after SIGTERM/SIGINT while /readyz says 503 (load balancers notice). */
  shutdownGrace: number;
  /** Seconds `serve` then waits for requests in flight before it closes their connections. */
  shutdownTimeout: number;
  /** Processes `serve` runs on the shared port: 1 is the single process; more is a primary and that many workers. */
  workers: number;
  /** speed: V8's defaults; memory: V8 optimizes for size (less resident memory, more CPU per request). */
  optimizeFor: 'speed' | 'memory';
}

/** WORKERS above this is refused: each worker is a whole replica (its pool, its ~200 MB). */
export const MAX_WORKERS = 64;

/** Tolerance for clocks that disagree between us and relying parties. */
export const CLOCK_SKEW_SECONDS = 60;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/**
 * Every variable the service reads, with its default and meaning, in the words
 * of the configuration reference: docs/configuration.md's table is generated
 * from this record (scripts/config-docs.mjs), and test/docs/configuration.test.ts
 * fails while the committed table differs. Meanings are Markdown; links are
 * relative to docs/. misspelledVariables() knows the names from here too.
 */
export const VARIABLES = {
  ISSUER: {
    default: '`http://localhost:$PORT`',
    meaning: 'Public URL, exactly as registered in AWS IAM: https, no port, may have a path (`https://host/jenkins` serves everything under `/jenkins`).',
  },
  HOST: {
    default: '`127.0.0.1`',
    meaning: 'Address to listen on (the Docker image sets `0.0.0.0`).',
  },
  PORT: {
    default: '`8080`',
    meaning: 'Port to listen on. `0` takes any free port; the `jenkins-oidc listening` log line gives its `url`.',
  },
  DATABASE_URL: {
    default: 'unset',
    meaning: 'PostgreSQL URL (RDS, Aurora, Cloud SQL, on-prem). Unset: embedded PostgreSQL in `DATA_DIR`. Set: production mode.',
  },
  DATABASE_POOL_SIZE: {
    default: '`10`',
    meaning: 'Pooled connections each `serve` process may open (1-100): each worker has a pool of its own, plus one LISTEN connection, and one process per replica one more for retention, so a replica holds at most `WORKERS` × (this + 1) + 1 ([Connections, exactly](operations.md#connections-exactly)). CLI commands use 2.',
  },
  DATABASE_CONNECT_TIMEOUT: {
    default: '`60s`',
    meaning: 'At start, how long `serve` and `migrate` wait for PostgreSQL to answer, retrying with backoff (0.5 s doubling to 5 s) and logging each attempt with host and port. A wrong password or a missing database ends the wait at once.',
  },
  DATABASE_ACQUIRE_TIMEOUT: {
    default: '`3s`',
    meaning: 'How long a request may wait to connect to PostgreSQL, or for a free pooled connection, before it is answered `503 temporarily_unavailable` (1 s-60 s; see [When PostgreSQL is out of reach](operations.md#when-postgresql-is-out-of-reach)).',
  },
  DATABASE_STATEMENT_TIMEOUT: {
    default: '`5s`',
    meaning: 'How long one statement of `serve` may run (1 s-10 m): PostgreSQL cancels it then (`statement_timeout`), and one still unanswered a second later (a network path gone silent) has its connection destroyed; either way the request is answered `503 temporarily_unavailable`. A request waits for one statement at most `DATABASE_ACQUIRE_TIMEOUT` + this + 1 s (an exchange may first wait `DATABASE_ACQUIRE_TIMEOUT` for its turn). CLI commands have no statement timeout.',
  },
  REQUEST_BODY_TIMEOUT: {
    default: '`5s`',
    meaning: 'How long a request body (a form of a few hundred bytes) may take to arrive after its headers; past it the request is answered 408 and its connection closed (1s-60s).',
  },
  EMBEDDED: {
    default: '`true`; `false` in the container image',
    meaning: '`true` runs the embedded PostgreSQL even in the container image; `false` refuses to start without `DATABASE_URL`.',
  },
  JENKINS_OIDC_CONTAINER: {
    default: 'unset; `1` in the container image',
    meaning: 'Set by the container image, not by you: without `DATABASE_URL` the service then refuses to start unless `EMBEDDED=true`.',
  },
  DATA_DIR: {
    default: '`./.data`',
    meaning: 'Embedded mode: the PostgreSQL cluster, its password, and the generated key-encryption key.',
  },
  KEY_ENCRYPTION_KEY: {
    default: 'generated in embedded mode',
    meaning: '32 random bytes, base64 (`openssl rand -base64 32`). Encrypts signing keys at rest (AES-256-GCM). Required in production mode; never stored in the database.',
  },
  KEY_ENCRYPTION_KEY_FILE: {
    default: 'unset',
    meaning: 'A file holding the key instead (Docker/Kubernetes secrets). Use one of the two.',
  },
  ID_TOKEN_TTL: {
    default: '`5m`',
    meaning: 'ID token lifetime (1m-1h). An ID token never outlives its request token.',
  },
  REQUEST_TOKEN_TTL: {
    default: '`1h`',
    meaning: 'Default build request token lifetime.',
  },
  REQUEST_TOKEN_MAX_TTL: {
    default: '`1d`',
    meaning: 'Upper bound for any request token, whatever a client may ask (at most 7d).',
  },
  TRUST_PROXY: {
    default: '`false`',
    meaning: 'Behind proxies: how many (`true` is one, a load balancer; `2` for a CDN in front of it), or their addresses/CIDRs (`10.0.0.0/8,192.168.1.5`). The client\'s address (limits, allowed sources, audit rows) is the right-most `X-Forwarded-For` entry the trusted proxies did not add; whatever a caller wrote to its left is never believed. A hop count trusts whatever connects: where the service port is reachable other than through the proxies (a pod inside a cluster), list the proxies\' CIDRs. `false`: the connection\'s address.',
  },
  LOG_LEVEL: {
    default: '`info`',
    meaning: '`fatal`, `error`, `warn`, `info`, `debug`, `trace` or `silent`.',
  },
  MIGRATE_ON_START: {
    default: '`true`',
    meaning: '`serve` applies pending migrations before listening. `false`: it applies none, and refuses to start while one is pending, saying to run `jenkins-oidc migrate`.',
  },
  ALLOW_INSECURE_ISSUER: {
    default: '`false`',
    meaning: 'Lets production mode use an http issuer or one with a port (test labs only: AWS will not accept it).',
  },
  SIGNING_ALG: {
    default: '`RS256`',
    meaning: 'Algorithm of new signing keys: `RS256` or `ES256`.',
  },
  KEY_ROTATION_INTERVAL: {
    default: '`30d`',
    meaning: 'How long a key signs before the scheduler starts the next rotation (`d`, `h`, `m`, `s` or seconds).',
  },
  KEY_PUBLISH_LEAD: {
    default: '`1h`',
    meaning: 'How long a new key is in JWKS before it signs. JWKS/discovery `max-age` is at most half of it.',
  },
  KEY_RETIRED_RETENTION: {
    default: '`1h`',
    meaning: 'How long a retired key stays in JWKS; at least `ID_TOKEN_TTL` + 60 s.',
  },
  KEY_CHECK_INTERVAL: {
    default: '`2s`',
    meaning: 'How often each replica runs the rotation schedule and polls for key changes (LISTEN/NOTIFY is the fast path).',
  },
  KEY_ENCRYPTION_KEY_PREVIOUS: {
    default: 'unset',
    meaning: 'Only for `keys rewrap`: the key-encryption key being replaced.',
  },
  METRICS_PORT: {
    default: 'unset',
    meaning: 'A separate listener serving Prometheus metrics at `/metrics` (never on the public `PORT`; `0` takes any free port, logged as `metrics`). Unset: no metrics. See [Metrics](operations.md#metrics).',
  },
  METRICS_HOST: {
    default: '`HOST`',
    meaning: 'Address the metrics listener binds to.',
  },
  FAILED_ATTEMPTS_PER_MINUTE: {
    default: '`60`',
    meaning: 'Refused tokens and failed client authentications one address may cause per minute on the token endpoints, per process (per worker), before it gets `429` (`0`: no limit). See [Abuse limits](operations.md#abuse-limits).',
  },
  MAX_CONNECTIONS: {
    default: '`4096`',
    meaning: 'Open client connections one `serve` process accepts; past it a new connection is answered `503` and closed. See [Capacity](operations.md#capacity).',
  },
  MAX_IN_FLIGHT: {
    default: '`256`',
    meaning: 'Requests one `serve` process works on at once (health checks, discovery and JWKS are not counted); past it `503 temporarily_unavailable` with `Retry-After: 1`.',
  },
  DATABASE_MAX_QUEUE: {
    default: '`64`',
    meaning: 'Queries one `serve` process lets wait for a pooled connection; past it, token requests get `503` at once instead of queueing.',
  },
  AUDIT_RETENTION: {
    default: '`400d`',
    meaning: 'How long audit rows are kept before the service deletes them; `0` keeps them forever. At least `1d` (a bare number is seconds). See [Audit trail](operations.md#audit-trail-retention-and-export).',
  },
  REQUEST_TOKEN_RETENTION: {
    default: '`7d`',
    meaning: 'How long a request token\'s row is kept after the token expired; `0` keeps them forever.',
  },
  SHUTDOWN_GRACE: {
    default: '`5s`',
    meaning: 'After SIGTERM/SIGINT, how long `serve` keeps answering (with `Connection: close`) while `/readyz` says 503, so load balancers stop sending first; `0` allowed (0 s-5 m). See [Shutdown](operations.md#shutdown).',
  },
  SHUTDOWN_TIMEOUT: {
    default: '`10s`',
    meaning: 'After the grace, how long `serve` waits for requests in flight before it closes their connections (1 s-5 m).',
  },
  OPTIMIZE_FOR: {
    default: '`speed`',
    meaning: '`speed`: `serve` runs with a heap sized for the service (8 MB semi-spaces, 30 % old-generation growth): about 135 MB resident per process under load. `memory`: V8 also optimizes for size, for 1.6 to 1.8 times the CPU per request. A heap flag given to node by hand is kept. See [Performance](performance.md#memory).',
  },
  WORKERS: {
    default: '`auto` with `DATABASE_URL`; `1` in embedded mode',
    meaning: 'Processes `serve` runs on the one `PORT` (1-64, or `auto`: one per CPU, `os.availableParallelism()`). Above 1, a primary forks that many workers, each a whole replica with its own pool. Not above 1 in embedded mode. Set it to the CPU a container is given: `auto` counts the host\'s cores when there is no CPU limit. See [Workers](operations.md#workers-one-process-per-core).',
  },
} satisfies Record<string, { default: string; meaning: string }>;

/** 30d, 12h, 90m, 45s or plain seconds. */
export function parseDuration(value: string): number | undefined {
  const m = /^(\d+)\s*([smhd]?)$/.exec(value.trim());
  if (!m) return undefined;
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[m[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

/** The inverse, for messages: 34560000 -> "400d", 5400 -> "90m", 0 -> "0". */
export function formatDuration(seconds: number): string {
  if (seconds === 0) return '0';
  for (const [unit, size] of [['d', 86400], ['h', 3600], ['m', 60]] as const) {
    if (seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}

const LOG_LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * What a command needs beyond the database. `serve` and the key commands need
 * both; commands that only read or write client records and audit rows
 * (clients, audit) need neither, so they run in production mode with just
 * DATABASE_URL.
 */
export interface ConfigNeeds {
  keyEncryptionKey?: boolean;
  publicIssuer?: boolean;
}

export function loadConfig(env: Env = process.env, cwd = process.cwd(), needs: ConfigNeeds = {}): Config {
  const needKek = needs.keyEncryptionKey ?? true;
  const needIssuer = needs.publicIssuer ?? true;
  const problems: string[] = [];
  const read = (name: keyof typeof VARIABLES): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };

  const int = (name: keyof typeof VARIABLES, fallback: number, min: number, max: number): number => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw)) {
      problems.push(`${name}: must be a whole number of seconds or a port, got "${raw}"`);
      return fallback;
    }
    const n = Number(raw);
    if (n < min || n > max) {
      problems.push(`${name}: must be between ${min} and ${max}, got ${n}`);
      return fallback;
    }
    return n;
  };

  const bool = <T extends boolean | undefined>(name: keyof typeof VARIABLES, fallback: T): boolean | T => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    if (/^(true|1|yes)$/i.test(raw)) return true;
    if (/^(false|0|no)$/i.test(raw)) return false;
    problems.push(`${name}: must be true or false, got "${raw}"`);
    return fallback;
  };

  const databaseUrl = read('DATABASE_URL');
  const mode = databaseUrl ? 'production' : 'embedded';
  if (databaseUrl && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('DATABASE_URL: must start with postgres:// or postgresql://');
  }
  // node-postgres (pg 8) takes one host: "h1,h2" fails to parse, and
  // target_session_attrs is not read. The service refuses a standby itself
  // (store/deadlines.ts), so one name that follows the primary is enough.
  if (databaseUrl && /^postgres(ql)?:\/\/(?:[^@/]*@)?[^/?]*,/.test(databaseUrl)) {
    problems.push('DATABASE_URL: several hosts are not supported (node-postgres connects to one). Use one name that follows the primary: the managed service\'s endpoint, a DNS name or virtual IP moved on failover, or a proxy (PgBouncer, HAProxy) in front of the cluster');
  }
  // The container image sets JENKINS_OIDC_CONTAINER=1. There embedded mode would
  // generate the key-encryption key into the volume that holds the data it
  // protects — a copy of that one volume could mint tokens — and a DATABASE_URL
  // lost on the way (a misspelt name, a missing secret) would quietly start an
  // empty service. So in the image embedded mode must be asked for.
  const embedded = bool('EMBEDDED', undefined);
  if (databaseUrl && embedded === true) {
    problems.push('EMBEDDED=true and DATABASE_URL are both set: unset EMBEDDED to use DATABASE_URL, or unset DATABASE_URL for the embedded PostgreSQL');
  } else if (!databaseUrl && embedded === false) {
    problems.push('DATABASE_URL: not set, and EMBEDDED=false refuses the embedded PostgreSQL. Set DATABASE_URL=postgres://user:password@host:5432/database');
  } else if (!databaseUrl && embedded === undefined && bool('JENKINS_OIDC_CONTAINER', false)) {
    problems.push(
      'DATABASE_URL: not set, and the container image (JENKINS_OIDC_CONTAINER=1) does not start the embedded PostgreSQL unasked: ' +
        'its generated key-encryption key would sit in the same volume as the data it protects. ' +
        'Set DATABASE_URL and KEY_ENCRYPTION_KEY_FILE for production, or EMBEDDED=true for a trial with the embedded PostgreSQL in DATA_DIR',
    );
  }
  const allowInsecureIssuer = bool('ALLOW_INSECURE_ISSUER', false);

  // The default issuer follows PORT, so a service moved to another port still advertises itself.
  const portText = read('PORT');
  let issuer = read('ISSUER') ?? `http://localhost:${portText && /^\d{1,5}$/.test(portText) && Number(portText) <= 65535 ? portText : '8080'}`;
  let basePath = '';
  try {
    const url = new URL(issuer);
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('scheme');
    if (url.search || url.hash || issuer.includes('?') || issuer.includes('#')) {
      problems.push('ISSUER: must not have a query or fragment (AWS compares the issuer exactly)');
    }
    if (url.username || url.password) problems.push('ISSUER: must not contain credentials');
    basePath = url.pathname.replace(/\/+$/, '');
    issuer = `${url.protocol}//${url.host}${basePath}`;
    if (mode === 'production' && !allowInsecureIssuer && needIssuer) {
      if (url.protocol !== 'https:') {
        problems.push(`ISSUER: production mode (DATABASE_URL is set) needs an https issuer, got "${issuer}". Set ISSUER=https://your-host, or ALLOW_INSECURE_ISSUER=true for a test lab`);
      } else if (url.port) {
        problems.push(`ISSUER: AWS IAM rejects issuers with a port, got "${issuer}". Serve on 443 behind a proxy, or set ALLOW_INSECURE_ISSUER=true for a test lab`);
      }
    }
  } catch {
    problems.push(`ISSUER: must be an absolute http(s) URL such as https://oidc.example.com, got "${issuer}"`);
  }

  let keyEncryptionKey: Buffer | undefined;
  const kekInline = read('KEY_ENCRYPTION_KEY');
  const kekFile = read('KEY_ENCRYPTION_KEY_FILE');
  if (kekInline && kekFile) {
    problems.push('KEY_ENCRYPTION_KEY and KEY_ENCRYPTION_KEY_FILE are both set: use one');
  } else if (kekInline) {
    keyEncryptionKey = parseKey('KEY_ENCRYPTION_KEY', kekInline, problems);
  } else if (kekFile) {
    try {
      keyEncryptionKey = parseKey('KEY_ENCRYPTION_KEY_FILE', readFileSync(path.resolve(cwd, kekFile), 'utf8').trim(), problems);
    } catch (err) {
      problems.push(`KEY_ENCRYPTION_KEY_FILE: cannot read ${kekFile} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  } else if (mode === 'production' && needKek) {
    problems.push('KEY_ENCRYPTION_KEY: required in production mode (DATABASE_URL is set). Generate one with `openssl rand -base64 32` and set KEY_ENCRYPTION_KEY or KEY_ENCRYPTION_KEY_FILE');
  }

  // One duration grammar everywhere: seconds, or 30s, 5m, 1h, 30d.
  const ttl = (name: keyof typeof VARIABLES, fallback: number, min: number, max: number): number => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    const n = parseDuration(raw);
    if (n === undefined) {
      problems.push(`${name}: must be a duration such as 300, 5m, 1h or 1d, got "${raw}"`);
      return fallback;
    }
    if (n < min || n > max) {
      problems.push(`${name}: must be between ${min} and ${max} seconds, got ${n}`);
      return fallback;
    }
    return n;
  };
  const idTokenTtl = ttl('ID_TOKEN_TTL', 300, 60, 3600);
  const requestTokenMaxTtl = ttl('REQUEST_TOKEN_MAX_TTL', 86400, 60, 7 * 86400);
  const requestTokenTtl = ttl('REQUEST_TOKEN_TTL', 3600, 60, 7 * 86400);
  if (requestTokenTtl > requestTokenMaxTtl) {
    problems.push(`REQUEST_TOKEN_TTL: ${requestTokenTtl} is above REQUEST_TOKEN_MAX_TTL (${requestTokenMaxTtl})`);
  }

  const duration = (name: keyof typeof VARIABLES, fallback: number, min: number, max = Infinity): number => {
    const raw = read(name);
    if (raw === undefined) return fallback;
    const n = parseDuration(raw);
    if (n === undefined) {
      problems.push(`${name}: must be a duration such as 30d, 12h, 90m, 45s or a number of seconds, got "${raw}"`);
      return fallback;
    }
    if (n < min) {
      problems.push(`${name}: must be at least ${min} seconds, got ${n}`);
      return fallback;
    }
    if (n > max) {
      problems.push(`${name}: must be at most ${max} seconds, got ${n}`);
      return fallback;
    }
    return n;
  };
  const signingAlg = (read('SIGNING_ALG') ?? 'RS256').toUpperCase();
  if (signingAlg !== 'RS256' && signingAlg !== 'ES256') problems.push(`SIGNING_ALG: must be RS256 or ES256, got "${signingAlg}"`);
  const keyRotationInterval = duration('KEY_ROTATION_INTERVAL', 30 * 86400, 60);
  const keyPublishLead = duration('KEY_PUBLISH_LEAD', 3600, 0);
  const keyRetiredRetention = duration('KEY_RETIRED_RETENTION', 3600, 0);
  const keyCheckInterval = duration('KEY_CHECK_INTERVAL', 2, 1);
  if (keyRetiredRetention < idTokenTtl + CLOCK_SKEW_SECONDS) {
    problems.push(
      `KEY_RETIRED_RETENTION: ${keyRetiredRetention} s would unpublish a key while tokens it signed are still valid; it must be at least ID_TOKEN_TTL + ${CLOCK_SKEW_SECONDS} s of clock skew (${idTokenTtl + CLOCK_SKEW_SECONDS} s)`,
    );
  }
  if (keyRotationInterval <= keyPublishLead) {
    problems.push(`KEY_ROTATION_INTERVAL: ${keyRotationInterval} s must be longer than KEY_PUBLISH_LEAD (${keyPublishLead} s)`);
  }
  // Retention: 0 means "keep forever", anything else is how long a row
  // outlives its time. A bare number is seconds in this grammar, so an audit
  // retention under a day is refused: AUDIT_RETENTION=400 meant 400 days, and
  // taking it as 400 seconds would delete the whole audit trail.
  const auditRetention = duration('AUDIT_RETENTION', 400 * 86400, 0);
  if (auditRetention > 0 && auditRetention < 86400) {
    problems.push(`AUDIT_RETENTION: must be 0 (keep forever) or at least 1d, got ${auditRetention} s (a bare number is seconds: write 400d for days)`);
  }
  const requestTokenRetention = duration('REQUEST_TOKEN_RETENTION', 7 * 86400, 0);
  // A database that does not answer must cost a request seconds, not the
  // operating system's TCP connect timeout (minutes).
  const databaseAcquireTimeout = duration('DATABASE_ACQUIRE_TIMEOUT', 3, 1, 60);
  // A statement already sent must not wait for TCP to give up either; the
  // slowest legitimate statement of serve (a retention batch, the key
  // scheduler under its lock) takes tens of milliseconds.
  const databaseStatementTimeout = duration('DATABASE_STATEMENT_TIMEOUT', 5, 1, 600);
  const requestBodyTimeout = duration('REQUEST_BODY_TIMEOUT', 5, 1, 60);
  const databaseConnectTimeout = duration('DATABASE_CONNECT_TIMEOUT', 60, 0, 600);
  const shutdownGrace = duration('SHUTDOWN_GRACE', 5, 0, 300);
  const shutdownTimeout = duration('SHUTDOWN_TIMEOUT', 10, 1, 300);
  const previousKekRaw = read('KEY_ENCRYPTION_KEY_PREVIOUS');
  const previousKeyEncryptionKey = previousKekRaw ? parseKey('KEY_ENCRYPTION_KEY_PREVIOUS', previousKekRaw, problems) : undefined;

  // Both 0 is no clash: each listener then takes a free port of its own.
  if (read('METRICS_PORT') !== undefined && read('METRICS_PORT') !== '0' && read('METRICS_PORT') === (read('PORT') ?? '8080')) {
    problems.push('METRICS_PORT: must differ from PORT (metrics are never served on the public listener)');
  }

  // One JavaScript thread per process: past one core, `serve` forks workers
  // sharing the port (src/process/cluster.ts). `auto` is
  // os.availableParallelism(): the CPUs this process may run on. Node 20
  // (libuv 1.46) counts the affinity mask only, so in a container without a
  // CPU limit it counts every core of the host: orchestrators should set
  // WORKERS to the CPU they give. The embedded PostgreSQL belongs to one
  // process, so embedded mode stays at one.
  const workersRaw = read('WORKERS');
  let workers = mode === 'production' ? Math.min(os.availableParallelism(), MAX_WORKERS) : 1;
  if (workersRaw !== undefined && workersRaw.toLowerCase() !== 'auto') {
    const n = /^\d+$/.test(workersRaw) ? Number(workersRaw) : NaN;
    if (!(n >= 1 && n <= MAX_WORKERS)) {
      problems.push(`WORKERS: must be a number of processes from 1 to ${MAX_WORKERS}, or auto (one per CPU), got "${workersRaw}"`);
    } else if (n > 1 && mode === 'embedded') {
      problems.push(`WORKERS: ${n} processes need DATABASE_URL: the embedded PostgreSQL belongs to one process. Set DATABASE_URL to run several, or WORKERS=1 (or unset it) for the embedded PostgreSQL`);
    } else {
      workers = n;
    }
  }

  const logLevel = (read('LOG_LEVEL') ?? 'info').toLowerCase() as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push(`LOG_LEVEL: must be one of ${LOG_LEVELS.join(', ')}, got "${logLevel}"`);
  }

  let trustProxy: TrustProxy = NO_PROXY;
  try {
    trustProxy = parseTrustProxy(read('TRUST_PROXY'));
  } catch (err) {
    problems.push(`TRUST_PROXY: ${(err as Error).message}`);
  }

  const optimizeFor = (read('OPTIMIZE_FOR') ?? 'speed').toLowerCase();
  if (optimizeFor !== 'speed' && optimizeFor !== 'memory') problems.push(`OPTIMIZE_FOR: must be speed or memory, got "${optimizeFor}"`);

  const config: Config = {
    issuer,
    basePath,
    host: read('HOST') ?? '127.0.0.1',
    port: int('PORT', 8080, 0, 65535),
    databaseUrl,
    databasePoolSize: int('DATABASE_POOL_SIZE', 10, 1, 100),
    databaseAcquireTimeout,
    databaseStatementTimeout,
    requestBodyTimeout,
    databaseConnectTimeout,
    mode,
    dataDir: path.resolve(cwd, read('DATA_DIR') ?? '.data'),
    keyEncryptionKey,
    idTokenTtl,
    requestTokenTtl,
    requestTokenMaxTtl,
    trustProxy,
    logLevel,
    migrateOnStart: bool('MIGRATE_ON_START', true),
    allowInsecureIssuer,
    signingAlg: signingAlg as Config['signingAlg'],
    optimizeFor: optimizeFor as Config['optimizeFor'],
    keyRotationInterval,
    keyPublishLead,
    keyRetiredRetention,
    keyCheckInterval,
    previousKeyEncryptionKey,
    failedAttemptsPerMinute: int('FAILED_ATTEMPTS_PER_MINUTE', 60, 0, 100_000),
    maxConnections: int('MAX_CONNECTIONS', 4096, 1, 100_000),
    maxInFlight: int('MAX_IN_FLIGHT', 256, 1, 100_000),
    databaseMaxQueue: int('DATABASE_MAX_QUEUE', 64, 0, 100_000),
    metricsPort: read('METRICS_PORT') === undefined ? undefined : int('METRICS_PORT', 0, 0, 65535),
    metricsHost: read('METRICS_HOST') ?? read('HOST') ?? '127.0.0.1',
    auditRetention,
    requestTokenRetention,
    shutdownGrace,
    shutdownTimeout,
    workers,
  };
  if (problems.length) throw new ConfigError(problems);
  return config;
}

/** Edit distance, for telling a misspelt variable from an unrelated one. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

/**
 * Environment variables that look like a misspelling of ours (DATABSE_URL,
 * ISSUER_URL, KEY_ENCRYPTION_KEYS...): each would be silently ignored, which
 * for DATABASE_URL means embedded mode. Returns one warning per suspect.
 */
export function misspelledVariables(env: Env = process.env): string[] {
  const ours = Object.keys(VARIABLES);
  const warnings: string[] = [];
  for (const name of Object.keys(env)) {
    if (ours.includes(name) || !/^[A-Z][A-Z0-9_]*$/.test(name)) continue;
    const close = ours.find((o) => Math.abs(o.length - name.length) <= 2 && distance(o, name) <= Math.max(1, Math.floor(o.length / 8)));
    if (close) warnings.push(`${name} is not a setting of jenkins-oidc and is ignored; did you mean ${close}?`);
  }
  return warnings;
}

function parseKey(name: string, value: string, problems: string[]): Buffer | undefined {
  const key = Buffer.from(value, 'base64');
  if (key.length !== 32 || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) {
    problems.push(`${name}: must be 32 bytes in base64 (44 characters); generate one with \`openssl rand -base64 32\``);
    return undefined;
  }
  return key;
}
