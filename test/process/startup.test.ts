// Start-up that waits and fails clearly (issue 10): the port is checked before
// anything starts, and a database that is not up yet is waited for.
//
// Ports that must stay unbound for a while ("nothing listens there yet") are
// taken on a loopback address of the test's own (helpers/ports.ts): a port
// freed on 127.0.0.1 could be taken by another process of the run meanwhile.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { checkPortFree, StartupError, waitForDatabase, type WaitEvent } from '../../src/process/startup.js';
import { createTestDatabase } from '../helpers/database.js';
import { boundListener, privateLoopbackAddress, unusedPort } from '../helpers/ports.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { runCli, scratchDir } from '../helpers/cli.js';

const ADMIN = new URL(process.env.TEST_ADMIN_DATABASE_URL!);

test('a port in use is named, with what to do', async () => {
  const host = privateLoopbackAddress();
  const { server: busy, port } = await boundListener(host);
  try {
    await expect(checkPortFree(host, port)).rejects.toThrow(
      new StartupError(`PORT ${port} on HOST ${host} is already in use (${host}:${port}): stop the other process, or set PORT (and HOST) to a free address`),
    );
  } finally {
    await new Promise((resolve) => busy.close(resolve));
  }
  await expect(checkPortFree(host, port)).resolves.toBeUndefined();
});

test('serve on a port in use fails before it initialises a PostgreSQL or generates a key', async () => {
  // Held for the whole test: the port stays in use.
  const { server: busy, port } = await boundListener();
  const dataDir = path.join(scratchDir(), 'data');
  try {
    const res = await runCli(['serve'], { DATA_DIR: dataDir, PORT: String(port) });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`error: PORT ${port} on HOST 127.0.0.1 is already in use (127.0.0.1:${port}): stop the other process, or set PORT (and HOST) to a free address`);
    expect(existsSync(path.join(dataDir, 'pg'))).toBe(false);
    expect(existsSync(path.join(dataDir, 'key-encryption-key'))).toBe(false);
  } finally {
    busy.close();
  }
});

test.each([['one process', false], ['workers', true]])('serve (%s) with METRICS_PORT in use names METRICS_PORT and exits, leaving nothing running', async (_name, workers) => {
  // Before: the metrics listener failed after the service was up; the error
  // named nothing, the database was stopped, and the process never exited.
  const { server: busy, port } = await boundListener();
  const dataDir = path.join(scratchDir(), 'data');
  // Workers need a database of their own (the embedded one belongs to one process).
  const db = workers ? await createTestDatabase() : undefined;
  const env: Record<string, string> = db
    ? { DATABASE_URL: db.url, KEY_ENCRYPTION_KEY: randomBytes(32).toString('base64'), ISSUER: 'https://oidc.example.com', WORKERS: '2' }
    : { DATA_DIR: dataDir };
  try {
    const res = await runCli(['serve'], { ...env, PORT: '0', METRICS_PORT: String(port) });
    expect(res.stderr).toContain(
      `error: METRICS_PORT ${port} on METRICS_HOST 127.0.0.1 is already in use (127.0.0.1:${port}): stop the other process, or set METRICS_PORT (and METRICS_HOST) to a free address`,
    );
    expect(res.code).toBe(1);
    expect(existsSync(path.join(dataDir, 'pg'))).toBe(false);
  } finally {
    busy.close();
    await db?.drop();
  }
});

