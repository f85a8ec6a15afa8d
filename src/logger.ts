// Structured JSON logs (pino). Secrets never go in: no request bodies, no
// headers, no query strings; the redact list is a second line of defence.
import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.js';

export type { Logger };

export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { service: 'jenkins-oidc' },
      redact: {
        paths: ['secret', 'token', 'access_token', 'client_secret', 'subject_token', 'authorization', '*.authorization', '*.secret', '*.token'],
        censor: '[redacted]',
      },
    },
    destination as never,
  );
}
