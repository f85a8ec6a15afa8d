// Structured JSON logs (pino). Secrets never go in: no request bodies, no
// headers, no query strings; the redact list is a second line of defence.
import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.js';

export type { Logger };

export interface LoggerOptions {
  /**
   * Other processes write JSON lines to the same stdout (`serve` with
   * WORKERS > 1: the primary and every worker inherit one pipe). A write of
   * more than PIPE_BUF (4096 bytes on Linux) to a pipe may be interleaved
   * with another process's, which would cut lines in two; so each write is
   * kept within 4096 bytes of whole lines (sonic-boom starts a new write
   * buffer rather than split a line; only a single line longer than that, a
   * long stack trace, can still be cut).
   */
  sharedStdout?: boolean;
}

/** POSIX guarantees at least 512; Linux, where this runs, has 4096. */
const PIPE_BUF = 4096;

export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream, options: LoggerOptions = {}): Logger {
  // stdout through a buffered, asynchronous writer: one write per request line
  // was a tenth of the token path's CPU. The buffer is written out every
  // 250 ms (so a quiet service's lines still appear promptly), on a clean
  // shutdown (service.close, flushLogs) and by pino's own process 'exit' hook,
  // synchronously, whatever the exit: process.exit, an uncaught exception or
  // an unhandled rejection (test/logger.test.ts). Only a signal nobody
  // handles or SIGKILL can lose the last 250 ms; `serve` handles SIGTERM,
  // SIGINT and SIGHUP.
  let dest: NodeJS.WritableStream | ReturnType<typeof pino.destination> | undefined = destination;
  if (!dest) {
    const buffered = pino.destination(
      options.sharedStdout
        ? // minLength must stay below maxWrite: write once half a pipe buffer is ready.
          { dest: 1, sync: false, minLength: PIPE_BUF / 2, maxWrite: PIPE_BUF }
        : { dest: 1, sync: false, minLength: 4096 },
    );
    setInterval(() => {
      try {
        buffered.flush();
      } catch {
        // Nothing buffered yet, or a flush already in progress: the next tick will do.
      }
    }, 250).unref();
    dest = buffered;
  }
  return pino(
    {
      level,
      base: { service: 'jenkins-oidc' },
      redact: {
        paths: ['secret', 'token', 'access_token', 'client_secret', 'subject_token', 'authorization', '*.authorization', '*.secret', '*.token'],
        censor: '[redacted]',
      },
    },
    dest as never,
  );
}

/** Writes out what the logger has buffered; resolves within `timeoutMs` whatever happens. */
export function flushLogs(logger: Logger, timeoutMs = 2000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    try {
      logger.flush(done);
    } catch {
      // A destination without a buffer, or one already flushing: pino's exit hook writes the rest.
      done();
    }
  });
}
