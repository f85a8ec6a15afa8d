// Which errors mean "the database is out of reach" (503) and which are bugs
// (500). The shapes are those Prisma 7, @prisma/adapter-pg and pg 8 really
// throw (see src/store/connectivity.ts); test/http/database-outage.test.ts
// meets them live.
import { commitUnknown, databaseUnavailable } from '../../src/store/connectivity.js';
import { ServerInRecovery, StatementDeadlineMissed } from '../../src/store/deadlines.js';

const prismaRaw = (cause: Record<string, unknown>) =>
  Object.assign(new Error('Raw query failed'), { code: 'P2010', meta: { driverAdapterError: Object.assign(new Error('DriverAdapterError'), { cause }) } });
const socket = (code: string) => Object.assign(new Error(`connect ${code}`), { code, errno: -1, syscall: 'connect' });

describe('database faults are told apart from bugs', () => {
  test.each<[string, unknown, string | undefined]>([
    ['a stopped server (model query): P1001', Object.assign(new Error("Can't reach database server"), { code: 'P1001' }), 'server not reachable'],
    ['a stopped server (raw query): DatabaseNotReachable', prismaRaw({ kind: 'DatabaseNotReachable', host: '10.0.0.5', port: 5432 }), 'server not reachable'],
    ['a server shutting down: 57P01 admin_shutdown', prismaRaw({ kind: 'postgres', code: '57P01', originalCode: '57P01' }), 'admin_shutdown (57P01)'],
    ['a server starting up: 57P03 cannot_connect_now', prismaRaw({ kind: 'postgres', code: '57P03' }), 'cannot_connect_now (57P03)'],
    ['a crashed server: 57P02', prismaRaw({ kind: 'postgres', code: '57P02' }), 'crash_shutdown (57P02)'],
    ['too many connections', prismaRaw({ kind: 'TooManyConnections', originalCode: '53300' }), 'too_many_connections (53300)'],
    ['a failover onto a standby: 25006', prismaRaw({ kind: 'postgres', code: '25006' }), 'read_only_sql_transaction (25006)'],
    ['statement_timeout cancelled it: 57014', prismaRaw({ kind: 'postgres', code: '57014', originalCode: '57014' }), 'query_canceled (57014)'],
    ['a lock not available: 55P03', Object.assign(new Error('could not obtain lock'), { code: '55P03' }), 'lock_not_available (55P03)'],
    ['a statement past its deadline, its connection destroyed (ours)', new StatementDeadlineMissed(6000), 'statement deadline missed'],
    ['a new connection that found a standby (ours)', new ServerInRecovery(), 'server in recovery (standby)'],
    ['the same through the adapter, its 25006 on the outer error', Object.assign(prismaRaw({ kind: 'postgres', code: '25006', originalCode: '25006', originalMessage: 'the database server is in recovery (a standby)' }), { originalCode: '25006' }), 'server in recovery (standby)'],
    ['a connection exception (class 08)', prismaRaw({ kind: 'postgres', code: '08006' }), 'connection exception (08006)'],
    ['a connection reset', prismaRaw({ kind: 'ConnectionClosed' }), 'connection closed'],
    ['the server closed the connection: P1017', Object.assign(new Error('Server has closed the connection.'), { code: 'P1017' }), 'server closed the connection'],
    ['a server killed mid-query (pg, no code)', new Error('Connection terminated unexpectedly'), 'connection terminated'],
    ['a connect timeout (pg-pool)', new Error('Connection terminated due to connection timeout', { cause: new Error('Connection terminated unexpectedly') }), 'connect timeout'],
    ['a wait for a pooled connection timing out (pg-pool)', new Error('timeout exceeded when trying to connect'), 'connect timeout'],
    ['an unreachable host', socket('EHOSTUNREACH'), 'host unreachable'],
    ['a failing DNS lookup', socket('EAI_AGAIN'), 'host not found (DNS)'],
    ['wrapped once more in Error.cause', new Error('outer', { cause: socket('ECONNREFUSED') }), 'connection refused'],
    ['a unique violation is a bug', prismaRaw({ kind: 'UniqueConstraintViolation', originalCode: '23505' }), undefined],
    ['a syntax error is a bug', prismaRaw({ kind: 'postgres', code: '42601' }), undefined],
    ['invalid text (a NUL character) is a bug', prismaRaw({ kind: 'postgres', code: '22021' }), undefined],
    ['a TypeError is a bug', new TypeError("Cannot read properties of undefined (reading 'kid')"), undefined],
    ['a pool used after the end is a bug', new Error('Cannot use a pool after calling end on the pool'), undefined],
    ['not an error at all', 'oops', undefined],
    ['a cycle of causes ends', (() => { const e: Error & { cause?: unknown } = new Error('a'); e.cause = e; return e; })(), undefined],
  ])('%s', (_name, err, cause) => {
    expect(databaseUnavailable(err)).toBe(cause);
  });

  test('a cause never names a host or port', () => {
    expect(databaseUnavailable(prismaRaw({ kind: 'DatabaseNotReachable', host: 'db.internal', port: 5432 }))).not.toMatch(/db\.internal|5432/);
  });
});

test('a statement may have committed only when it was lost after it was sent', () => {
  expect(Object.fromEntries([
    'statement deadline missed', 'connection terminated', 'admin_shutdown (57P01)', 'server closed the connection',
    'connect timeout', 'connection refused', 'server in recovery (standby)', 'query_canceled (57014)', 'read_only_sql_transaction (25006)', 'statement wait timeout',
  ].map((c) => [c, commitUnknown(c)]))).toEqual({
    'statement deadline missed': true,
    'connection terminated': true,
    'admin_shutdown (57P01)': true,
    'server closed the connection': true,
    'connect timeout': false,
    'connection refused': false,
    'server in recovery (standby)': false,
    'query_canceled (57014)': false,
    'read_only_sql_transaction (25006)': false,
    'statement wait timeout': false,
  });
});
