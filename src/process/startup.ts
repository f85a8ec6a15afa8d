// Start-up checks that fail fast and say why, before anything is started:
// - the port: a port in use was found only after the embedded PostgreSQL was
//   initialised and a key generated, as a bare EADDRINUSE that named nothing;
// - the database: in production mode `serve` waits for PostgreSQL with
//   backoff up to DATABASE_CONNECT_TIMEOUT (a database that starts after the
//   service, as in any `docker compose up` or Kubernetes rollout, is not a
//   crash loop), logging each attempt with host and port, never the password.
//   Errors that waiting cannot fix (a wrong password, a missing database) end
//   the wait at once.
import net from 'node:net';
import pg from 'pg';
import { databaseUnavailable } from '../store/connectivity.js';

export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

/** The settings that name a listener, for errors that say which one to change. */
export interface ListenerSettings {
  port: string;
  host: string;
}

const PUBLIC_LISTENER: ListenerSettings = { port: 'PORT', host: 'HOST' };
export const METRICS_LISTENER: ListenerSettings = { port: 'METRICS_PORT', host: 'METRICS_HOST' };

/**
 * Binds host:port for a moment, so that a port in use is named before anything
 * starts. Both listeners are checked (PORT and METRICS_PORT): a busy metrics
 * port found after start-up used to leave a half-started process that never exited.
 */
export async function checkPortFree(host: string, port: number, names: ListenerSettings = PUBLIC_LISTENER): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err: NodeJS.ErrnoException) => {
      const where = `${host}:${port}`;
      if (err.code === 'EADDRINUSE') reject(new StartupError(`${names.port} ${port} on ${names.host} ${host} is already in use (${where}): stop the other process, or set ${names.port} (and ${names.host}) to a free address`));
      else if (err.code === 'EACCES') reject(new StartupError(`not allowed to listen on ${where}: ports below 1024 need privileges; set ${names.port} to 1024 or above (a proxy or the container runtime can map 443 to it)`));
      else if (err.code === 'EADDRNOTAVAIL') reject(new StartupError(`${names.host} ${host} is not an address of this machine: set ${names.host} to one (0.0.0.0 for all)`));
      else reject(err);
    });
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

/**
 * A connection PostgreSQL refused for good, in words: its own message (which
 * names the user or database, never the password), the SQLSTATE for searching,
 * and what to change.
 */
function refusedConnection(where: { host: string; port: number; database: string }, err: unknown): string {
  const { code, message } = err as { code?: string; message?: string };
  const words = message ?? String(err);
  const at = `the database ${where.database} on ${where.host}:${where.port}`;
  if (code === '3D000') return `cannot use ${at}: ${words} (SQLSTATE 3D000). Create it (createdb -h ${where.host} -p ${where.port} ${where.database}), or fix its name in DATABASE_URL`;
  if (code === '28P01' || code === '28000') return `cannot use ${at}: ${words} (SQLSTATE ${code}). Fix the user or password in DATABASE_URL, or the server's pg_hba.conf`;
  return `cannot use ${at}: ${words}${code ? ` (SQLSTATE ${code})` : ''}. Check DATABASE_URL`;
}

/** Where a URL points, for a log line: host and port, never the user or password. */
export function describeDatabaseUrl(url: string): { host: string; port: number; database: string } {
  const u = new URL(url);
  return { host: u.hostname, port: Number(u.port || 5432), database: u.pathname.replace(/^\//, '') };
}

export interface WaitOptions {
  /** Give up after this many seconds (DATABASE_CONNECT_TIMEOUT). */
  timeoutSeconds: number;
  /** Bound on one attempt (DATABASE_ACQUIRE_TIMEOUT). */
  attemptSeconds: number;
  /** Each failed attempt (retry follows) and the success after a wait; no secret in either. */
  report: (event: WaitEvent) => void;
  sleep?: (ms: number) => Promise<void>;
}

export type WaitEvent =
  | { kind: 'waiting'; host: string; port: number; database: string; attempt: number; cause: string; retryInMs: number }
  | { kind: 'answering'; host: string; port: number; database: string; attempt: number; waitedMs: number };

/** One line for a terminal. */
export function describeWait(e: WaitEvent): string {
  return e.kind === 'waiting'
    ? `waiting for the database on ${e.host}:${e.port} (attempt ${e.attempt}: ${e.cause}); retrying in ${(e.retryInMs / 1000).toFixed(1)} s`
    : `the database on ${e.host}:${e.port} is answering (after ${(e.waitedMs / 1000).toFixed(1)} s)`;
}

/** Resolves once PostgreSQL at `url` answers a query; throws a StartupError naming why not. */
export async function waitForDatabase(url: string, o: WaitOptions): Promise<void> {
  const where = describeDatabaseUrl(url);
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const started = Date.now();
  let delay = 500;
  for (let attempt = 1; ; attempt += 1) {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: o.attemptSeconds * 1000, application_name: 'jenkins-oidc' });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      if (attempt > 1) o.report({ kind: 'answering', ...where, attempt, waitedMs: Date.now() - started });
      return;
    } catch (err) {
      const cause = databaseUnavailable(err);
      const fatal = !cause || /password|authorization|catalog/.test(cause);
      if (fatal) throw new StartupError(refusedConnection(where, err));
      const elapsed = (Date.now() - started) / 1000;
      if (elapsed + delay / 1000 > o.timeoutSeconds) {
        throw new StartupError(
          `the database on ${where.host}:${where.port} did not answer within DATABASE_CONNECT_TIMEOUT (${o.timeoutSeconds} s): ${cause}. Check that PostgreSQL is up and reachable from here, or raise DATABASE_CONNECT_TIMEOUT`,
        );
      }
      o.report({ kind: 'waiting', ...where, attempt, cause, retryInMs: delay });
      await sleep(delay);
      delay = Math.min(delay * 2, 5000);
    } finally {
      await client.end().catch(() => undefined);
    }
  }
}
