// Runs the built CLI (dist/, made by `npm test`) as a real child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runNode, type AgentResult } from './agent.js';

export const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/cli/main.js');

/** A scratch folder the embedded PostgreSQL can reach even when the suite runs as root. */
export function scratchDir(prefix = 'jo-cli-'): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

export type CliResult = AgentResult;

// SHUTDOWN_GRACE 0: no load balancer watches a test's /readyz (the shutdown tests set their own).
// WORKERS 1: a service is one process unless its test asks for workers
// (test/process/workers.test.ts); by default production mode would fork one per core.
// PORT 0: the service binds a free port itself and logs it (ServeProcess.url);
// a port found free beforehand could be taken by another process of the run.
// DATABASE_ACQUIRE_TIMEOUT: the product's 3 s wait for a pooled connection
// answers 503 on a busy test machine where nothing is wrong (helpers/service.ts).
const BASE_ENV = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'info', SHUTDOWN_GRACE: '0', WORKERS: '1', PORT: '0', DATABASE_ACQUIRE_TIMEOUT: '60' };

export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<CliResult> {
  return runNode([CLI, ...args], { LOG_LEVEL: 'info', ...env }, timeoutMs);
}

export interface ServeProcess {
  child: ChildProcess;
  output(): string;
  /** Its JSON log lines so far (stdout, whole lines). */
  lines(): LogLine[];
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  /** Where it listens, from its ready line (http://127.0.0.1:<port as bound>); undefined when it exited first. */
  url: string | undefined;
  /** The metrics URL of its ready line, when METRICS_PORT is set. */
  metricsUrl: string | undefined;
}

export type LogLine = Record<string, unknown> & { msg?: string; worker?: number };

/**
 * The JSON log lines of a process's output so far: whole lines only (a pipe
 * may hand over half a line), anything else (a runtime warning) left out.
 */
export function jsonLines(output: string): LogLine[] {
  return output.split('\n').slice(0, -1).filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
}

export interface ServeOptions {
  /** Flags for node itself, before the CLI's path. */
  nodeArgs?: string[];
  /** An IPC channel to this process, as a process manager's fork gives. */
  ipc?: boolean;
  /** Its own process group (so that a test can signal the group, as a terminal does). */
  detached?: boolean;
}

/**
 * Starts `serve` and waits for its ready line (or its exit): "jenkins-oidc
 * listening", with workers the primary's "jenkins-oidc workers listening".
 */
export async function startServe(env: Record<string, string>, timeoutMs = 120_000, options: ServeOptions = {}): Promise<ServeProcess> {
  const readyMsg = env.WORKERS && env.WORKERS !== '1' ? 'jenkins-oidc workers listening' : 'jenkins-oidc listening';
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI, 'serve'], { env: { ...BASE_ENV, ...env }, stdio: options.ipc ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'], detached: options.detached ?? false });
  let out = '';
  let stdout = '';
  child.stdout!.on('data', (c) => {
    out += c;
    stdout += c;
  });
  child.stderr!.on('data', (c) => (out += c));
  const lines = () => jsonLines(stdout);
  const readyLine = () => lines().find((l) => l.msg === readyMsg);
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${out}`)), timeoutMs);
    const check = () => {
      if (readyLine()) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', check);
    void exited.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
  const line = readyLine();
  return { child, output: () => out, lines, exited, url: line?.url as string | undefined, metricsUrl: line?.metrics as string | undefined };
}