test('a database that comes up later is waited for, each attempt reported with host and port only', async () => {
  const db = await createTestDatabase();
  const host = privateLoopbackAddress();
  const port = await unusedPort(host);
  let proxy: TcpProxy | undefined;
  try {
    const url = new URL(db.url);
    url.host = `${host}:${port}`;
    const events: WaitEvent[] = [];
    const delays: number[] = [];
    // Nothing listens at host:port for the first two attempts; during the
    // second backoff a proxy to the real server starts there. The backoff is
    // recorded, not slept: the order of events is what is under test.
    const sleep = async (ms: number) => {
      delays.push(ms);
      if (delays.length === 2) proxy = await startTcpProxy(Number(ADMIN.port || 5432), port, host);
    };
    // Attempts that reach the server get a generous bound: on a busy machine a
    // handshake through the proxy can take seconds, and a timed-out third
    // attempt would be one more 'waiting' event, not a slower pass.
    await waitForDatabase(url.toString(), { timeoutSeconds: 120, attemptSeconds: 60, report: (e) => events.push(e), sleep });
    const database = url.pathname.slice(1);
    expect(events).toEqual([
      { kind: 'waiting', host, port, database, attempt: 1, cause: 'connection refused', retryInMs: 500 },
      { kind: 'waiting', host, port, database, attempt: 2, cause: 'connection refused', retryInMs: 1000 },
      { kind: 'answering', host, port, database, attempt: 3, waitedMs: expect.any(Number) },
    ]);
    expect(delays).toEqual([500, 1000]);
    expect(JSON.stringify(events)).not.toContain(url.password || 'postgres@');
  } finally {
    await proxy?.close();
    await db.drop();
  }
});

test('a database that never comes up ends the wait with DATABASE_CONNECT_TIMEOUT named', async () => {
  const host = privateLoopbackAddress();
  const port = await unusedPort(host);
  const events: WaitEvent[] = [];
  await expect(waitForDatabase(`postgres://postgres:secret@${host}:${port}/jo`, { timeoutSeconds: 2, attemptSeconds: 1, report: (e) => events.push(e) })).rejects.toThrow(
    new StartupError(`the database on ${host}:${port} did not answer within DATABASE_CONNECT_TIMEOUT (2 s): connection refused. Check that PostgreSQL is up and reachable from here, or raise DATABASE_CONNECT_TIMEOUT`),
  );
  // It waited, and never planned a backoff past the timeout (however slow each attempt was).
  expect(events.length).toBeGreaterThanOrEqual(1);
  expect(events.every((e) => e.kind === 'waiting' && e.cause === 'connection refused')).toBe(true);
  expect(events.reduce((sum, e) => sum + (e.kind === 'waiting' ? e.retryInMs : 0), 0)).toBeLessThanOrEqual(2000);
});

test('what waiting cannot fix (a database that does not exist) ends at once', async () => {
  const url = new URL(ADMIN.toString());
  url.pathname = '/jenkins_oidc_no_such_database';
  const events: WaitEvent[] = [];
  // A generous bound on the attempt (see above): a timed-out one would be retried, not refused at once.
  await expect(waitForDatabase(url.toString(), { timeoutSeconds: 120, attemptSeconds: 60, report: (e) => events.push(e) })).rejects.toThrow(
    /^cannot use the database jenkins_oidc_no_such_database on 127\.0\.0\.1:\d+: database "jenkins_oidc_no_such_database" does not exist \(SQLSTATE 3D000\)\. Create it \(createdb -h 127\.0\.0\.1 -p \d+ jenkins_oidc_no_such_database\), or fix its name in DATABASE_URL$/,
  );
  // At once: on the first attempt, without a single backoff.
  expect(events).toEqual([]);
});

test('a user PostgreSQL does not know is said in words, with what to change, and never the password', async () => {
  const url = new URL(ADMIN.toString());
  url.username = 'jenkins_oidc_no_such_role';
  url.password = 'pw-never-printed';
  const failure = waitForDatabase(url.toString(), { timeoutSeconds: 120, attemptSeconds: 60, report: () => undefined });
  await expect(failure).rejects.toThrow(
    /^cannot use the database \w+ on 127\.0\.0\.1:\d+: (role "jenkins_oidc_no_such_role" does not exist|password authentication failed for user "jenkins_oidc_no_such_role") \(SQLSTATE 28(000|P01)\)\. Fix the user or password in DATABASE_URL, or the server's pg_hba\.conf$/,
  );
  await expect(failure).rejects.not.toThrow(/pw-never-printed/);
});
