// Logs 2000 lines of about 560 bytes through createLogger (dist/, built by
// `npm test`) while the log writer's asynchronous write cannot start, then
// crashes (argv: the logger and crash modules' paths, and `throw` or `reject`)
// with exitOnCrash installed, as `serve` has it.
//
// The write cannot start because libuv's thread pool (run with
// UV_THREADPOOL_SIZE=1) is held: its one thread waits in open() on a FIFO
// until another process opens the FIFO's other end, 300 ms after the crash,
// as a write blocked on a slow log collector would wait. Deterministic: a
// crash that does not wait for the writer writes the lines logged after that
// write first (pino's fatal() writes synchronously), and the held write's
// lines after them.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [loggerPath, crashPath, mode] = process.argv.slice(2);
const { createLogger } = await import(loggerPath);
const { exitOnCrash } = await import(crashPath);
const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'jenkins-oidc-crash-'));
const fifo = path.join(folder, 'hold');
if (spawnSync('mkfifo', [fifo]).status !== 0) throw new Error('mkfifo failed');
fs.open(fifo, 'r', (err, fd) => {
  if (!err) fs.closeSync(fd);
  fs.rmSync(folder, { recursive: true, force: true });
});
const logger = createLogger('info');
exitOnCrash(logger);
for (let i = 0; i < 2000; i += 1) logger.info({ i, pad: 'x'.repeat(500) }, 'line');
setTimeout(() => {
  // The thread pool goes free 300 ms from now, whatever this process does meanwhile.
  spawn('sh', ['-c', 'sleep 0.3; : > "$0"', fifo], { stdio: 'ignore', detached: true }).unref();
  if (mode === 'reject') void Promise.reject(new Error('crash test: rejected'));
  else throw new Error('crash test: thrown');
}, 50);
