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
// (test/server/workers.test.ts); by default production mode would fork one per core.
const BASE_ENV = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LOG_LEVEL: 'info', SHUTDOWN_GRACE: '0', WORKERS: '1' };

export function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<CliResult> {
  return runNode([CLI, ...args], { LOG_LEVEL: 'info', ...env }, timeoutMs);
}

export interface ServeProcess {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

export interface ServeOptions {
  /** The log text that says it is ready; default the "listening" line (with workers: the primary's "workers listening"). */
  ready?: string;
  /** Its own process group (so that a test can signal the group, as a terminal does). */
  detached?: boolean;
}

/** Starts `serve` and waits for its "listening" log line (or its exit). */
export async function startServe(env: Record<string, string>, timeoutMs = 60_000, options: ServeOptions = {}): Promise<ServeProcess> {
  const ready = options.ready ?? (env.WORKERS && env.WORKERS !== '1' ? '"msg":"jenkins-oidc workers listening"' : '"msg":"jenkins-oidc listening"');
  const child = spawn(process.execPath, [CLI, 'serve'], { env: { ...BASE_ENV, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached ?? false });
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${out}`)), timeoutMs);
    const check = () => {
      if (out.includes(ready)) {
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
  return { child, output: () => out, exited };
}
