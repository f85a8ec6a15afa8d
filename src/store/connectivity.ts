// "Is this error the database being out of reach?" — the one place that
// answers it. A yes becomes 503 temporarily_unavailable for the caller (see
// http/unavailable.ts) and a reason on /readyz; a no stays a 500, because
// then it is our bug.
//
// What actually arrives, by path (seen with Prisma 7, @prisma/adapter-pg and
// pg 8 against PostgreSQL 15 and 18 being stopped, restarted, killed and
// black-holed):
// - PrismaClientKnownRequestError with a connection code: P1001 "Can't reach
//   database server" (model queries while the server is down), P1017 ...;
// - PrismaClientKnownRequestError P2010 "Raw query failed" ($queryRaw), whose
//   meta.driverAdapterError.cause says what happened: kind
//   DatabaseNotReachable / ConnectionClosed / SocketTimeout /
//   TooManyConnections, or kind "postgres" with the SQLSTATE (57P01
//   admin_shutdown for every connection of a server being stopped, 57P03
//   cannot_connect_now while it shuts down or starts up);
// - pg's own Errors, passed through unwrapped, with no code but a fixed
//   message: "Connection terminated unexpectedly" (server killed mid-query),
//   "Connection terminated due to connection timeout" and "timeout exceeded
//   when trying to connect" (pg-pool's connectionTimeoutMillis);
// - Node socket errors (ECONNREFUSED, EHOSTUNREACH, ...) on paths the adapter
//   does not map.
//
// Causes are short fixed phrases: they go on /readyz, which anyone may read,
// so they never carry a host, a port, a user or a database name.

/** SQLSTATEs that mean "this server cannot serve us right now", not "our SQL is wrong". */
const SQLSTATES: Record<string, string> = {
  '57P01': 'admin_shutdown',
  '57P02': 'crash_shutdown',
  '57P03': 'cannot_connect_now',
  '53300': 'too_many_connections',
  // A failover left us on a standby (or a writer that was just demoted);
  // store/deadlines.ts drops such a connection.
  '25006': 'read_only_sql_transaction',
  // statement_timeout (DATABASE_STATEMENT_TIMEOUT) cancelled it: the server
  // is overloaded or a lock is held; retrying later is the answer.
  '57014': 'query_canceled',
  '55P03': 'lock_not_available',
  '28P01': 'invalid_password',
  '28000': 'invalid_authorization_specification',
  '3D000': 'invalid_catalog_name',
};

/** Prisma's own connection-level error codes (https://www.prisma.io/docs/orm/reference/error-reference). */
const PRISMA_CODES: Record<string, string> = {
  P1000: 'authentication failed',
  P1001: 'server not reachable',
  P1002: 'connect timeout',
  P1003: 'database does not exist',
  P1008: 'operation timed out',
  P1010: 'access denied',
  P1011: 'TLS connection failed',
  P1017: 'server closed the connection',
  P2024: 'timed out waiting for a pooled connection',
};

/** @prisma/adapter-pg's mapped error kinds. */
const ADAPTER_KINDS: Record<string, string> = {
  DatabaseNotReachable: 'server not reachable',
  ConnectionClosed: 'connection closed',
  SocketTimeout: 'socket timeout',
  TooManyConnections: 'too_many_connections (53300)',
  TlsConnectionError: 'TLS connection failed',
  AuthenticationFailed: 'authentication failed',
  DatabaseAccessDenied: 'access denied',
  DatabaseDoesNotExist: 'database does not exist',
};

const SOCKET_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection reset',
  ECONNABORTED: 'connection aborted',
  ETIMEDOUT: 'connect timeout',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  EHOSTDOWN: 'host down',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found (DNS)',
};

/** pg and pg-pool messages (pg 8) for errors they raise without a code. */
const PG_MESSAGES: Record<string, string> = {
  'Connection terminated unexpectedly': 'connection terminated',
  'Connection terminated due to connection timeout': 'connect timeout',
  'timeout exceeded when trying to connect': 'connect timeout',
  // Ours (request-tokens/redeem.ts): an exchange waited as long for a statement.
  'timeout exceeded when waiting for a database statement': 'statement wait timeout',
  // Ours (store/deadlines.ts): sent, and unanswered past statement_timeout + 1 s; its connection was destroyed.
  'database statement deadline missed': 'statement deadline missed',
  'Client has encountered a connection error and is not queryable': 'connection lost',
  'The server does not support SSL connections': 'TLS connection failed',
  'There was an error establishing an SSL connection': 'TLS connection failed',
};

/** Ours (store/deadlines.ts): a new connection found a standby. @prisma/adapter-pg keeps it as originalMessage. */
const IN_RECOVERY = 'the database server is in recovery (a standby)';

function causeOf(e: Record<string, unknown>): string | undefined {
  const code = typeof e.code === 'string' ? e.code : undefined;
  const original = typeof e.originalCode === 'string' ? e.originalCode : undefined;
  for (const c of [original, code]) {
    if (c && SQLSTATES[c]) return `${SQLSTATES[c]} (${c})`;
    // Class 08: connection exception.
    if (c && /^08[0-9A-Z]{3}$/.test(c)) return `connection exception (${c})`;
  }
  if (code && PRISMA_CODES[code]) return PRISMA_CODES[code];
  if (typeof e.kind === 'string' && ADAPTER_KINDS[e.kind]) return ADAPTER_KINDS[e.kind];
  if (code && SOCKET_CODES[code]) return SOCKET_CODES[code];
  if (typeof e.message === 'string' && PG_MESSAGES[e.message]) return PG_MESSAGES[e.message];
  return undefined;
}

/**
 * The short cause when `err` means the database cannot be reached (or cannot
 * serve us) right now; undefined for anything else.
 */
export function databaseUnavailable(err: unknown): string | undefined {
  // Ours first, wherever it sits in the chain: the wrappers around it carry
  // its 25006 without its message.
  return firstInChain(err, (e) => (e.message === IN_RECOVERY || e.originalMessage === IN_RECOVERY ? 'server in recovery (standby)' : undefined)) ?? firstInChain(err, causeOf);
}

/** The first answer `find` gives over `err` and what it wraps, breadth-first. */
function firstInChain(err: unknown, find: (e: Record<string, unknown>) => string | undefined): string | undefined {
  // Prisma error -> meta.driverAdapterError -> its cause, and Error.cause
  // chains. Bounded: causes can be cyclic.
  const queue: unknown[] = [err];
  for (let seen = 0; queue.length && seen < 8; seen += 1) {
    const e = queue.shift();
    if (!e || typeof e !== 'object') continue;
    const record = e as Record<string, unknown>;
    const found = find(record);
    if (found) return found;
    const meta = record.meta as Record<string, unknown> | undefined;
    if (meta && typeof meta === 'object') queue.push(meta.driverAdapterError);
    queue.push(record.cause);
  }
  return undefined;
}

/**
 * Causes that can end a statement after it was sent and before its answer
 * came back: it may or may not have committed. (A refused or timed-out
 * connect, a standby refused at connect, a cancelled statement (57014) and a
 * read-only refusal (25006) commit nothing.)
 */
const MAYBE_COMMITTED = new Set([
  'statement deadline missed',
  'connection terminated',
  'connection reset',
  'connection aborted',
  'connection closed',
  'server closed the connection',
  'socket timeout',
  'admin_shutdown (57P01)',
  'crash_shutdown (57P02)',
]);

/** Whether a statement that failed with this cause (from databaseUnavailable) may have committed all the same. */
export function commitUnknown(cause: string): boolean {
  return MAYBE_COMMITTED.has(cause);
}
