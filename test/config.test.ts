import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, MAX_WORKERS, misspelledVariables } from '../src/config.js';

const KEK = randomBytes(32).toString('base64');
const PROD = { DATABASE_URL: 'postgres://u@db/x', KEY_ENCRYPTION_KEY: KEK, ISSUER: 'https://oidc.example.com' };

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env, '/srv');
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

describe('configuration', () => {
  test('defaults: embedded mode, localhost issuer, documented lifetimes', () => {
    expect(loadConfig({}, '/srv')).toEqual({
      issuer: 'http://localhost:8080',
      basePath: '',
      host: '127.0.0.1',
      port: 8080,
      databaseUrl: undefined,
      databasePoolSize: 10,
      databaseAcquireTimeout: 3,
      databaseStatementTimeout: 5,
      requestBodyTimeout: 5,
      databaseConnectTimeout: 60,
      mode: 'embedded',
      dataDir: '/srv/.data',
      keyEncryptionKey: undefined,
      idTokenTtl: 300,
      requestTokenTtl: 3600,
      requestTokenMaxTtl: 86400,
      trustProxy: { kind: 'none' },
      logLevel: 'info',
      migrateOnStart: true,
      allowInsecureIssuer: false,
      signingAlg: 'RS256',
      keyRotationInterval: 30 * 86400,
      keyPublishLead: 3600,
      keyRetiredRetention: 3600,
      keyCheckInterval: 2,
      previousKeyEncryptionKey: undefined,
      failedAttemptsPerMinute: 60,
      maxConnections: 4096,
      maxInFlight: 256,
      databaseMaxQueue: 64,
      metricsPort: undefined,
      metricsHost: '127.0.0.1',
      auditRetention: 400 * 86400,
      requestTokenRetention: 7 * 86400,
      shutdownGrace: 5,
      shutdownTimeout: 10,
      workers: 1,
      optimizeFor: 'speed',
    });
  });

  test('production mode with an https issuer with a path', () => {
    const c = loadConfig({ ...PROD, ISSUER: 'https://ci.example.com/jenkins/' }, '/srv');
    expect(c).toMatchObject({ mode: 'production', issuer: 'https://ci.example.com/jenkins', basePath: '/jenkins' });
    expect(c.keyEncryptionKey).toEqual(Buffer.from(KEK, 'base64'));
  });

  test('PORT 0 and METRICS_PORT 0 are no clash: each listener takes a free port of its own', () => {
    expect(loadConfig({ PORT: '0', METRICS_PORT: '0' }, '/srv')).toMatchObject({ port: 0, metricsPort: 0 });
  });

  test('the key-encryption key can come from a file', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'jo-cfg-'));
    writeFileSync(path.join(dir, 'kek'), `${KEK}\n`);
    const c = loadConfig({ DATABASE_URL: PROD.DATABASE_URL, ISSUER: PROD.ISSUER, KEY_ENCRYPTION_KEY_FILE: path.join(dir, 'kek') });
    expect(c.keyEncryptionKey).toEqual(Buffer.from(KEK, 'base64'));
  });

  test.each<[string, Record<string, string>, string[]]>([
    ['production without a key-encryption key says what to set', { DATABASE_URL: PROD.DATABASE_URL, ISSUER: PROD.ISSUER },
      ['KEY_ENCRYPTION_KEY: required in production mode (DATABASE_URL is set). Generate one with `openssl rand -base64 32` and set KEY_ENCRYPTION_KEY or KEY_ENCRYPTION_KEY_FILE']],
    ['production with an http issuer is refused', { ...PROD, ISSUER: 'http://oidc.example.com' },
      ['ISSUER: production mode (DATABASE_URL is set) needs an https issuer, got "http://oidc.example.com". Set ISSUER=https://your-host, or ALLOW_INSECURE_ISSUER=true for a test lab']],
    ['production with a port in the issuer is refused (AWS rejects it)', { ...PROD, ISSUER: 'https://oidc.example.com:8443' },
      ['ISSUER: AWS IAM rejects issuers with a port, got "https://oidc.example.com:8443". Serve on 443 behind a proxy, or set ALLOW_INSECURE_ISSUER=true for a test lab']],
    ['an issuer with a query is refused', { ISSUER: 'https://oidc.example.com/?x=1' }, ['ISSUER: must not have a query or fragment (AWS compares the issuer exactly)']],
    ['an issuer that is not a URL is refused', { ISSUER: 'oidc.example.com' }, ['ISSUER: must be an absolute http(s) URL such as https://oidc.example.com, got "oidc.example.com"']],
    ['a short key is refused', { KEY_ENCRYPTION_KEY: 'c2hvcnQ=' }, ['KEY_ENCRYPTION_KEY: must be 32 bytes in base64 (44 characters); generate one with `openssl rand -base64 32`']],
    ['both key sources at once are refused', { KEY_ENCRYPTION_KEY: KEK, KEY_ENCRYPTION_KEY_FILE: '/x' }, ['KEY_ENCRYPTION_KEY and KEY_ENCRYPTION_KEY_FILE are both set: use one']],
    ['an out-of-range TTL names the bounds', { ID_TOKEN_TTL: '30' }, ['ID_TOKEN_TTL: must be between 60 and 3600 seconds, got 30']],
    ['a TTL that is not a duration is refused', { ID_TOKEN_TTL: 'five minutes' }, ['ID_TOKEN_TTL: must be a duration such as 300, 5m, 1h or 1d, got "five minutes"']],
    ['the metrics port cannot be the public one', { PORT: '9000', METRICS_PORT: '9000' }, ['METRICS_PORT: must differ from PORT (metrics are never served on the public listener)']],
    ['a default request-token lifetime above the maximum is refused', { REQUEST_TOKEN_TTL: '7200', REQUEST_TOKEN_MAX_TTL: '3600' }, ['REQUEST_TOKEN_TTL: 7200 is above REQUEST_TOKEN_MAX_TTL (3600)']],
    ['a bad boolean is refused', { MIGRATE_ON_START: 'maybe' }, ['MIGRATE_ON_START: must be true or false, got "maybe"']],
    ['TRUST_PROXY that is neither a hop count nor addresses is refused', { TRUST_PROXY: 'maybe' }, ['TRUST_PROXY: must be false, true (one proxy hop), a number of hops (1-10) or the proxies\' addresses/CIDRs, comma-separated: "maybe" is not an IP address or a CIDR range such as 10.0.0.0/8 or 2001:db8::/32']],
    ['TRUST_PROXY with too many hops is refused', { TRUST_PROXY: '11' }, ['TRUST_PROXY: at most 10 proxy hops, got 11']],
    ['an unknown log level is refused', { LOG_LEVEL: 'verbose' }, ['LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"']],
    ['a non-postgres DATABASE_URL is refused', { ...PROD, DATABASE_URL: 'mysql://x' }, ['DATABASE_URL: must start with postgres:// or postgresql://']],
    ['a port out of range is refused', { PORT: '70000' }, ['PORT: must be between 0 and 65535, got 70000']],
    ['an unknown signing algorithm is refused', { SIGNING_ALG: 'HS256' }, ['SIGNING_ALG: must be RS256 or ES256, got "HS256"']],
    ['OPTIMIZE_FOR takes speed or memory only', { OPTIMIZE_FOR: 'size' }, ['OPTIMIZE_FOR: must be speed or memory, got "size"']],
    ['a duration that is not one is refused', { KEY_PUBLISH_LEAD: 'soon' }, ['KEY_PUBLISH_LEAD: must be a duration such as 30d, 12h, 90m, 45s or a number of seconds, got "soon"']],
    ['a retention shorter than the ID token lifetime plus skew is refused', { KEY_RETIRED_RETENTION: '5m', ID_TOKEN_TTL: '600' },
      ['KEY_RETIRED_RETENTION: 300 s would unpublish a key while tokens it signed are still valid; it must be at least ID_TOKEN_TTL + 60 s of clock skew (660 s)']],
    ['a connect timeout of 0 is refused (pg would wait forever)', { DATABASE_ACQUIRE_TIMEOUT: '0' }, ['DATABASE_ACQUIRE_TIMEOUT: must be at least 1 seconds, got 0']],
    ['a connect timeout above a minute is refused', { DATABASE_ACQUIRE_TIMEOUT: '2m' }, ['DATABASE_ACQUIRE_TIMEOUT: must be at most 60 seconds, got 120']],
    ['a multi-host DATABASE_URL is refused with the alternatives (node-postgres takes one host)', { ...PROD, DATABASE_URL: 'postgres://u:p@db1:5432,db2:5432/oidc?target_session_attrs=read-write' }, ["DATABASE_URL: several hosts are not supported (node-postgres connects to one). Use one name that follows the primary: the managed service's endpoint, a DNS name or virtual IP moved on failover, or a proxy (PgBouncer, HAProxy) in front of the cluster"]],
    ['a statement timeout of 0 is refused (a silent connection would wait for TCP)', { DATABASE_STATEMENT_TIMEOUT: '0' }, ['DATABASE_STATEMENT_TIMEOUT: must be at least 1 seconds, got 0']],
    ['a statement timeout above 10 minutes is refused', { DATABASE_STATEMENT_TIMEOUT: '1h' }, ['DATABASE_STATEMENT_TIMEOUT: must be at most 600 seconds, got 3600']],
    ['a shutdown timeout of 0 is refused (requests in flight would be cut)', { SHUTDOWN_TIMEOUT: '0' }, ['SHUTDOWN_TIMEOUT: must be at least 1 seconds, got 0']],
    ['a shutdown grace that is not a duration is refused', { SHUTDOWN_GRACE: '-1' }, ['SHUTDOWN_GRACE: must be a duration such as 30d, 12h, 90m, 45s or a number of seconds, got "-1"']],
    ['a rotation interval not longer than the publish lead is refused', { KEY_ROTATION_INTERVAL: '1h', KEY_PUBLISH_LEAD: '1h' },
      ['KEY_ROTATION_INTERVAL: 3600 s must be longer than KEY_PUBLISH_LEAD (3600 s)']],
    ['an audit retention that is not a duration is refused', { AUDIT_RETENTION: 'a year' },
      ['AUDIT_RETENTION: must be a duration such as 30d, 12h, 90m, 45s or a number of seconds, got "a year"']],
    ['an audit retention of bare seconds, under a day, is refused (400 meant 400d)', { AUDIT_RETENTION: '400' },
      ['AUDIT_RETENTION: must be 0 (keep forever) or at least 1d, got 400 s (a bare number is seconds: write 400d for days)']],
    ['a negative request-token retention is refused', { REQUEST_TOKEN_RETENTION: '-1d' },
      ['REQUEST_TOKEN_RETENTION: must be a duration such as 30d, 12h, 90m, 45s or a number of seconds, got "-1d"']],
  ])('%s', (_name, env, expected) => {
    expect(problems(env)).toEqual(expected);
  });

  describe('the container image (JENKINS_OIDC_CONTAINER=1) never starts the embedded PostgreSQL unasked', () => {
    const CONTAINER = { JENKINS_OIDC_CONTAINER: '1' };

    test('without DATABASE_URL it refuses, naming both variables and why', () => {
      expect(problems(CONTAINER)).toEqual([
        'DATABASE_URL: not set, and the container image (JENKINS_OIDC_CONTAINER=1) does not start the embedded PostgreSQL unasked: ' +
          'its generated key-encryption key would sit in the same volume as the data it protects. ' +
          'Set DATABASE_URL and KEY_ENCRYPTION_KEY_FILE for production, or EMBEDDED=true for a trial with the embedded PostgreSQL in DATA_DIR',
      ]);
    });

    test('EMBEDDED=true asks for it', () => {
      expect(loadConfig({ ...CONTAINER, EMBEDDED: 'true' }, '/srv')).toMatchObject({ mode: 'embedded', databaseUrl: undefined });
    });

    test('with DATABASE_URL it runs in production mode', () => {
      expect(loadConfig({ ...CONTAINER, ...PROD }, '/srv')).toMatchObject({ mode: 'production', databaseUrl: PROD.DATABASE_URL });
    });

    test.each<[string, Record<string, string>, string[]]>([
      ['EMBEDDED=true with DATABASE_URL is refused', { ...CONTAINER, ...PROD, EMBEDDED: 'true' },
        ['EMBEDDED=true and DATABASE_URL are both set: unset EMBEDDED to use DATABASE_URL, or unset DATABASE_URL for the embedded PostgreSQL']],
      ['EMBEDDED=false without DATABASE_URL is refused outside the image too', { EMBEDDED: 'false' },
        ['DATABASE_URL: not set, and EMBEDDED=false refuses the embedded PostgreSQL. Set DATABASE_URL=postgres://user:password@host:5432/database']],
      ['EMBEDDED must be a boolean', { EMBEDDED: 'sure' }, ['EMBEDDED: must be true or false, got "sure"']],
    ])('%s', (_name, env, expected) => {
      expect(problems(env)).toEqual(expected);
    });

    test('outside the image, no DATABASE_URL still means embedded mode', () => {
      expect(loadConfig({ JENKINS_OIDC_CONTAINER: '0' }, '/srv').mode).toBe('embedded');
    });
  });

  test('ALLOW_INSECURE_ISSUER lets a test lab use http in production mode', () => {
    expect(problems({ ...PROD, ISSUER: 'http://127.0.0.1:8080', ALLOW_INSECURE_ISSUER: 'true' })).toEqual([]);
  });

  test('durations take units', () => {
    expect(loadConfig({ KEY_ROTATION_INTERVAL: '7d', KEY_PUBLISH_LEAD: '90m', KEY_RETIRED_RETENTION: '2h', KEY_CHECK_INTERVAL: '5' }, '/srv')).toMatchObject({
      keyRotationInterval: 604800, keyPublishLead: 5400, keyRetiredRetention: 7200, keyCheckInterval: 5,
    });
  });

  test('lifetimes take the same duration grammar as everything else', () => {
    expect(loadConfig({ ID_TOKEN_TTL: '5m', REQUEST_TOKEN_TTL: '2h', REQUEST_TOKEN_MAX_TTL: '1d' }, '/srv')).toMatchObject({ idTokenTtl: 300, requestTokenTtl: 7200, requestTokenMaxTtl: 86400 });
  });

  test('the default issuer follows PORT', () => {
    expect(loadConfig({ PORT: '18383' }, '/srv').issuer).toBe('http://localhost:18383');
    expect(loadConfig({}, '/srv').issuer).toBe('http://localhost:8080');
  });

  test('commands that need neither the key-encryption key nor the public issuer run in production mode without them', () => {
    const env = { DATABASE_URL: 'postgres://db/jo' };
    expect(problems(env)).toEqual([
      'ISSUER: production mode (DATABASE_URL is set) needs an https issuer, got "http://localhost:8080". Set ISSUER=https://your-host, or ALLOW_INSECURE_ISSUER=true for a test lab',
      'KEY_ENCRYPTION_KEY: required in production mode (DATABASE_URL is set). Generate one with `openssl rand -base64 32` and set KEY_ENCRYPTION_KEY or KEY_ENCRYPTION_KEY_FILE',
    ]);
    expect(loadConfig(env, '/srv', { keyEncryptionKey: false, publicIssuer: false })).toMatchObject({ mode: 'production', keyEncryptionKey: undefined });
  });

  test('a variable that looks like a misspelling of ours is named, with the one it resembles', () => {
    expect(misspelledVariables({ DATABSE_URL: 'postgres://x', ISSUERS: 'x', KEY_ENCRYPTON_KEY: 'x', HOME: '/root', PATH: '/bin', HOSTNAME: 'h', PORT: '1', NODE_ENV: 'production' })).toEqual([
      'DATABSE_URL is not a setting of jenkins-oidc and is ignored; did you mean DATABASE_URL?',
      'ISSUERS is not a setting of jenkins-oidc and is ignored; did you mean ISSUER?',
      'KEY_ENCRYPTON_KEY is not a setting of jenkins-oidc and is ignored; did you mean KEY_ENCRYPTION_KEY?',
    ]);
  });

  test('retention: durations in the same grammar, 0 keeps forever', () => {
    expect(loadConfig({ AUDIT_RETENTION: '90d', REQUEST_TOKEN_RETENTION: '12h' }, '/srv')).toMatchObject({ auditRetention: 90 * 86400, requestTokenRetention: 12 * 3600 });
    expect(loadConfig({ AUDIT_RETENTION: '0', REQUEST_TOKEN_RETENTION: '0' }, '/srv')).toMatchObject({ auditRetention: 0, requestTokenRetention: 0 });
    expect(loadConfig({ AUDIT_RETENTION: '86400' }, '/srv')).toMatchObject({ auditRetention: 86400 });
  });

  test('shutdown and connect settings take durations; a grace of 0 is allowed', () => {
    expect(loadConfig({ SHUTDOWN_GRACE: '0', SHUTDOWN_TIMEOUT: '1m', DATABASE_ACQUIRE_TIMEOUT: '1s', DATABASE_STATEMENT_TIMEOUT: '30s' }, '/srv')).toMatchObject({
      shutdownGrace: 0, shutdownTimeout: 60, databaseAcquireTimeout: 1, databaseStatementTimeout: 30,
    });
  });

  describe('WORKERS', () => {
    const perCore = Math.min(os.availableParallelism(), MAX_WORKERS);

    test('default: one per CPU with DATABASE_URL, one in embedded mode; auto is the default', () => {
      expect(loadConfig(PROD, '/srv').workers).toBe(perCore);
      expect(loadConfig({ ...PROD, WORKERS: 'auto' }, '/srv').workers).toBe(perCore);
      expect(loadConfig({ ...PROD, WORKERS: ' AUTO ' }, '/srv').workers).toBe(perCore);
      expect(loadConfig({}, '/srv').workers).toBe(1);
      expect(loadConfig({ WORKERS: 'auto' }, '/srv').workers).toBe(1);
    });

    test('a number from 1 to 64', () => {
      expect(loadConfig({ ...PROD, WORKERS: '1' }, '/srv').workers).toBe(1);
      expect(loadConfig({ ...PROD, WORKERS: '3' }, '/srv').workers).toBe(3);
      expect(loadConfig({ ...PROD, WORKERS: '64' }, '/srv').workers).toBe(64);
      expect(loadConfig({ WORKERS: '1' }, '/srv').workers).toBe(1);
    });

    test.each(['0', '65', 'two', '1.5', '-1', '2x', '0x2'])('%s is refused', (value) => {
      expect(problems({ ...PROD, WORKERS: value })).toEqual([`WORKERS: must be a number of processes from 1 to 64, or auto (one per CPU), got "${value}"`]);
    });

    test('more than one with the embedded PostgreSQL is refused, naming the fix', () => {
      expect(problems({ WORKERS: '2' })).toEqual([
        'WORKERS: 2 processes need DATABASE_URL: the embedded PostgreSQL belongs to one process. Set DATABASE_URL to run several, or WORKERS=1 (or unset it) for the embedded PostgreSQL',
      ]);
    });
  });

  test('every problem is reported at once', () => {
    expect(problems({ PORT: 'x', LOG_LEVEL: 'y' })).toHaveLength(2);
  });
});
