// Start-up that waits and fails clearly (issue 10): the port is checked before
// anything starts, and a database that is not up yet is waited for.
import net from 'node:net';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { checkPortFree, StartupError, waitForDatabase, type WaitEvent } from '../../src/server/startup.js';
import { createTestDatabase } from '../helpers/database.js';
import { freePort } from '../helpers/service.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { runCli, scratchDir } from '../helpers/cli.js';

const ADMIN = new URL(process.env.TEST_ADMIN_DATABASE_URL!);

function listenOn(port: number): Promise<net.Server> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(port, '127.0.0.1', () => resolve(s));
  });
}

test('a port in use is named, with what to do', async () => {
  const port = await freePort();
  const busy = await listenOn(port);
  try {
    await expect(checkPortFree('127.0.0.1', port)).rejects.toThrow(
      new StartupError(`PORT ${port} on HOST 127.0.0.1 is already in use (127.0.0.1:${port}): stop the other process, or set PORT (and HOST) to a free address`),
    );
  } finally {
    busy.close();
  }
  await expect(checkPortFree('127.0.0.1', port)).resolves.toBeUndefined();
});

test('serve on a port in use fails before it initialises a PostgreSQL or generates a key', async () => {
  const port = await freePort();
  const busy = await listenOn(port);
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

test('a database that comes up later is waited for, each attempt reported with host and port only', async () => {
  const db = await createTestDatabase();
  try {
    const port = await freePort();
    const url = new URL(db.url);
    url.host = `127.0.0.1:${port}`;
    const events: WaitEvent[] = [];
    // Nothing listens on `port` for the first 1.5 s; then a proxy to the real server does.
    let proxy: Awaited<ReturnType<typeof startTcpProxy>> | undefined;
    const later = setTimeout(async () => {
      proxy = await startTcpProxy(Number(ADMIN.port || 5432), port);
    }, 1500);
    await waitForDatabase(url.toString(), { timeoutSeconds: 30, attemptSeconds: 2, report: (e) => events.push(e) });
    clearTimeout(later);
    await proxy?.close();
    const waiting = events.filter((e) => e.kind === 'waiting');
    expect(waiting.length).toBeGreaterThanOrEqual(2);
    expect(waiting[0]).toEqual({ kind: 'waiting', host: '127.0.0.1', port, database: url.pathname.slice(1), attempt: 1, cause: 'connection refused', retryInMs: 500 });
    expect(waiting[1]).toMatchObject({ attempt: 2, retryInMs: 1000 });
    expect(events.at(-1)).toMatchObject({ kind: 'answering', host: '127.0.0.1', port, attempt: waiting.length + 1 });
    expect(JSON.stringify(events)).not.toContain(url.password || 'postgres@');
  } finally {
    await db.drop();
  }
}, 60_000);

test('a database that never comes up ends the wait with DATABASE_CONNECT_TIMEOUT named', async () => {
  const port = await freePort();
  const started = Date.now();
  await expect(waitForDatabase(`postgres://postgres:secret@127.0.0.1:${port}/jo`, { timeoutSeconds: 2, attemptSeconds: 1, report: () => undefined })).rejects.toThrow(
    new StartupError(`the database on 127.0.0.1:${port} did not answer within DATABASE_CONNECT_TIMEOUT (2 s): connection refused. Check that PostgreSQL is up and reachable from here, or raise DATABASE_CONNECT_TIMEOUT`),
  );
  expect(Date.now() - started).toBeLessThan(4000);
});

test('what waiting cannot fix (a database that does not exist) ends at once', async () => {
  const url = new URL(ADMIN.toString());
  url.pathname = '/jenkins_oidc_no_such_database';
  const started = Date.now();
  await expect(waitForDatabase(url.toString(), { timeoutSeconds: 30, attemptSeconds: 2, report: () => undefined })).rejects.toThrow(/^cannot use the database jenkins_oidc_no_such_database on 127\.0\.0\.1:\d+: invalid_catalog_name \(3D000\)\. Check DATABASE_URL$/);
  expect(Date.now() - started).toBeLessThan(3000);
});
