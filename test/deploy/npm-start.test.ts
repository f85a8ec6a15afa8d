// `npm start` under a supervisor that signals npm's PID only (a process
// manager, `kill <pid>`, a container whose PID 1 is npm). npm forwards SIGTERM
// and SIGINT to its child, and that child is `sh -c "<script>"`: dash neither
// forwards the signal nor exits through it to node, so before the start script
// exec'd node, SIGTERM left node and the embedded PostgreSQL running, orphaned,
// and SIGINT did nothing. With `exec`, npm's child is node itself.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SERVE_HEAP_FLAGS } from '../../src/process/runtime.js';
import { jsonLines, scratchDir } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const scratch = scratchDir('jo-npm-start-');
const dataDir = path.join(scratch, 'data');
const started: number[] = [];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

afterAll(() => {
  // Whatever a failed case left behind: the process group we started, and its PostgreSQL.
  for (const pgid of started) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  const pidFile = path.join(dataDir, 'pg', 'postmaster.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (pid && alive(pid)) process.kill(pid, 'SIGKILL');
  }
  rmSync(scratch, { recursive: true, force: true });
});

test.each(['SIGTERM', 'SIGINT'] as const)('%s to npm start\'s PID stops node and its embedded PostgreSQL, exit 0', async (signal) => {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    DATA_DIR: dataDir,
    // A free port bound by the service itself, read back from its log.
    PORT: '0',
    ISSUER: 'http://127.0.0.1',
    // No load balancer to wait for: the signal's path is what is under test.
    SHUTDOWN_GRACE: '0',
    npm_config_update_notifier: 'false',
  };
  // Its own process group, so that nothing but the signal we send reaches it.
  const npm = spawn('npm', ['start'], { cwd: ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  started.push(npm.pid!);
  let out = '';
  let stdout = '';
  npm.stdout!.on('data', (c) => {
    out += c;
    stdout += c;
  });
  npm.stderr!.on('data', (c) => (out += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    npm.on('close', (code, sig) => resolve({ code, signal: sig })),
  );

  const url = (await waitFor('the listening line', () => jsonLines(stdout).find((l) => l.msg === 'jenkins-oidc listening')?.url as string | undefined, { timeoutMs: 90_000, detail: () => out }));
  expect((await fetch(`${url}/healthz`)).status).toBe(200);
  // npm's only child is node: the start script exec'd it.
  const children = readFileSync(`/proc/${npm.pid}/task/${npm.pid}/children`, 'utf8').trim().split(/\s+/).map(Number);
  expect(children).toHaveLength(1);
  const nodePid = children[0]!;
  // (Node itself, replaced once by itself with the heap flags: src/process/runtime.ts.)
  expect(readFileSync(`/proc/${nodePid}/cmdline`, 'utf8').split('\0').slice(1, -1)).toEqual([...SERVE_HEAP_FLAGS, path.join(ROOT, 'dist/cli/main.js'), 'serve']);
  const postgresPid = Number(readFileSync(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
  expect(alive(postgresPid)).toBe(true);

  process.kill(npm.pid!, signal);
  const result = await exited;

  expect(result).toEqual({ code: 0, signal: null });
  expect(out).toContain(`"signal":"${signal}","msg":"shutting down"`);
  expect(alive(nodePid)).toBe(false);
  await waitFor('PostgreSQL to be gone', () => !alive(postgresPid));
  expect(existsSync(path.join(dataDir, 'pg', 'postmaster.pid'))).toBe(false);
  expect(existsSync(path.join(dataDir, 'embedded.lock'))).toBe(false);
});
