// docs/configuration.md is generated from VARIABLES in src/config.ts: the
// committed table must be what scripts/config-docs.mjs renders now, and each
// documented default that is one plain value must be the value loadConfig()
// actually uses, so neither the words nor the code can change alone.
import { readFileSync } from 'node:fs';
import { loadConfig, parseDuration, VARIABLES, type Config } from '../../src/config.js';
import { COMMAND, DOC, renderTable, withTable } from '../../scripts/config-docs.mjs';

test('docs/configuration.md holds the table rendered from src/config.ts', () => {
  const committed = readFileSync(DOC as string, 'utf8');
  const generated = (withTable as (doc: string, table: string) => string)(committed, (renderTable as (v: typeof VARIABLES) => string)(VARIABLES));
  if (committed !== generated) {
    throw new Error(`docs/configuration.md differs from VARIABLES in src/config.ts: run \`${COMMAND as string}\` and commit the result`);
  }
});

test('each documented single-value default is the one the service uses', () => {
  // Embedded mode with nothing set: the defaults in force (production-only
  // defaults such as WORKERS=auto are described in words, not checked here).
  const config = loadConfig({}, '/srv');
  const fields: Partial<Record<keyof typeof VARIABLES, keyof Config>> = {
    HOST: 'host', PORT: 'port', DATABASE_POOL_SIZE: 'databasePoolSize', DATABASE_CONNECT_TIMEOUT: 'databaseConnectTimeout',
    DATABASE_ACQUIRE_TIMEOUT: 'databaseAcquireTimeout', DATABASE_STATEMENT_TIMEOUT: 'databaseStatementTimeout', REQUEST_BODY_TIMEOUT: 'requestBodyTimeout', ID_TOKEN_TTL: 'idTokenTtl',
    REQUEST_TOKEN_TTL: 'requestTokenTtl', REQUEST_TOKEN_MAX_TTL: 'requestTokenMaxTtl', LOG_LEVEL: 'logLevel',
    MIGRATE_ON_START: 'migrateOnStart', ALLOW_INSECURE_ISSUER: 'allowInsecureIssuer', SIGNING_ALG: 'signingAlg',
    KEY_ROTATION_INTERVAL: 'keyRotationInterval', KEY_PUBLISH_LEAD: 'keyPublishLead', KEY_RETIRED_RETENTION: 'keyRetiredRetention',
    KEY_CHECK_INTERVAL: 'keyCheckInterval', FAILED_ATTEMPTS_PER_MINUTE: 'failedAttemptsPerMinute', MAX_CONNECTIONS: 'maxConnections',
    MAX_IN_FLIGHT: 'maxInFlight', DATABASE_MAX_QUEUE: 'databaseMaxQueue', AUDIT_RETENTION: 'auditRetention',
    REQUEST_TOKEN_RETENTION: 'requestTokenRetention', SHUTDOWN_GRACE: 'shutdownGrace', SHUTDOWN_TIMEOUT: 'shutdownTimeout',
    OPTIMIZE_FOR: 'optimizeFor',
  };
  const mismatches: string[] = [];
  for (const [name, field] of Object.entries(fields) as [keyof typeof VARIABLES, keyof Config][]) {
    const documented = /^`([^`]+)`$/.exec(VARIABLES[name].default)?.[1];
    if (documented === undefined) {
      mismatches.push(`${name}: the default "${VARIABLES[name].default}" is not one plain value`);
      continue;
    }
    const actual = config[field];
    const expected = typeof actual === 'number' ? parseDuration(documented) : typeof actual === 'boolean' ? documented === 'true' : documented;
    if (actual !== expected) mismatches.push(`${name}: documented ${documented}, loadConfig uses ${String(actual)}`);
  }
  expect(mismatches).toEqual([]);
});
